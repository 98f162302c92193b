"""How every DOLPHIN daemon runs: logging, signals, the bus connection, the heartbeat.

A service is an async function taking a `ServiceContext`; `run_service` runs it under
asyncio until it returns or SIGTERM/SIGINT sets `ctx.stop`, then cleans up and exits
0 — supervisord sees a clean stop, the log shows no traceback. A crash is logged once
with its traceback and exits 1, so supervisord's autorestart (and MHS) take over.

The heartbeat (`DOLPHIN_HEARTBEAT["<service>_heartbeat"]`, every few seconds, wall
clock) is how MHS and the TUI tell a live service from a hung one.
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
from typing import Any

from dolphin.paths import runtime_root

HEARTBEAT_INTERVAL_S = 5.0
CONNECT_RETRY_MAX_S = 5.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

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
                                                                         pid=os.getpid(), phase=self.phase))
                except Exception as exc:  # the bus being down must not kill the service
                    self.log.warning("heartbeat not written: %s", exc)
            await self.sleep(interval_s)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self.client is not None:
            try:
                await self.client.shutdown()
            except Exception as exc:
                self.log.debug("bus client shutdown: %s", exc)


ServiceMain = Callable[[ServiceContext], Awaitable[None]]


def run_service(name: str, main: ServiceMain, *, heartbeat: bool = True, log_file: Path | None = None) -> int:
    """Run ``main`` as the service ``name`` until it returns or a stop signal arrives."""
    log = configure_logging(name, log_file=log_file)

    async def runner() -> int:
        ctx = ServiceContext(name=name, log=log)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, ctx.stop.set)
        if heartbeat:
            ctx.spawn(ctx.heartbeat_forever(), "heartbeat")
        log.info("starting (pid %d, home %s)", os.getpid(), ctx.home)
        body = asyncio.ensure_future(main(ctx))
        stopper = asyncio.ensure_future(ctx.stop.wait())
        try:
            done, _ = await asyncio.wait({body, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if body in done:
                body.result()  # re-raise a crash
                return 0
            ctx.phase = "stopping"
            log.info("stop signal received; shutting down")
            try:
                await asyncio.wait_for(body, timeout=10.0)
            except TimeoutError:
                body.cancel()
                try:
                    await body
                except asyncio.CancelledError:
                    pass
            return 0
        except Exception:
            log.exception("service crashed")
            return 1
        finally:
            stopper.cancel()
            await ctx.close()
            log.info("stopped")

    return asyncio.run(runner())
