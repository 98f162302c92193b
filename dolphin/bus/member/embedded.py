"""Running a member: in-process on its own thread, or in the foreground of a process.

`EmbeddedMember` serves tests and one-process tools. The member gets its own thread
and its own event loop: a threaded client's blocking calls would otherwise deadlock a
loop it shares with the member (spec §9.6). Port 0 picks a free port; `address`
tells clients where to go.

`serve()` is what `dolphin hz serve` and ``python -m dolphin.bus.member`` run: the
member in the foreground until SIGTERM or SIGINT, then a clean stop (connection tasks
cancelled and awaited, final snapshot written) and exit status 0, with no traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from dolphin.bus.member.config import MemberConfig
from dolphin.bus.member.member import Member, MemberStartFailed
from dolphin.store.atomic import atomic_write_text

log = logging.getLogger("dolphin.bus.member")


class EmbeddedMember:
    """A member on a background thread. Use as a context manager or call start()/stop()."""

    def __init__(self, config: MemberConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else MemberConfig(port=0)
        self.config = replace(base, **overrides) if overrides else base
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.member: Member | None = None

    @property
    def host(self) -> str:
        return self._require().advertised[0]

    @property
    def port(self) -> int:
        return self._require().advertised[1]

    @property
    def address(self) -> str:
        """``host:port`` for `cluster_members` / ``DOLPHIN_HZ_MEMBERS``."""
        host, port = self._require().advertised
        return f"{host}:{port}"

    def _require(self) -> Member:
        if self.member is None or not self._ready.is_set():
            raise RuntimeError("the embedded member is not running")
        return self.member

    def start(self, timeout: float = 15.0) -> EmbeddedMember:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._run, name="dolphin-hz-member", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise MemberStartFailed(f"embedded member did not start within {timeout} s")
        if self._error is not None:
            self._thread.join(timeout)
            raise MemberStartFailed(str(self._error)) from self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start() or logged; the thread must not die silently
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("embedded member crashed")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        member = Member(self.config)
        try:
            await member.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self.member = member
        self._ready.set()
        await self._stop_event.wait()
        await member.stop()

    def call(self, fn: Any, *args: Any, timeout: float = 10.0) -> Any:
        """Run ``fn(member, *args)`` on the member's loop and return its result (for tests/tools)."""
        member = self._require()
        assert self._loop is not None

        async def run() -> Any:
            return fn(member, *args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop_event is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop_event.set)
            except RuntimeError:
                pass
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"embedded member did not stop within {timeout} s")
        self._thread = None

    def __enter__(self) -> EmbeddedMember:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _write_ready_file(path: Path, member: Member) -> None:
    """Atomically publish where the member listens (for supervisors and tests using port 0)."""
    host, port = member.advertised
    atomic_write_text(path, json.dumps({"host": host, "port": port, "pid": os.getpid(),
                                        "member_uuid": str(member.uuid), "cluster_name": member.config.cluster_name}))


def serve(config: MemberConfig, *, ready_file: Path | None = None) -> None:
    """Run a member in the foreground until SIGTERM/SIGINT. Raises MemberStartFailed."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        member = Member(config)
        await member.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready_file is not None:
            _write_ready_file(ready_file, member)
        try:
            await stop.wait()
            log.info("stop signal received; shutting down")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await member.stop()

    asyncio.run(main())
