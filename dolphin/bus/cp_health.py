"""Shared bookkeeping for "CP if it works, fallback if not".

Production clusters may run the CP subsystem in unsafe mode or not offer it at all
(open-source editions), and then every CP call fails or hangs. Callers keep working
through their fallback; this object remembers that CP is down, says so once in the
log (and once when it comes back), and lets CP be retried after `retry_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dolphin.bus")


class CpUnavailable(Exception):
    """A CP call failed or timed out; the caller should use its fallback."""


class CpHealth:
    """Thread-safe CP up/down state with one log line per transition."""

    def __init__(self, what: str, fallback: str, *, retry_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._what = what
        self._fallback = fallback
        self._retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self.failures = 0

    @property
    def degraded(self) -> bool:
        with self._lock:
            return self._down_since is not None

    def should_try(self) -> bool:
        with self._lock:
            return self._down_since is None or self._clock() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            now = self._clock()
            self._retry_at = now + self._retry_s
            first = self._down_since is None
            if first:
                self._down_since = now
        if first:
            log.warning("CP subsystem unavailable for %s (%s: %s); using %s, retrying CP every %.0f s",
                        self._what, type(exc).__name__, exc, self._fallback, self._retry_s)

    def succeeded(self) -> None:
        with self._lock:
            was_down = self._down_since is not None
            self._down_since = None
        if was_down:
            log.info("CP subsystem reachable again for %s", self._what)


def wait_future(future: Any, timeout_s: float) -> Any:
    """Result of a hazelcast Future within `timeout_s` (its own result() has no timeout)."""
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    if not done.wait(timeout_s):
        raise CpUnavailable(f"no answer within {timeout_s:g} s")
    return future.result()
