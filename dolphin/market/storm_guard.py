"""A cap on connection attempts per minute: the reconnect storm guard of every venue stream.

Why: backoff alone does not bound a storm. A connection that comes up, delivers a frame and
drops again resets its backoff each time, so it reconnects every fraction of a second;
Binance counts WebSocket connections per IP (300 per 5 minutes) and bans an IP that keeps
opening them. The user-data stream (`dolphin.execution.live.userstream`) and the market
streams (`dolphin.market.streams`) both ask this guard before each attempt.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

STORM_WINDOW_S = 60.0


@dataclass(frozen=True)
class StormWait:
    """An attempt that must wait: how long, how many attempts the window holds, whether the storm just began."""

    seconds: float
    attempts: int
    first: bool       # the first wait of this storm: log it (once per storm)

    def describe(self) -> str:
        return (f"{self.attempts} connection attempts within a minute: waiting {self.seconds:.0f} s before the next "
                "(storm guard)")


class ConnectStormGuard:
    """At most ``per_minute`` connection attempts in any sliding minute (`check` before one, `record` at it)."""

    def __init__(self, per_minute: int, *, window_s: float = STORM_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = max(1, int(per_minute))
        self.window_s = window_s
        self.clock = clock
        self.waits = 0
        self.in_storm = False
        self._starts: deque[float] = deque()
        self._waited = False

    def check(self) -> StormWait | None:
        """None if an attempt may start now; else how long to wait first (counted; a storm begins)."""
        now = self.clock()
        starts = self._starts
        while starts and now - starts[0] >= self.window_s:
            starts.popleft()
        if len(starts) < self.per_minute:
            self.in_storm = False
            return None
        self.waits += 1
        first = not self.in_storm
        self.in_storm = True
        self._waited = True
        return StormWait(max(0.0, self.window_s - (now - starts[0])), len(starts), first)

    def record(self) -> None:
        """An attempt starts now (after the wait `check` asked for, the oldest attempt's minute has passed)."""
        if self._waited and self._starts:
            self._starts.popleft()
        self._waited = False
        self._starts.append(self.clock())


__all__ = ["STORM_WINDOW_S", "ConnectStormGuard", "StormWait"]
