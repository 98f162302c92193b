"""The ACB single-writer guard (bible §15.5): a CP FencedLock every writer takes.

``with lock.hold() as token:`` yields

* a `LockToken` with a fence when the CP lock is held (guarded write);
* ``None`` when another writer holds it (skip this cycle);
* a `LockToken` with ``guarded=False`` when the CP subsystem is unavailable: the
  write goes ahead unguarded, because DOLPHIN runs one ACB writer by design and a
  missing guard must not stop the ACB. `CpHealth` logs this once.

A FencedLock belongs to the thread that took it (its owner is session + thread), so
enter and leave the block on the same thread. Acquisitions are serialised inside the
process: the 5.7.0 client races when several threads create its CP session at once
(each thread may end up on a different session and then "lose" the lock), so only
one thread at a time may be inside `try_lock`. If the CP session was lost while the
lock was held (member restart, session expiry), leaving the block logs a warning: the
write inside may have raced another writer, which the fence lets a resource detect.

`AsyncWriterLock` is the asyncio-client version the ACB processor holds while it writes
(strict: no CP, no write).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from hazelcast.errors import LockOwnershipLostError

from dolphin.bus import schema
from dolphin.bus.cp_health import CpHealth

log = logging.getLogger("dolphin.bus")


class LockToken(msgspec.Struct, frozen=True):
    """Proof of holding the writer lock; `fence` grows with every new holder."""

    fence: int | None
    guarded: bool


class WriterLock:
    """A CP FencedLock with an unguarded fallback when CP is unavailable (threaded client)."""

    def __init__(self, client: Any, name: str = schema.ACB_WRITER_LOCK, *, cp_retry_s: float = 60.0) -> None:
        self._client = client
        self.name = name
        self.cp = CpHealth(f"writer lock {name}", "unguarded writes (one writer assumed)", retry_s=cp_retry_s)
        self._lock: Any = None
        self._acquiring = threading.Lock()

    def _proxy(self) -> Any:
        if self._lock is None:
            self._lock = self._client.cp_subsystem.get_lock(self.name).blocking()
        return self._lock

    @contextmanager
    def hold(self, wait_s: float = 0.0) -> Iterator[LockToken | None]:
        """Hold the lock for the block; wait up to `wait_s` for another writer to finish."""
        if not self.cp.should_try():
            yield LockToken(None, False)
            return
        try:
            with self._acquiring:
                lock = self._proxy()
                fence = lock.try_lock(timeout=wait_s)
            self.cp.succeeded()
        except Exception as exc:
            self.cp.failed(exc)
            yield LockToken(None, False)
            return
        if fence == 0:  # INVALID_FENCE: someone else is writing
            yield None
            return
        try:
            yield LockToken(fence, True)
        finally:
            try:
                lock.unlock()
            except LockOwnershipLostError as exc:
                log.warning("writer lock %s was lost while held (fence %s): %s", self.name, fence, exc)
            except Exception as exc:
                self.cp.failed(exc)


class AsyncWriterLock:
    """The same CP FencedLock for asyncio-client processes, held for as long as a writer writes.

    Strict: without the lock there is no write (``hold`` yields None when another writer
    holds it *or* when CP is unavailable — §15.5 makes the lock the condition of an ACB
    write). The asyncio client's lock owner is (session, task): acquire, verify and release
    from the one task that writes — and never through ``asyncio.wait_for``, which runs the
    call in a task of its own (the lock would belong to that task, and die with it); the
    client's invocation timeout bounds every call instead. `verify()` asks the member
    whether this task still holds the lock (a lost CP session releases it) and returns the
    live fence, or None.
    """

    def __init__(self, client: Any, name: str = schema.ACB_WRITER_LOCK, *, cp_retry_s: float = 60.0) -> None:
        self._client = client
        self.name = name
        self.cp = CpHealth(f"writer lock {name}", "no writes until CP answers", retry_s=cp_retry_s)
        self._lock: Any = None
        self.fence: int | None = None

    async def _proxy(self) -> Any:
        if self._lock is None:
            self._lock = await self._client.cp_subsystem.get_lock(self.name)
        return self._lock

    async def acquire(self, wait_s: float) -> int | None:
        """The fence when this task got the lock within `wait_s`; None when another writer holds it or CP fails."""
        try:
            lock = await self._proxy()
            fence = int(await lock.try_lock(timeout=wait_s))
            self.cp.succeeded()
        except Exception as exc:
            self.cp.failed(exc)
            return None
        self.fence = fence if fence != 0 else None
        return self.fence

    async def verify(self) -> int | None:
        """The fence if this task still holds the lock, else None (and the fence is forgotten)."""
        if self.fence is None or self._lock is None:
            return None
        try:
            held = bool(await self._lock.is_locked_by_current_task())
            self.cp.succeeded()
        except Exception as exc:
            self.cp.failed(exc)
            held = False
        if not held:
            log.warning("writer lock %s is no longer held by this writer (fence %s)", self.name, self.fence)
            self.fence = None
        return self.fence

    async def release(self) -> None:
        if self.fence is None or self._lock is None:
            return
        fence, self.fence = self.fence, None
        try:
            await self._lock.unlock()
        except LockOwnershipLostError as exc:
            log.warning("writer lock %s was lost while held (fence %s): %s", self.name, fence, exc)
        except Exception as exc:
            self.cp.failed(exc)
