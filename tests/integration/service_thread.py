"""A service body run in-process on its own thread and loop, stopped like SIGTERM would stop it.

The scanner and bridge tests read the service's counters live, so they run its body
(`run_scanner`, `run_bridge`) here rather than as a process.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from pathlib import Path
from typing import Any

from dolphin.services.runtime import ServiceContext


class ServiceThread:
    """Subclasses name the service and run its body in `body(ctx)`."""

    name = "service"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.ctx: ServiceContext | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-under-test", daemon=True)

    async def body(self, ctx: ServiceContext) -> Any:
        raise TypeError(f"{type(self).__name__} does not run a service body")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        ctx = ServiceContext(name=self.name, log=logging.getLogger(f"dolphin.{self.name}"), home=self.home)
        self.ctx = ctx
        try:
            await self.body(ctx)
        finally:
            await ctx.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start_thread(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        assert self._loop is not None and self.ctx is not None
        self._loop.call_soon_threadsafe(self.ctx.stop.set)
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), f"{self.name} did not stop; its tasks:\n{self._dump()}"
        assert self.error is None, self.error

    def _dump(self) -> str:
        out = io.StringIO()
        assert self._loop is not None
        for task in asyncio.all_tasks(self._loop):
            task.print_stack(limit=8, file=out)
        return out.getvalue()
