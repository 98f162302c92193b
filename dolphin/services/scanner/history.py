"""Price history through REST: the backfill, gap fills and repairs of the scanner.

Two sources, matching the two bar builders:

* `KlineHistory` — ``GET /fapi/v1/klines?interval=5s`` (the simulator's native bar;
  other intervals work the same on Binance). Pages of 499 rows: the cheapest request
  weight per row (2 per page against 10 for 1,500 rows).
* `TradeHistory` — ``GET /fapi/v1/aggTrades`` (real Binance, which has no 5 s
  klines): the last trade price per epoch-aligned bucket. Heavy: every trade of the
  range is downloaded (weight 20 per 1,000 trades), paced by the shared request
  limiter; buckets without a trade are carried forward from the previous bucket.

`fetch(first_open, last_open)` returns a (bars, symbols) float64 matrix of closes, row r
= the bar opening at ``first_open + r · bar``, NaN where the venue has no close (a symbol
listed later, a hole). A symbol the venue rejects (unknown symbol) is NaN and logged
once; a venue that cannot be reached raises `MarketUnavailableError`/`RateLimitError`
for the caller to retry.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from dolphin.market.errors import BinanceAPIError, MarketUnavailableError, RateLimitError
from dolphin.market.rest import INTERVAL_MS

log = logging.getLogger("dolphin.scanner")

TRANSIENT = (MarketUnavailableError, RateLimitError)
"""Errors worth retrying: the venue is away or asks us to slow down."""


def interval_name(bar_ms: int) -> str:
    """The kline interval of a bar length: ``5s`` (simulator), ``1m``, ``1h``…"""
    for name, ms in INTERVAL_MS.items():
        if ms == bar_ms:
            return name
    if bar_ms % 1000 == 0:
        return f"{bar_ms // 1000}s"
    raise ValueError(f"bar length {bar_ms} ms is not a whole number of seconds")


class _History(ABC):
    carry_forward = False
    """True when a symbol without a close in a bar keeps its previous close (trade bars)."""

    def __init__(self, rest: Any, symbols: Sequence[str], bar_ms: int, *, concurrency: int = 8) -> None:
        self.rest = rest
        self.symbols = tuple(symbols)
        self.bar_ms = int(bar_ms)
        self._sem = asyncio.Semaphore(max(1, concurrency))
        self._rejected: set[str] = set()

    def _rejected_symbol(self, symbol: str, exc: Exception) -> None:
        if symbol not in self._rejected:
            self._rejected.add(symbol)
            log.warning("history of %s refused by the venue (%s); its prices stay NaN", symbol, exc)

    async def fetch(self, first_open: int, last_open: int) -> np.ndarray:
        """Closes of the bars opening in ``[first_open, last_open]`` (NaN where none)."""
        rows = (int(last_open) - int(first_open)) // self.bar_ms + 1
        out = np.full((max(0, rows), len(self.symbols)), np.nan)
        if rows <= 0:
            return out

        async def one(col: int, symbol: str) -> None:
            async with self._sem:
                try:
                    await self._fill(out[:, col], symbol, int(first_open), int(last_open))
                except TRANSIENT:
                    raise
                except BinanceAPIError as exc:
                    self._rejected_symbol(symbol, exc)

        results = await asyncio.gather(*(one(c, s) for c, s in enumerate(self.symbols)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return out

    @abstractmethod
    async def _fill(self, column: np.ndarray, symbol: str, first_open: int, last_open: int) -> None:
        """Write one symbol's closes for bars ``first_open..last_open`` into ``column``."""

    async def repair(self, open_ms: int, columns: Sequence[int], *, timeout_s: float = 2.0) -> dict[int, float]:
        """Closes of one bar for some symbols, straight from the venue (empty where unavailable)."""
        return {}


class KlineHistory(_History):
    """History from ``/fapi/v1/klines`` at the bar's own interval."""

    def __init__(self, rest: Any, symbols: Sequence[str], bar_ms: int, *, page_limit: int = 499,
                 concurrency: int = 8) -> None:
        super().__init__(rest, symbols, bar_ms, concurrency=concurrency)
        self.interval = interval_name(self.bar_ms)
        self.page_limit = int(page_limit)

    async def _fill(self, column: np.ndarray, symbol: str, first_open: int, last_open: int) -> None:
        rows = await self.rest.klines_range(symbol, self.interval, first_open, last_open, page_limit=self.page_limit)
        n = column.shape[0]
        for k in rows:
            offset = k.open_time - first_open
            if offset % self.bar_ms == 0 and 0 <= offset // self.bar_ms < n:
                column[offset // self.bar_ms] = k.close

    async def repair(self, open_ms: int, columns: Sequence[int], *, timeout_s: float = 2.0) -> dict[int, float]:
        found: dict[int, float] = {}

        async def one(col: int) -> None:
            symbol = self.symbols[col]
            async with self._sem:
                rows = await self.rest.klines(symbol, self.interval, open_ms, open_ms, 1)
            for k in rows:
                if k.open_time == open_ms:
                    found[col] = k.close

        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(one(c) for c in columns), return_exceptions=True)
        except TimeoutError:
            pass
        return found


class TradeHistory(_History):
    """History from ``/fapi/v1/aggTrades``: last trade price per bucket, carried forward through empty buckets."""

    carry_forward = True
    WINDOW_MS = 3_600_000 - 1   # Binance: startTime..endTime must span less than an hour
    PAGE = 1000

    async def _fill(self, column: np.ndarray, symbol: str, first_open: int, last_open: int) -> None:
        n = column.shape[0]
        end = last_open + self.bar_ms - 1           # last ms of the last bucket
        cursor = first_open
        last_id = -1
        while cursor <= end:
            window_end = min(end, cursor + self.WINDOW_MS)
            page = await self.rest.agg_trades(symbol, start_ms=cursor, end_ms=window_end, limit=self.PAGE)
            fresh = [t for t in page if t.agg_id > last_id]
            for t in fresh:
                offset = t.trade_time - first_open
                if 0 <= offset and offset // self.bar_ms < n:
                    column[offset // self.bar_ms] = t.price   # ascending: the last one wins
            if fresh:
                last_id = fresh[-1].agg_id
            if len(page) >= self.PAGE and fresh:
                cursor = max(cursor, fresh[-1].trade_time)   # same-ms trades across pages: deduped by id
            elif len(page) >= self.PAGE:
                cursor += 1                                   # a full page of trades already seen: move on
            else:
                cursor = window_end + 1
        # carry forward through buckets without a trade
        last = np.nan
        for r in range(n):
            if np.isnan(column[r]):
                column[r] = last
            else:
                last = column[r]


def make_history(kind: str, rest: Any, symbols: Sequence[str], bar_ms: int) -> _History:
    """``klines`` (simulator; any venue with klines of the bar's interval) or ``aggtrades`` (Binance)."""
    if kind == "klines":
        return KlineHistory(rest, symbols, bar_ms)
    if kind == "aggtrades":
        return TradeHistory(rest, symbols, bar_ms)
    raise ValueError(f"unknown history source {kind!r} (klines or aggtrades)")


__all__ = ["TRANSIENT", "KlineHistory", "TradeHistory", "interval_name", "make_history"]
