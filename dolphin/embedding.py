"""Run an asyncio server on a background thread with its own event loop.

The embedded bus member and the simulator exchange both serve tests and tools in-process
this way. A threaded caller (the official Hazelcast client's blocking calls, a test) must
never share the server's loop — a blocking `.result()` there would deadlock it — so the
server gets a thread and a loop of its own; start failures are raised in the caller's
thread, not lost in the background one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

S = TypeVar("S")

log = logging.getLogger("dolphin.embedding")


class BackgroundLoop(Generic[S]):
    """Owns one server object on a daemon thread: `start()` returns once it serves, `stop()` once it is gone.

    ``make`` builds the server on the loop's thread; ``start``/``stop`` are its async life
    cycle; ``start_failed`` turns a start error into the caller's exception type.
    """

    def __init__(self, make: Callable[[], S], start: Callable[[S], Awaitable[Any]], stop: Callable[[S], Awaitable[Any]],
                 *, name: str, start_failed: Callable[[BaseException], Exception]) -> None:
        self._make = make
        self._start = start
        self._stop = stop
        self._name = name
        self._start_failed = start_failed
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.server: S | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._ready.is_set() and self._error is None and self.server is not None

    def require(self) -> S:
        if not self.running:
            raise RuntimeError(f"{self._name} is not running")
        assert self.server is not None
        return self.server

    def start(self, timeout: float) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self._name} already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise self._start_failed(TimeoutError(f"{self._name} did not start within {timeout} s"))
        if self._error is not None:
            self._thread.join(timeout)
            self._thread = None
            raise self._start_failed(self._error) from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start() or logged; the thread must not die silently
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("%s crashed", self._name)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            server = self._make()
            await self._start(server)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self.server = server
        self._ready.set()
        await self._stop_event.wait()
        await self._stop(server)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """Run ``fn(server, *args)`` on the server's loop and return its result."""
        server = self.require()
        assert self._loop is not None

        async def run() -> Any:
            return fn(server, *args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self, timeout: float) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop_event is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop_event.set)
            except RuntimeError:
                pass
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"{self._name} did not stop within {timeout} s")
        self._thread = None


class Embedded(Generic[S]):
    """Context-manager sugar over a `BackgroundLoop` for the public embedding classes."""

    _bg: BackgroundLoop[S]
    start_timeout: float = 30.0
    stop_timeout: float = 30.0

    def start(self, timeout: float | None = None) -> Any:
        self._bg.start(self.start_timeout if timeout is None else timeout)
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._bg.stop(self.stop_timeout if timeout is None else timeout)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        return self._bg.call(fn, *args, timeout=timeout)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
