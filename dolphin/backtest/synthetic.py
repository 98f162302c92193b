"""`dolphin backtest --synthetic`: seeded synthetic market → scan table → engine inputs.

The synthetic market's closes go straight into the scan builder (the same scan that
`dolphin scan build` runs after pivoting klines), a day at a time (`SyntheticSource`),
and the market's daily macro factors feed the ACB, so a synthetic replay exercises
every layer at any span in bounded memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import numpy as np

from dolphin.engine.acb import ExternalFactors
from dolphin.market.synthetic import SyntheticConfig, SyntheticMarket
from dolphin.scan.table import ScanTable, ScanTableBuilder, build_scan_table

MAX_SYNTHETIC_DAYS = 365


class SyntheticFactors:
    """The ACB's external-factor source for a synthetic market: its seeded daily factors."""

    def __init__(self, market: SyntheticMarket) -> None:
        self.market = market
        self.start = datetime.fromtimestamp(market.config.start_ms / 1000, UTC).date()

    def factors_for(self, day: str) -> ExternalFactors | None:
        index = (date.fromisoformat(day) - self.start).days
        if index < 0:
            return None
        f = self.market.external_factors(index)
        return ExternalFactors(funding_btc=f.funding_btc, dvol_btc=f.dvol_btc, fng=f.fng, taker=f.taker)


class SyntheticSource:
    """The seeded market generated and scanned a day at a time: a replay of any span in bounded memory.

    Each day is generated (closes only), scanned by a `ScanTableBuilder` that carries the
    scan windows over from the previous day, and handed on; nothing of earlier days is
    kept but the builder's state and the market's per-hour price levels. ``stages``
    accumulates the seconds spent generating and scanning; ``progress(stage, done,
    total, seconds)`` reports days generated and bars scanned.
    """

    def __init__(self, days: int, seed: int, *,
                 progress: Callable[[str, int, int, float], None] | None = None) -> None:
        if not 1 <= int(days) <= MAX_SYNTHETIC_DAYS:
            raise ValueError(f"days must be in 1..{MAX_SYNTHETIC_DAYS}, got {days}")
        self.days = int(days)
        self.market = SyntheticMarket(SyntheticConfig(seed=seed))
        self.progress = progress
        self.stages: dict[str, float] = {"generate": 0.0, "scan": 0.0}

    @property
    def assets(self) -> tuple[str, ...]:
        return self.market.symbols

    def _ts(self, day: int) -> np.ndarray:
        per_day = self.market.bars_per_day
        cfg = self.market.config
        return cfg.start_ms + np.arange(day * per_day, (day + 1) * per_day, dtype=np.int64) * cfg.bar_ms

    def keys(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        per_day = self.market.bars_per_day
        for d in range(self.days):
            yield self._ts(d), np.arange(d * per_day + 1, (d + 1) * per_day + 1, dtype=np.int64)

    def pieces(self, stop: int | None = None) -> Iterator[ScanTable]:
        per_day = self.market.bars_per_day
        builder = ScanTableBuilder(self.market.symbols)
        total = self.days * per_day if stop is None else min(stop, self.days * per_day)
        for d in range(-(-total // per_day)):
            t0 = time.perf_counter()
            close = self.market.closes(d * per_day, per_day)   # = generate(…).close, no 1 s paths drawn
            t1 = time.perf_counter()
            self.stages["generate"] += t1 - t0
            if self.progress is not None:
                self.progress("generate", d + 1, -(-total // per_day), self.stages["generate"])
            piece = builder.advance(self._ts(d), close)
            self.stages["scan"] += time.perf_counter() - t1
            if self.progress is not None:
                self.progress("scan", min((d + 1) * per_day, total), total, self.stages["scan"])
            yield piece


def synthetic_scan_table(days: int, seed: int, *, progress: Callable[[str, int, int], None] | None = None,
                         ) -> tuple[ScanTable, SyntheticMarket]:
    """Generate ``days`` days of the seeded market and scan them, all in memory (progress: stage, done, total).

    The whole-span path (tests, benchmarks): one generate call and one scan over the
    whole close matrix. `SyntheticSource` streams the same rows a day at a time.
    """
    market = SyntheticMarket(SyntheticConfig(seed=seed))
    per_day = market.bars_per_day
    closes = []
    for d in range(days):
        closes.append(market.closes(d * per_day, per_day))
        if progress is not None:
            progress("generate", d + 1, days)
    cfg = market.config
    ts = cfg.start_ms + np.arange(days * per_day, dtype=np.int64) * cfg.bar_ms
    close = np.concatenate(closes)

    def scan_progress(done: int, total: int) -> None:
        if progress is not None:
            progress("scan", done, total)

    table = build_scan_table(ts, list(market.symbols), close, progress=scan_progress)
    return table, market
