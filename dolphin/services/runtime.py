"""How every DOLPHIN daemon runs: logging, signals, the bus connection, the heartbeat.

A service is an async function taking a `ServiceContext`; `run_service` runs it under
asyncio until it returns or SIGTERM/SIGINT sets `ctx.stop`, then cleans up and exits
0 — supervisord sees a clean stop, the log shows no traceback. A crash is logged once
with its traceback and exits 1, so supervisord's autorestart (and MHS) take over.

The heartbeat (`DOLPHIN_HEARTBEAT["<service>_heartbeat"]`, every few seconds, wall
clock) is how MHS and the TUI tell a live service from a hung one.

The bus watch: the hazelcast client reconnects by itself, but after its connect timeout
(20 s without a member) it shuts down for good, and a service holding it would go on
deaf — a trader that never sees another scan. A service that can rebuild its client in
place (`reconnect_bus`, the scanner: one key, no listeners) connects again; every other
one exits with `EXIT_BUS_LOST`, and supervisord's autorestart brings it back whole —
listeners, and for the trader its books from the journal — waiting for the member in
`connect_bus`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hazelcast.errors import IllegalStateError

from dolphin.enums import WarmupUnit
from dolphin.paths import runtime_root

if TYPE_CHECKING:
    from dolphin.bus.payloads import WarmupProgress

HEARTBEAT_INTERVAL_S = 5.0
CONNECT_RETRY_MAX_S = 5.0
BUS_WATCH_INTERVAL_S = 1.0
EXIT_BUS_LOST = 1        # a failure to supervisord (autorestart), not a clean stop
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class NetworkErrorsOnOneLine(logging.Filter):
    """Fold the traceback of an expected network failure into the record's line.

    The hazelcast client logs every failed (re)connect attempt with a full traceback; during
    a bus outage that buries a service's log in identical stacks. A refused or reset
    connection is not a bug: its type and message say all. Anything else (and anything
    DOLPHIN's own code logs) keeps its traceback.
    """

    EXPECTED: tuple[type[BaseException], ...] = (OSError, TimeoutError, IllegalStateError)  # …, "gave up"

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, self.EXPECTED) and record.name.startswith("hazelcast"):
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(name: str, level: str | None = None, log_file: Path | None = None) -> logging.Logger:
    """One line per record on stdout (supervisord captures and rotates it), or in ``log_file``."""
    target: dict[str, Any] = {"stream": sys.stdout}
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        target = {"filename": str(log_file)}
    logging.basicConfig(level=(level or os.environ.get("DOLPHIN_LOG_LEVEL", "INFO")).upper(), format=LOG_FORMAT,
                        force=True, **target)
    for noisy in ("hazelcast", "asyncio", "websockets", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(NetworkErrorsOnOneLine())
    return logging.getLogger(f"dolphin.{name}")


@dataclass
class ServiceContext:
    """What a running service gets: its name, logger, stop event, runtime root and bus access."""

    name: str
    log: logging.Logger
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    home: Path = field(default_factory=runtime_root)
    client: Any = None
    bus: Any = None
    phase: str = "starting"
    warmup: tuple[int, int] | None = None   # (done, total) while the service warms up; on every heartbeat
    warmup_unit: WarmupUnit = WarmupUnit.BARS   # what `warmup` counts (OBF: seconds)
    reconnect_bus: bool = False     # rebuild a shut-down client in place instead of exiting
    bus_lost: bool = False          # the client shut down and this service exits to be restarted
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _bus_watch: asyncio.Task[Any] | None = None

    async def connect_bus(self) -> Any:
        """The asyncio bus client, retrying with back-off until connected or stopped.

        Services start in parallel under supervisord, so the member may not be up yet;
        a service waits for it instead of crashing into a restart loop.
        """
        from dolphin.bus import AsyncBus, BusUnavailableError, connect_async

        delay = 0.5
        while not self.stop.is_set():
            try:
                self.client = await connect_async(client_name=f"dolphin-{self.name}")
                self.bus = AsyncBus(self.client, source=f"{self.name} service")
                self.log.info("connected to the bus")
                return self.bus
            except BusUnavailableError as exc:
                self.log.warning("bus not reachable yet (%s); retrying in %.1f s", exc, delay)
                await self.sleep(delay)
                delay = min(CONNECT_RETRY_MAX_S, delay * 2)
        return None

    def start_bus_watch(self) -> None:
        """Run `watch_bus` once per context (`run_service` starts it; an embedded service body may too)."""
        if self._bus_watch is None:
            self._bus_watch = self.spawn(self.watch_bus(), "bus watch")

    async def watch_bus(self, interval_s: float = BUS_WATCH_INTERVAL_S) -> None:
        """Notice a client that shut itself down: reconnect (`reconnect_bus`) or stop to be restarted."""
        while not await self.sleep(interval_s):
            client = self.client
            if client is None or client.lifecycle_service.is_running():
                continue
            if self.reconnect_bus:
                self.log.warning("bus client shut down (the member was away longer than the connect timeout); "
                                 "reconnecting")
                self.bus = None
                self.client = None
                await self.connect_bus()
                continue
            self.log.error("bus client shut down (the member was away longer than the connect timeout); exiting "
                           "so supervisord restarts this service with a new one")
            self.bus_lost = True
            self.stop.set()
            return

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when the stop event fired."""
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
            return True
        except TimeoutError:
            return False

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """A background task owned by the service: cancelled and awaited at shutdown."""
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.name}:{name}")
        self._tasks.append(task)
        return task

    async def heartbeat_forever(self, interval_s: float = HEARTBEAT_INTERVAL_S) -> None:
        from dolphin.bus import Heartbeat, iso_utc, schema

        key = schema.heartbeat_key(self.name)
        while not self.stop.is_set():
            if self.bus is not None:
                now = time.time()
                try:
                    await self.bus.put(schema.HEARTBEAT, key, Heartbeat(ts=now, iso=iso_utc(now), service=self.name,
                                                                         pid=os.getpid(), phase=self.phase,
                                                                         warmup=self._warmup()))
                except Exception as exc:  # the bus being down must not kill the service
                    self.log.warning("heartbeat not written: %s", exc)
            await self.sleep(interval_s)

    def _warmup(self) -> WarmupProgress | None:
        from dolphin.bus.payloads import WarmupProgress

        if self.warmup is None:
            return None
        done, total = self.warmup
        return WarmupProgress(done=min(max(done, 0), total), total=total, unit=self.warmup_unit) if total > 0 else None

    async def final_heartbeat(self, phase: str) -> None:
        """A last beat saying how the service ended (``stopped`` or ``crashed``), if the bus is there.

        The survival watchdog reads a trader's beat: a trader that *stopped* is not a failed
        one (its beat simply ages), while a silent one is (bible §11.2 Cat1).
        """
        from dolphin.bus import Heartbeat, iso_utc, schema

        if self.bus is None:
            return
        now = time.time()
        try:
            await asyncio.wait_for(self.bus.put(schema.HEARTBEAT, schema.heartbeat_key(self.name),
                                                Heartbeat(ts=now, iso=iso_utc(now), service=self.name,
                                                          pid=os.getpid(), phase=phase)), 2.0)
        except Exception as exc:  # the bus may be what stopped us
            self.log.debug("final heartbeat not written: %s", exc)

    async def close(self, final_phase: str | None = None) -> None:
        """Cancel the service's tasks, write the last heartbeat (`final_phase`), shut the client down."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if final_phase is not None:
            await self.final_heartbeat(final_phase)
        if self.client is not None:
            try:
                await self.client.shutdown()
            except Exception as exc:
                self.log.debug("bus client shutdown: %s", exc)


ServiceMain = Callable[[ServiceContext], Awaitable[None]]


def run_service(name: str, main: ServiceMain, *, heartbeat: bool = True, log_file: Path | None = None,
                raise_crash: bool = False) -> int:
    """Run ``main`` as the service ``name`` until it returns or a stop signal arrives.

    A crash is logged with its traceback and returns 1 (supervisord's view); with
    ``raise_crash`` (a foreground command such as `dolphin paper`) it is also re-raised, so
    the command can put the cause in its one line instead of pointing at the log.
    """
    log = configure_logging(name, log_file=log_file)

    async def runner() -> int:
        ctx = ServiceContext(name=name, log=log)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, ctx.stop.set)
        if heartbeat:
            ctx.spawn(ctx.heartbeat_forever(), "heartbeat")
        ctx.start_bus_watch()
        log.info("starting (pid %d, home %s)", os.getpid(), ctx.home)
        body = asyncio.ensure_future(main(ctx))
        stopper = asyncio.ensure_future(ctx.stop.wait())
        try:
            done, _ = await asyncio.wait({body, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if body in done:
                body.result()  # re-raise a crash
                return EXIT_BUS_LOST if ctx.bus_lost else 0
            ctx.phase = "stopping"
            if not ctx.bus_lost:
                log.info("stop signal received; shutting down")
            try:
                await asyncio.wait_for(body, timeout=10.0)
            except TimeoutError:
                body.cancel()
                try:
                    await body
                except asyncio.CancelledError:
                    pass
            return EXIT_BUS_LOST if ctx.bus_lost else 0
        except Exception:
            log.exception("service crashed")
            ctx.phase = "crashed"
            if raise_crash:
                raise
            return 1
        finally:
            stopper.cancel()
            final = None if (not heartbeat or ctx.bus_lost) else "crashed" if ctx.phase == "crashed" else "stopped"
            await ctx.close(final_phase=final)
            log.info("stopped")

    return asyncio.run(runner())
