"""The OB features of the simulator's own books, bar by bar, without a network in between.

What the OBF daemon would compute from a ``depth5@100ms`` subscription, computed straight
from the book model: at each bar close (market time) the book of the last 100 ms bucket
before it goes through `book_problem`, `snapshot_of` and each symbol's `AssetTracker`,
then `macro_of` gives the regime. It is how `benchmarks/ob_regimes.py` counts the regimes
of a synthetic day and how the tests check that panics stress the books — the same
feature code as the daemon, the same books as the streams.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dolphin.enums import ObRegime
from dolphin.market.ob_features import OB_BAR_MS, AssetTracker, MacroFeatures, book_problem, macro_of, snapshot_of
from dolphin.market.sim.books import BookModel


@dataclass(frozen=True, slots=True)
class BarMacro:
    """The market-wide OB features at one bar close."""

    close_ms: int
    macro: MacroFeatures


def bar_macros(model: BookModel, columns: np.ndarray, first_close_ms: int, n_bars: int,
               bar_ms: int = OB_BAR_MS) -> Iterator[BarMacro]:
    """Macro features of ``n_bars`` consecutive bars closing at ``first_close_ms``, ``+ bar_ms``, …

    Trackers start empty at the first bar (warm them by starting earlier: depth quality
    compares with up to an hour of bars).
    """
    cols = np.asarray(columns, dtype=np.int64)
    trackers = [AssetTracker() for _ in range(cols.shape[0])]
    for k in range(n_bars):
        close = first_close_ms + k * bar_ms
        books = model.compute(cols, close - 1, levels=5)
        features = []
        for i, tracker in enumerate(trackers):
            bids, asks = books.row(i)
            if book_problem(bids, asks) is None:
                features.append(tracker.close_bar(snapshot_of(bids, asks)))
        yield BarMacro(close, macro_of(features))


def regime_counts(bars: Iterator[BarMacro]) -> tuple[Counter[ObRegime], int]:
    """(bars per regime, sum of cascade counts) over ``bars``."""
    counts: Counter[ObRegime] = Counter({r: 0 for r in ObRegime})
    cascades = 0
    for bar in bars:
        counts[bar.macro.regime] += 1
        cascades += bar.macro.cascade_count
    return counts, cascades


__all__ = ["BarMacro", "bar_macros", "regime_counts"]
