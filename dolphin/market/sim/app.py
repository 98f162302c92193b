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
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from dolphin.embedding import BackgroundLoop, Embedded
from dolphin.market.errors import MarketError, SimConfigError, SimStartError
from dolphin.market.sim.account import AccountStore
from dolphin.market.sim.clock import ClockState, ClockStore, MarketIdentity, SimClock
from dolphin.market.sim.config import SimConfig
from dolphin.market.sim.engine import StreamEngine
from dolphin.market.sim.exchange import Exchange
from dolphin.market.sim.faults import Faults, parse_spec
from dolphin.market.sim.rest_server import RestApi
from dolphin.market.sim.source import MarketSource, SyntheticSource, make_source
from dolphin.market.sim.ws_server import StreamHub
from dolphin.store.atomic import atomic_write_text

log = logging.getLogger("dolphin.market.sim")


def _wall_ms() -> int:
    return int(time.time() * 1000)


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
        self._clock_store = ClockStore(config.state_dir)
        self.anchor: ClockState | None = None
        self.resumed = False
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
            anchor = await loop.run_in_executor(None, self._anchor, self.source)
            sim_now = anchor.sim_at(_wall_ms()) if self.resumed or anchor.anchor_wall_ms else anchor.anchor_sim_ms
            first_bar = self.source.bar_at(sim_now)
            await loop.run_in_executor(None, self.source.prefetch, first_bar)
            await loop.run_in_executor(None, self.source.prefetch, max(0, first_bar - 1))
            if not anchor.anchor_wall_ms:  # a new market not on the wall clock starts when it is ready
                anchor.anchor_wall_ms = _wall_ms()
            self._clock_store.save(anchor)
            self.anchor = anchor
            self.clock = SimClock(anchor.anchor_sim_ms, cfg.speed, anchor_wall_ms=anchor.anchor_wall_ms)
            self.start_ms = self.clock.now_ms() if self.resumed else anchor.anchor_sim_ms
            self.exchange = Exchange(cfg, self.source, self.clock, self._store,
                                     Faults([parse_spec(f) for f in cfg.faults]))
            if not self.resumed and self.exchange.state.last_funding_ms != self.start_ms:
                self.exchange.state.last_funding_ms = self.start_ms  # a new market's funding starts now
                self.exchange.save()
            self.hub = StreamHub(self.exchange)
            self.engine = StreamEngine(self.exchange, self.hub, tick_ms=cfg.tick_ms)
            self.rest = RestApi(cfg, self.exchange, enforce_limits=enforce_limits)
            hub, engine, exchange = self.hub, self.engine, self.exchange
            self.rest.status_extra = lambda: {**hub.stats(), **engine.stats(), "startTime": self.start_ms,
                                              "clock": self.clock_mode, "resumed": self.resumed}
            self.rest.admin_actions = {
                "ws-drop": lambda p: {"dropped": hub.kill(int(p["count"]) if p.get("count") else None,
                                                          p.get("target", "all"))},
                "listen-key-expire": lambda p: {"expired": exchange.userdata.expire_all()},
            }
            app = web.Application(client_max_size=1024 * 1024)
            app.add_routes(self.rest.routes())
            app.add_routes(self.hub.routes())
            app.router.add_route("*", "/{tail:.*}", self.rest.not_found_handler)
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
        log.info("simulator listening: REST %s  WS %s  (sim time %s, %s, speed %g×, %s)", self.rest_url, self.ws_url,
                 iso(self.start_ms), self.clock_description(), cfg.speed, self.source.describe())

    def _anchor(self, source: MarketSource) -> ClockState:
        """The market's clock anchor: the saved one if this is the same market, else a new one.

        A live synthetic market is placed in time so that the wall clock now is its default
        start (a few minutes before day 1's first panic); at speed 1 it is anchored at
        (now, now), so simulated time *is* wall time. A replay or an explicit ``--start``
        keeps its historical clock, anchored when the market is ready.
        """
        cfg = self.config
        identity = MarketIdentity(source=cfg.source, seed=cfg.seed, bar_seconds=cfg.bar_seconds,
                                  start_ms=cfg.start_ms)
        wall = _wall_ms()
        saved = self._clock_store.load()
        if saved is not None and saved.identity == identity:
            if saved.origin_ms is not None:
                assert isinstance(source, SyntheticSource)
                source.rebase(saved.origin_ms)
            if saved.speed != cfg.speed:
                saved = ClockState(version=1, identity=identity, anchor_sim_ms=saved.sim_at(wall),
                                   anchor_wall_ms=wall, speed=cfg.speed, origin_ms=saved.origin_ms)
            self.resumed = True
            log.info("resuming the market clock of %s at %s (market started %s)", self._clock_store.path,
                     iso(saved.sim_at(wall)), iso(source.default_start_ms()))
            return saved
        if saved is not None:
            log.warning("%s belongs to another market (%s): the clock starts anew", self._clock_store.path,
                        saved.identity)
        if cfg.is_live:
            assert isinstance(source, SyntheticSource)
            offset = source.default_start_ms() - source.first_ms
            now = wall - wall % source.bar_ms
            source.rebase(now - offset)
            return ClockState(version=1, identity=identity, anchor_sim_ms=now,
                              anchor_wall_ms=now if cfg.speed == 1 else 0, speed=cfg.speed, origin_ms=now - offset)
        start = resolve_start(cfg, source)
        return ClockState(version=1, identity=identity, anchor_sim_ms=start, anchor_wall_ms=0, speed=cfg.speed)

    @property
    def clock_mode(self) -> str:
        return "wall" if self.config.is_live else "historical"

    def clock_description(self) -> str:
        cfg = self.config
        if cfg.is_live:
            text = "wall clock" if cfg.speed == 1 else f"from the wall clock, {cfg.speed:g}x"
        else:
            text = "historical clock"
        return text + (", resumed" if self.resumed else "")

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
                "clock": self.clock_mode, "resumed": self.resumed, **self.hub.stats(), **self.engine.stats()}


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

    def kill_ws_connections(self, count: int | None = None, target: str = "all") -> int:
        """Abort ``count`` WebSocket connections server-side (all if None); returns how many."""
        return int(self.call(lambda sim: sim.hub.kill(count, target)))

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
                                        "speed": sim.config.speed, "clock": sim.clock_mode,
                                        "resumed": sim.resumed}))


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
