"""`dolphin backtest --synthetic`: seeded synthetic market → scan table → engine inputs.

The synthetic market's close matrix goes straight into the scan builder (the same
`build_scan_table` that `dolphin scan build` runs after pivoting klines), and the
market's daily macro factors feed the ACB, so a synthetic replay exercises every layer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import numpy as np

from dolphin.engine.acb import ExternalFactors
from dolphin.market.synthetic import SyntheticConfig, SyntheticMarket
from dolphin.scan.table import ScanTable, build_scan_table

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


def synthetic_scan_table(days: int, seed: int, *, progress: Callable[[str, int, int], None] | None = None,
                         ) -> tuple[ScanTable, SyntheticMarket]:
    """Generate ``days`` days of the seeded market and scan them (progress: stage, done, total)."""
    market = SyntheticMarket(SyntheticConfig(seed=seed))
    per_day = market.bars_per_day
    closes, stamps = [], []
    for d in range(days):
        bars = market.generate(d * per_day, per_day)
        closes.append(bars.close)
        stamps.append(bars.ts_ms)
        if progress is not None:
            progress("generate", d + 1, days)
    ts = np.concatenate(stamps)
    close = np.concatenate(closes)

    def scan_progress(done: int, total: int) -> None:
        if progress is not None:
            progress("scan", done, total)

    table = build_scan_table(ts, list(market.symbols), close, progress=scan_progress)
    return table, market
