"""The risk layer's daemons in tests: in-process threads or real processes, against a real member and simulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dolphin.bus import BusEvent, schema, subscribe
from dolphin.market.sim import SimExchange
from dolphin.services.acb import service as acb_service
from dolphin.services.exf import service as exf_service
from dolphin.services.runtime import ServiceContext
from dolphin.services.watchdog import service as watchdog_service
from tests.integration.support import ServiceThread
from tests.support import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def risk_env(home: Path, member_port: int, sim: SimExchange, **extra: str) -> dict[str, str]:
    """What the risk daemons read from their environment (fast cadences for tests)."""
    env = {"DOLPHIN_HOME": str(home), "DOLPHIN_HZ_PORT": str(member_port), "DOLPHIN_HZ_MEMBERS": "",
           "DOLPHIN_MARKET": "sim", "DOLPHIN_MARKET_REST_URL": sim.rest_url, "DOLPHIN_MARKET_WS_URL": sim.ws_url,
           "DOLPHIN_EXF_POLL_S": "0.5", "DOLPHIN_EXF_FNG_POLL_S": "0.5", "DOLPHIN_EXF_PUBLISH_S": "1",
           "DOLPHIN_ACB_REPUBLISH_S": "1", "DOLPHIN_WATCHDOG_OB_SENSOR": "off"}
    env.update(extra)
    return env


class ExfThread(ServiceThread):
    name = "exf"

    async def body(self, ctx: ServiceContext) -> None:
        await exf_service.run(ctx)


class AcbThread(ServiceThread):
    name = "acb"

    async def body(self, ctx: ServiceContext) -> None:
        await acb_service.run(ctx)


class WatchdogThread(ServiceThread):
    name = "watchdog"

    async def body(self, ctx: ServiceContext) -> None:
        await watchdog_service.run(ctx)


class Daemon:
    """``python -m dolphin.services.<name>`` as a real process, logging to ``<home>/<name>.log``."""

    def __init__(self, name: str, home: Path, env: dict[str, str], *, log_name: str | None = None) -> None:
        self.name = name
        self.home = home
        self.env = {**os.environ, **env}
        self.log = home / f"{log_name or name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", f"dolphin.services.{self.name}"], env=self.env,
                                         cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Collector:
    """Every value written to one key, in order, from a threaded client's listener."""

    def __init__(self, client: Any, map_name: str, key: str) -> None:
        self._lock = threading.Lock()
        self._items: list[Any] = []
        self.subscription = subscribe(client, map_name, self, key=key, kinds=frozenset({"ADDED", "UPDATED"}))

    def deliver(self, event: BusEvent) -> None:
        if event.payload is not None:
            with self._lock:
                self._items.append(event.payload)

    @property
    def items(self) -> list[Any]:
        with self._lock:
            return list(self._items)

    def wait_for(self, predicate: Any, timeout: float = 60.0, what: str = "a value") -> Any:
        return wait_until(lambda: next((x for x in self.items if predicate(x)), None), timeout, what=what)

    def since(self, t: float) -> list[Any]:
        return [x for x in self.items if (x.published_s() or 0.0) >= t]


def now() -> float:
    return time.time()


__all__ = ["AcbThread", "Collector", "Daemon", "ExfThread", "WatchdogThread", "risk_env", "schema"]
