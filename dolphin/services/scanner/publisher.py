"""Live scans → ``DOLPHIN_FEATURES["latest_eigen_scan"]``, one write per scan, never blocking the scan loop.

The scan loop `submit`s each live scan as soon as it is computed, before its Arrow file
is written; this task writes them in order, one `put` each, with ``bridge_ts`` = the wall
clock at the write. `submit` returns a future that settles when the put is done (True)
or given up (False), so the scan loop can let the put go out before it starts the file
write, whose thread would otherwise hold the GIL while the put's reply waits. A bus outage must not stop scanning or archiving, and a put to an unreachable
member blocks until the client's invocation timeout — so the put runs here, bounded by
``timeout_s``, while the scan loop goes on. On a failure: counted, logged once (and
once more when writes work again); every older queued scan is dropped (the key holds
the latest only) and the newest is tried when the next scan arrives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from dolphin.bus import schema
from dolphin.bus.scan_codec import UnpublishableScan, payload_from_record
from dolphin.scan.record import ScanRecord


class ScanPublisher:
    """Ordered, failure-tolerant bus writer of live scans (see the module doc)."""

    def __init__(self, get_bus: Callable[[], Any], log: logging.Logger, *, timeout_s: float = 2.0,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.perf_counter,
                 on_published: Callable[[ScanRecord, float | None, float, float], None] | None = None) -> None:
        self._get_bus = get_bus
        self.log = log
        self.timeout_s = timeout_s
        self._clock = clock
        self._monotonic = monotonic
        self._on_published = on_published
        self._queue: deque[tuple[ScanRecord, float | None, asyncio.Future[bool]]] = deque()
        self._wake = asyncio.Event()
        self._failing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.published = 0
        self.failures = 0
        self.dropped = 0
        self.unpublishable = 0
        self.last_published: int | None = None

    @property
    def failing(self) -> bool:
        """The last put failed: the bus is away (waiting on a put now would only stall the caller)."""
        return self._failing

    def submit(self, record: ScanRecord, completed_at: float | None = None) -> asyncio.Future[bool]:
        """Queue a live scan for the bus (non-blocking); the future says whether it was written."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((record, completed_at, done))
        self._idle.clear()
        self._wake.set()
        return done

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued scan was written or given up (tests, shutdown)."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
            return True
        except TimeoutError:
            return False

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                record, completed_at, done = self._queue.popleft()
                ok = await self._put(record, completed_at)
                _settle(done, ok)
                if not ok:
                    # keep only the newest: it is tried once now if it came meanwhile, else with the next scan
                    while len(self._queue) > 1:
                        _settle(self._queue.popleft()[2], False)
                        self.dropped += 1
                    if self._queue:
                        continue
                    break
            if not self._queue:
                self._idle.set()

    async def _put(self, record: ScanRecord, completed_at: float | None) -> bool:
        bus = self._get_bus()
        try:
            payload = payload_from_record(record, bridge_ts=self._clock())
        except UnpublishableScan as exc:
            if self.unpublishable == 0:
                self.log.warning("%s: not published (the archive has it); further ones are only counted", exc)
            self.unpublishable += 1
            return True
        started = self._monotonic()
        try:
            if bus is None:
                raise ConnectionError("not connected to the bus yet")
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races the put's completion
            async with asyncio.timeout(self.timeout_s):
                await bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the bus being away must not stop the scanner; the newest is retried
            self.failures += 1
            if not self._failing:
                self._failing = True
                self.log.warning("bus write of scan %d failed (%s: %s); scanning and archiving go on, the latest "
                                 "scan is retried with each new one", record.scan_number, type(exc).__name__, exc)
            return False
        done = self._monotonic()
        if self._failing:
            self._failing = False
            self.log.info("bus writes work again (scan %d; %d failed writes so far)", record.scan_number,
                          self.failures)
        self.published += 1
        self.last_published = record.scan_number
        if self._on_published is not None:
            self._on_published(record, completed_at, done, done - started)
        return True


def _settle(done: asyncio.Future[bool], ok: bool) -> None:
    if not done.done():
        done.set_result(ok)


__all__ = ["ScanPublisher"]
