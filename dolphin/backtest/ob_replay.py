"""Recorded OB history for a backtest (`dolphin backtest --scans … --ob PATH`, issue 13 §2).

A replay of a live span must see the OB features the trader saw. The trader's step of
the bar opening at ``ts`` reads OB as of that bar's close, ``ts + bar_ms``: per symbol the
latest OB bar at or before it, not older than the feed's `MAX_AGE_MS`, and the macro
likewise (`dolphin.bus.ob_feed.ObFeed.at`). This module reads only the days of the OBF
Parquet history the replayed span needs (DuckDB, `load_ob_history`) and hands the
engine a `RecordedOBProvider` that applies that same rule; bars with no OB data read
the engine's neutral values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dolphin.bus.ob_feed import MAX_AGE_MS
from dolphin.engine.ob import RecordedOBProvider
from dolphin.errors import DataError

DEFAULT_BAR_MS = 5_000
"""The scanner's bar (and OBF's): used when the span is a single bar and its length cannot be read."""


@dataclasses.dataclass(frozen=True, slots=True)
class ReplaySpan:
    """Open times of the first and last replayed bars and the bar length, all ms."""

    first_ts: int
    last_ts: int
    bar_ms: int


def replay_span(keys: Iterable[tuple[np.ndarray, np.ndarray]], start: int, stop: int) -> ReplaySpan:
    """The span of rows ``[start, stop)`` of a scan stream's ``(ts, scan_number)`` pieces.

    The bar length is the smallest positive step between consecutive bars (gaps are
    longer, never shorter).
    """
    first = last = None
    step: int | None = None
    row = 0
    prev: int | None = None
    for ts, _ in keys:
        n = int(ts.shape[0])
        if n == 0:
            continue
        if row <= start < row + n:
            first = int(ts[start - row])
        if row < stop <= row + n:
            last = int(ts[stop - 1 - row])
        diffs = np.diff(ts.astype(np.int64))
        if prev is not None:
            diffs = np.append(diffs, int(ts[0]) - prev)
        diffs = diffs[diffs > 0]
        if diffs.shape[0]:
            step = int(diffs.min()) if step is None else min(step, int(diffs.min()))
        prev = int(ts[-1])
        row += n
        if last is not None and step is not None:
            break
    if first is None or last is None:
        raise DataError(f"scan rows {start}..{stop} are not in the scan data")
    return ReplaySpan(first, last, step or DEFAULT_BAR_MS)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def history_provider(path: str | Path, span: ReplaySpan, assets: Sequence[str]) -> RecordedOBProvider:
    """The engine's OB provider over the OBF history at ``path`` for ``span`` and ``assets``.

    Loads the market days from the first bar's close less the feed's maximum age (an OB
    bar of the previous day may still be current) to the last bar's close. `DataError`
    (one line) when the path holds no readable history for them.
    """
    lo = span.first_ts + span.bar_ms - MAX_AGE_MS
    hi = span.last_ts + span.bar_ms
    from dolphin.store.ob_history import load_ob_history

    provider = load_ob_history(path, date_from=_day(lo), date_to=_day(hi), symbols=assets)
    ts = provider.asset_ts
    if not np.any((ts >= lo) & (ts <= hi)):
        raise DataError(f"the OB history at {path} has no bar of these assets between {_iso(lo)} and {_iso(hi)} "
                        f"(the replayed span)")
    return dataclasses.replace(provider, offset_ms=span.bar_ms, max_age_ms=MAX_AGE_MS)


__all__ = ["DEFAULT_BAR_MS", "ReplaySpan", "history_provider", "replay_span"]
