"""Helpers for the OBF tests: the daemon in a thread (counters readable) or as a process, bus readers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from dolphin.bus import AsyncBus, Bus, BusSettings, ShardedFeatureStore, connect, connect_async, schema
from dolphin.bus.ob_feed import ObFeed, ObView
from dolphin.services.obf import ObfDaemon, ObfOptions, ObfStats, run_obf
from dolphin.services.runtime import ServiceContext
from dolphin.store.ob_cache import FallbackReader, ObFallback
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


class TraderObReader:
    """The trader's OB read path, built as `TraderService` builds it, on its own asyncio client and loop.

    An `ObFeed` follows the ten shard maps and the macro key through the official asyncio
    client (`ObFeed.start`, as `TraderService.start` calls it) and a `FallbackReader` reads
    OBF's file; `view` is `TraderService._ob_view`: `ObFeed.at_or_fallback`. The client's
    connect timeout is longer than the outage a test makes (a trader's default is 20 s),
    so it rides the outage out and reconnects, its listeners re-registered, by itself.
    """

    def __init__(self, address: str, home: Path) -> None:
        self.feed = ObFeed()
        self.fallback = FallbackReader(home)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="trader-ob-reader", daemon=True)
        self._thread.start()
        self.client = self._run(connect_async(BusSettings(members=(address,), connect_timeout_s=120.0),
                                              client_name="dolphin-trader-ob-test"))
        self._run(self.feed.start(self.client, AsyncBus(self.client, source="trader ob test")))

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def view(self, close_ms: int) -> tuple[ObView, bool, ObFallback | None]:
        """`TraderService._ob_view(close_ms)`, and the fallback file as that call read it (None: not read)."""
        read: list[ObFallback | None] = [None]

        def fallback() -> ObFallback | None:
            read[0] = self.fallback()
            return read[0]

        view, used = self.feed.at_or_fallback(close_ms, fallback)
        return view, used, read[0]

    @property
    def newest_bar_ms(self) -> int | None:
        """The market time of the newest OB bar the feed has heard of (any asset)."""
        return self.feed.at(0).newest_bar_ms

    def close(self) -> None:
        try:
            self._run(self.client.shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()


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
