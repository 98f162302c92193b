"""Helpers the integration layer shares: a member for services, a scan-key listener, a service body on a thread.

The scanner and bridge tests read a service's counters live, so they run its body
(`run_scanner`, `run_bridge`) in-process on its own thread and loop (`ServiceThread`),
stopped like SIGTERM would stop it, rather than as a process.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dolphin.bus import Bus, BusSettings, EigenScan, ThreadQueue, connect, schema, subscribe
from dolphin.bus.member import EmbeddedMember
from dolphin.services.runtime import ServiceContext
from tests.support import wait_until


def member_for_services(monkeypatch: pytest.MonkeyPatch, connect_timeout_s: float) -> Iterator[EmbeddedMember]:
    """An embedded member on a free port, and the environment a service uses to find it."""
    with EmbeddedMember(port=0) as m:
        monkeypatch.delenv("DOLPHIN_HZ_MEMBERS", raising=False)
        monkeypatch.setenv("DOLPHIN_HZ_PORT", str(m.port))
        monkeypatch.setenv("DOLPHIN_HZ_CONNECT_TIMEOUT", str(connect_timeout_s))
        yield m


@dataclass
class ScanWatch:
    """A separate threaded client listening to latest_eigen_scan: every write, in order."""

    address: str
    source: str = "test listener"
    client: Any = None
    queue: ThreadQueue = field(default_factory=ThreadQueue)
    scans: list[EigenScan] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = connect(BusSettings(members=(self.address,), connect_timeout_s=10.0))
        self.subscription = subscribe(self.client, schema.FEATURES, self.queue, key=schema.LATEST_EIGEN_SCAN,
                                      source=self.source)

    def numbers(self) -> list[int]:
        while self.queue.qsize():
            event = self.queue.get(timeout=1.0)
            if event.payload is not None:
                self.scans.append(event.payload)
        return [s.scan_number for s in self.scans]

    def wait_numbers(self, expected: list[int], timeout: float = 60.0) -> list[EigenScan]:
        wait_until(lambda: self.numbers() == expected or len(self.numbers()) > len(expected), timeout)
        assert self.numbers() == expected
        return self.scans

    def get(self, map_name: str, key: str) -> Any:
        return Bus(self.client).get(map_name, key)

    def close(self) -> None:
        self.subscription.close()
        self.client.shutdown()


def scan_watch(member: EmbeddedMember, source: str) -> Iterator[ScanWatch]:
    watch = ScanWatch(member.address, source)
    try:
        yield watch
    finally:
        watch.close()


STOP_GRACE_S = 60.0  # a hang guard: a stopping service flushes its publisher, which a loaded machine makes slow


def _cancel_every_task() -> None:
    for task in asyncio.all_tasks():
        task.cancel()


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
        """Set the stop event, as SIGTERM does, and wait for the body to end.

        A body still busy `STOP_GRACE_S` later fails the test — after its tasks are cancelled,
        so a service that hangs does not keep running into the module's next tests.
        """
        assert self._loop is not None and self.ctx is not None
        self._loop.call_soon_threadsafe(self.ctx.stop.set)
        self._thread.join(timeout=STOP_GRACE_S)
        if self._thread.is_alive():
            tasks = self._dump()
            self._loop.call_soon_threadsafe(_cancel_every_task)
            self._thread.join(timeout=60)
            raise AssertionError(f"{self.name} did not stop within {STOP_GRACE_S:.0f} s (its tasks are cancelled "
                                 f"now); they were:\n{tasks}")
        assert self.error is None, self.error

    def _dump(self) -> str:
        out = io.StringIO()
        assert self._loop is not None
        for task in asyncio.all_tasks(self._loop):
            task.print_stack(limit=8, file=out)
        return out.getvalue()
