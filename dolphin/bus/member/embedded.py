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
from dataclasses import replace
from pathlib import Path
from typing import Any

from dolphin.bus.member.config import MemberConfig
from dolphin.bus.member.member import Member, MemberStartFailed
from dolphin.embedding import BackgroundLoop, Embedded
from dolphin.store.atomic import atomic_write_text

log = logging.getLogger("dolphin.bus.member")


class EmbeddedMember(Embedded[Member]):
    """A member on a background thread. Use as a context manager or call start()/stop()."""

    start_timeout = 15.0
    stop_timeout = 15.0

    def __init__(self, config: MemberConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else MemberConfig(port=0)
        self.config = replace(base, **overrides) if overrides else base
        self._bg: BackgroundLoop[Member] = BackgroundLoop(
            lambda: Member(self.config), lambda m: m.start(), lambda m: m.stop(), name="embedded bus member",
            start_failed=lambda e: e if isinstance(e, MemberStartFailed) else MemberStartFailed(str(e)))

    @property
    def member(self) -> Member | None:
        return self._bg.server

    @property
    def host(self) -> str:
        return self._bg.require().advertised[0]

    @property
    def port(self) -> int:
        return self._bg.require().advertised[1]

    @property
    def address(self) -> str:
        """``host:port`` for `cluster_members` / ``DOLPHIN_HZ_MEMBERS``."""
        host, port = self._bg.require().advertised
        return f"{host}:{port}"


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
