"""Helpers for the OBF tests: the daemon in a thread (counters readable) or as a process, bus readers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from dolphin.bus import Bus, BusSettings, ShardedFeatureStore, connect, schema
from dolphin.services.obf import ObfDaemon, ObfOptions, ObfStats, run_obf
from dolphin.services.runtime import ServiceContext
from tests.integration.support import ServiceThread
from tests.support import wait_until  # noqa: F401 - re-exported to this layer's tests

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class ObfThread(ServiceThread):
    """The OBF service body in-process (its counters readable), stopped like SIGTERM would."""

    name = "obf"

    def __init__(self, home: Path, options: ObfOptions, *, heartbeat_s: float | None = None) -> None:
        super().__init__(home)
        self.options = options
        self.heartbeat_s = heartbeat_s       # beat as `run_service` does, this often (None: no heartbeat)
        self.stats = ObfStats()
        self.daemon: ObfDaemon | None = None

    async def body(self, ctx: ServiceContext) -> None:
        def keep(d: ObfDaemon) -> None:
            self.daemon = d
        if self.heartbeat_s is not None:
            ctx.spawn(ctx.heartbeat_forever(self.heartbeat_s), "heartbeat")
        await run_obf(ctx, self.options, stats=self.stats, on_daemon=keep)

    def start(self) -> ObfThread:
        self.start_thread()
        return self

    @property
    def messages(self) -> int:
        ingest = self.stats.ingest
        return 0 if ingest is None else ingest.counters.messages


class BusReader:
    """A separate threaded client reading what OBF wrote."""

    def __init__(self, address: str) -> None:
        self.client = connect(BusSettings(members=(address,), connect_timeout_s=10.0))
        self.bus = Bus(self.client, source="obf test reader")
        self.shards = ShardedFeatureStore(self.client, source="obf test reader")

    def get(self, key: str) -> Any:
        return self.bus.get(schema.FEATURES, key)

    def close(self) -> None:
        self.client.shutdown()


class ObfProcess:
    """``python -m dolphin.services.obf`` with the environment `dolphin up` gives it."""

    def __init__(self, home: Path, *, rest_url: str, ws_url: str, hz_port: int, log_path: Path,
                 env_extra: dict[str, str] | None = None) -> None:
        env = dict(os.environ)
        env.update({"DOLPHIN_HOME": str(home), "DOLPHIN_MARKET": "sim", "DOLPHIN_MARKET_REST_URL": rest_url,
                    "DOLPHIN_MARKET_WS_URL": ws_url, "DOLPHIN_HZ_PORT": str(hz_port),
                    "DOLPHIN_HZ_CONNECT_TIMEOUT": "10", "PYTHONUNBUFFERED": "1", **(env_extra or {})})
        env.pop("DOLPHIN_HZ_MEMBERS", None)
        self.log_path = log_path
        self._log = open(log_path, "a")  # noqa: SIM115 - closed in stop()/kill9()
        self.proc = subprocess.Popen([sys.executable, "-m", "dolphin.services.obf"], cwd=PROJECT_ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log_text(self) -> str:
        return self.log_path.read_text()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return int(self.proc.returncode)


class SimProcess:
    """``python -m dolphin.market.sim`` (what `dolphin sim` runs) on a free port, stopped with SIGTERM."""

    def __init__(self, tmp: Path, *args: str) -> None:
        import json
        import time

        ready = tmp / "sim-ready.json"
        ready.unlink(missing_ok=True)
        self.log_path = tmp / "sim.log"
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "dolphin.market.sim", "--port", "0", "--ready-file",
                                      str(ready), "--log-level", "WARNING", *args], cwd=PROJECT_ROOT,
                                     stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + 300        # generating 540 symbols' history takes seconds, more on a busy box
        while not ready.exists() and self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("the simulator did not write its ready file within 300 s")
            time.sleep(0.05)
        if self.proc.poll() is not None:
            self._log.close()
            raise AssertionError(f"the simulator exited: {self.log_path.read_text()[-2000:]}")
        info = json.loads(ready.read_text())
        self.rest_url: str = info["rest_url"]
        self.ws_url: str = info["ws_url"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
