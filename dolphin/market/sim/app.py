"""Running the simulator exchange: in-process (tests, tools) or in the foreground (CLI, supervisord).

`Simulator` is the asyncio object: it builds the price source, warms it up, starts the
clock, binds one aiohttp server for REST (``/fapi/...``) and WebSocket streams (``/ws``,
``/stream``) on one port, and runs the emission loop.

`SimExchange` runs a `Simulator` on its own thread and event loop — port 0 picks a free
port, ``rest_url``/``ws_url`` say where it is, ``stop()`` shuts it down cleanly — so a
test can point real clients at it over real sockets.

`serve()` is what ``dolphin sim`` and ``python -m dolphin.market.sim`` run: the
simulator in the foreground until SIGTERM or SIGINT, then a clean stop (connections
closed, tasks awaited, account state saved) and exit status 0, no traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from dolphin.embedding import BackgroundLoop, Embedded
from dolphin.market.errors import MarketError, SimConfigError, SimStartError
from dolphin.market.sim.account import AccountStore
from dolphin.market.sim.clock import SimClock
from dolphin.market.sim.config import SimConfig
from dolphin.market.sim.engine import StreamEngine
from dolphin.market.sim.exchange import Exchange
from dolphin.market.sim.rest_server import RestApi
from dolphin.market.sim.source import MarketSource, make_source
from dolphin.market.sim.ws_server import StreamHub
from dolphin.store.atomic import atomic_write_text

log = logging.getLogger("dolphin.market.sim")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def resolve_start(config: SimConfig, source: MarketSource) -> int:
    """The simulated start time: configured, else the source's default (capped by the data)."""
    start = config.start_ms if config.start_ms is not None else source.default_start_ms()
    if source.end_ms is not None and config.start_ms is None:
        start = min(start, source.end_ms - source.bar_ms)
    if start < source.first_ms:
        raise SimConfigError(f"--start {iso(start)} is before the market's first bar ({iso(source.first_ms)})")
    if source.end_ms is not None and start >= source.end_ms:
        raise SimConfigError(f"--start {iso(start)} is after the replayed data ends ({iso(source.end_ms)})")
    return start


