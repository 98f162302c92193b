"""One request-weight limiter per venue, shared by every REST client of a process.

Binance counts REQUEST_WEIGHT per IP per minute (2,400 on USD-M) and ORDERS per account
per minute (1,200) and per 10 s (300); breaking a limit costs a 429 and, repeated, an IP
ban (418). Several services in one process (scanner backfill, ExF polling, the trader)
must therefore draw from *one* budget per venue: `shared_limiter(base_url)` returns the
same limiter for the same host. Windows are fixed and aligned to the wall clock like
Binance's; the server's own count (``X-MBX-USED-WEIGHT-1M``) is folded in whenever a
response carries it, so a limiter that started late or shares an IP with another
process still converges on the truth. A ``Retry-After`` from a 429/418 blocks every
caller until it passes.

The limiter holds no asyncio objects (only a thread lock around arithmetic), so it is
safe to share between event loops and threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

WEIGHT_LIMIT_1M = 2400
ORDER_LIMIT_1M = 1200
ORDER_LIMIT_10S = 300


@dataclass(frozen=True, slots=True)
class LimiterState:
    """A snapshot for operators: budget used in the current windows and any ban."""

    used_weight_1m: int
    weight_limit_1m: int
    orders_1m: int
    orders_10s: int
    blocked_for_s: float
    waits: int


class _Window:
    __slots__ = ("length_s", "limit", "start", "used")

    def __init__(self, length_s: float, limit: int) -> None:
        self.length_s = length_s
        self.limit = limit
        self.start = 0.0
        self.used = 0

    def roll(self, now: float) -> None:
        start = now - (now % self.length_s)
        if start != self.start:
            self.start = start
            self.used = 0

    def wait_for(self, amount: int, now: float) -> float:
        """Seconds until ``amount`` fits (0 if it fits now)."""
        if amount <= 0 or self.used + amount <= self.limit:
            return 0.0
        return max(self.start + self.length_s - now, 0.0) + 0.001


class RequestLimiter:
    """Blocks callers (asynchronously) until their request weight fits the venue's budget.

    ``headroom`` keeps a margin below the published limits (weights drift when Binance
    re-prices an endpoint; the server header corrects us, but only after the fact).
    """

    def __init__(self, weight_per_minute: int = WEIGHT_LIMIT_1M, orders_per_minute: int = ORDER_LIMIT_1M,
                 orders_per_10s: int = ORDER_LIMIT_10S, headroom: float = 0.9,
                 clock: Callable[[], float] = time.time) -> None:
        if not 0.1 <= headroom <= 1.0:
            raise ValueError(f"headroom must be in [0.1, 1], got {headroom}")
        self._weight = _Window(60.0, max(1, int(weight_per_minute * headroom)))
        self._orders_1m = _Window(60.0, max(1, int(orders_per_minute * headroom)))
        self._orders_10s = _Window(10.0, max(1, int(orders_per_10s * headroom)))
        self._weight_limit = weight_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._banned_until = 0.0
        self._waits = 0

    def _reserve(self, weight: int, orders: int) -> float:
        """Reserve the budget if it fits now and return 0, else return how long to wait."""
        with self._lock:
            now = self._clock()
            if now < self._banned_until:
                return self._banned_until - now
            for w in (self._weight, self._orders_1m, self._orders_10s):
                w.roll(now)
            wait = max(self._weight.wait_for(weight, now), self._orders_1m.wait_for(orders, now),
                       self._orders_10s.wait_for(orders, now))
            if wait > 0:
                # A single request heavier than the whole budget must still go through once.
                if weight > self._weight.limit and self._weight.used == 0:
                    wait = 0.0
                else:
                    return wait
            self._weight.used += weight
            self._orders_1m.used += orders
            self._orders_10s.used += orders
            return 0.0

    async def acquire(self, weight: int, orders: int = 0) -> None:
        """Wait until ``weight`` (and ``orders`` new orders) fit, then reserve them."""
        while True:
            wait = self._reserve(int(weight), int(orders))
            if wait <= 0:
                return
            with self._lock:
                self._waits += 1
            await asyncio.sleep(min(wait, 60.0))

    def observe(self, used_weight_1m: int | None = None, order_count_1m: int | None = None,
                order_count_10s: int | None = None) -> None:
        """Fold in the server's counts from response headers (they win when higher)."""
        with self._lock:
            now = self._clock()
            for window, seen in ((self._weight, used_weight_1m), (self._orders_1m, order_count_1m),
                                 (self._orders_10s, order_count_10s)):
                if seen is not None:
                    window.roll(now)
                    window.used = max(window.used, int(seen))

    def block_for(self, seconds: float) -> None:
        """Stop every caller for ``seconds`` (a 429/418 ``Retry-After``)."""
        with self._lock:
            self._banned_until = max(self._banned_until, self._clock() + max(0.0, float(seconds)))

    def state(self) -> LimiterState:
        with self._lock:
            now = self._clock()
            for w in (self._weight, self._orders_1m, self._orders_10s):
                w.roll(now)
            return LimiterState(self._weight.used, self._weight_limit, self._orders_1m.used, self._orders_10s.used,
                                max(0.0, self._banned_until - now), self._waits)


_SHARED: dict[str, RequestLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(base_url: str) -> RequestLimiter:
    """The process-wide limiter for the venue at ``base_url`` (one per host:port)."""
    parts = urlsplit(base_url)
    key = f"{(parts.hostname or '').lower()}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    with _SHARED_LOCK:
        limiter = _SHARED.get(key)
        if limiter is None:
            limiter = _SHARED[key] = RequestLimiter()
        return limiter


def klines_weight(limit: int) -> int:
    """Weight of ``GET /fapi/v1/klines`` for ``limit`` rows (Binance's published table)."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def depth_weight(limit: int) -> int:
    """Weight of ``GET /fapi/v1/depth`` for ``limit`` levels."""
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20