class Simulator:
    """The simulator exchange on the running event loop (``await start()`` / ``await stop()``)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.source: MarketSource | None = None
        self.clock: SimClock | None = None
        self.exchange: Exchange | None = None
        self.hub: StreamHub | None = None
        self.engine: StreamEngine | None = None
        self.rest: RestApi | None = None
        self._store = AccountStore(config.state_dir)
        self._runner: web.AppRunner | None = None
        self._engine_task: asyncio.Task[None] | None = None
        self.host = config.host
        self.port = config.port
        self.start_ms = 0

    @property
    def rest_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{_url_host(self.host)}:{self.port}"

    async def start(self, enforce_limits: bool = True) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        self._store.lock()
        try:
            self.source = await loop.run_in_executor(None, make_source, cfg)
            self.start_ms = resolve_start(cfg, self.source)
            first_bar = self.source.bar_at(self.start_ms)
            await loop.run_in_executor(None, self.source.prefetch, first_bar)
            await loop.run_in_executor(None, self.source.prefetch, max(0, first_bar - 1))
            self.clock = SimClock(self.start_ms, cfg.speed)
            self.exchange = Exchange(cfg, self.source, self.clock, self._store)
            self.hub = StreamHub(self.exchange)
            self.engine = StreamEngine(self.exchange, self.hub, tick_ms=cfg.tick_ms)
            self.rest = RestApi(cfg, self.exchange, enforce_limits=enforce_limits)
            hub, engine = self.hub, self.engine
            self.rest.status_extra = lambda: {**hub.stats(), **engine.stats(), "startTime": self.start_ms}
            app = web.Application(client_max_size=1024 * 1024)
            app.add_routes(self.rest.routes())
            app.add_routes(self.hub.routes())
            self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, cfg.host, cfg.port, reuse_address=True)
            try:
                await site.start()
            except OSError as exc:
                raise SimStartError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}") from None
            address = self._runner.addresses[0]
            self.host, self.port = str(address[0]), int(address[1])
            self._engine_task = asyncio.create_task(self.engine.run(), name="dolphin-sim-engine")
        except BaseException:
            await self._teardown()
            raise
        log.info("simulator listening: REST %s  WS %s  (sim time %s, speed %g×, %s)", self.rest_url, self.ws_url,
                 iso(self.start_ms), cfg.speed, self.source.describe())

    async def stop(self) -> None:
        await self._teardown()

    async def _teardown(self) -> None:
        if self._engine_task is not None:
            self._engine_task.cancel()
            try:
                await self._engine_task
            except asyncio.CancelledError:
                pass
            self._engine_task = None
        if self.hub is not None:
            await self.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.engine is not None:
            self.engine.close()
        if self.rest is not None:
            self.rest.close()
        if self.exchange is not None:
            self.exchange.save()
        self._store.unlock()

    def status(self) -> dict[str, Any]:
        assert self.exchange is not None and self.hub is not None and self.engine is not None
        return {"rest_url": self.rest_url, "ws_url": self.ws_url, "server_time": self.exchange.now(),
                **self.hub.stats(), **self.engine.stats()}


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class SimExchange(Embedded[Simulator]):
    """A `Simulator` on a background thread with its own event loop (context manager or start/stop)."""

    start_timeout = 120.0
    stop_timeout = 30.0

    def __init__(self, config: SimConfig | None = None, *, enforce_limits: bool = True, **overrides: Any) -> None:
        base = config if config is not None else SimConfig(port=0)
        self.config = replace(base, **overrides) if overrides else base
        self.enforce_limits = enforce_limits
        self.sim = Simulator(self.config)
        self._bg: BackgroundLoop[Simulator] = BackgroundLoop(
            lambda: self.sim, lambda sim: sim.start(enforce_limits=self.enforce_limits), lambda sim: sim.stop(),
            name="simulator", start_failed=_start_failed)

    @property
    def rest_url(self) -> str:
        return self._bg.require().rest_url

    @property
    def ws_url(self) -> str:
        return self._bg.require().ws_url

    @property
    def exchange(self) -> Exchange:
        exchange = self._bg.require().exchange
        assert exchange is not None
        return exchange

    def kill_ws_connections(self, count: int | None = None) -> int:
        """Abort ``count`` WebSocket connections server-side (all if None); returns how many."""
        return int(self.call(lambda sim: sim.hub.kill(count)))

    def now_ms(self) -> int:
        return int(self.call(lambda sim: sim.exchange.now()))

    def status(self) -> dict[str, Any]:
        return dict(self.call(lambda sim: sim.status()))


def _start_failed(exc: BaseException) -> Exception:
    if isinstance(exc, MarketError):
        return exc
    if isinstance(exc, TimeoutError):
        return SimStartError(str(exc))
    return SimStartError(f"simulator failed to start: {type(exc).__name__}: {exc}")


def write_ready_file(path: Path, sim: Simulator) -> None:
    """Atomically publish where the simulator listens (supervisors and tests using port 0)."""
    atomic_write_text(path, json.dumps({"rest_url": sim.rest_url, "ws_url": sim.ws_url, "host": sim.host,
                                        "port": sim.port, "pid": os.getpid(), "start_ms": sim.start_ms,
                                        "speed": sim.config.speed}))


def serve(config: SimConfig, *, ready_file: Path | None = None, enforce_limits: bool = True,
          announce: Any = None) -> None:
    """Run the simulator in the foreground until SIGTERM/SIGINT (raises MarketError if it cannot start).

    ``announce(simulator)`` is called once it listens (the CLI prints the URLs there).
    """

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        sim = Simulator(config)
        try:
            await sim.start(enforce_limits=enforce_limits)
            if announce is not None:
                announce(sim)
            if ready_file is not None:
                write_ready_file(ready_file, sim)
            await stop.wait()
            log.info("stop signal received; shutting down")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await sim.stop()

    asyncio.run(main())
