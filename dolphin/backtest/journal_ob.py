"""`dolphin backtest --journal J --ob H`: the journal's OB stays the input; the history fills and is checked.

A paper session's replay is bit for bit because each journaled step carries the OB
block its trader acted on (`ScanInput.ob`). The OBF history of the same session holds
the bars OBF computed, which is what a trader *could* have read; the two differ where
the trader stepped before OBF's bar for that close reached the bus (both are produced
just after the close: a race), or where one side lost a bar. So with both:

* a step whose journal record carries OB replays it, unchanged (the replay stays exact);
* a step whose record carries none (a journal written before the trader journaled OB)
  reads the history, with the rule `--scans --ob` uses: per asset the latest OB bar at
  or before the bar's close, at most `MAX_AGE_MS` old, neutral where there is none;
* rows that are no journaled step (the warm-up before the session, scans the trader
  never stepped) read what a `--journal` replay without `--ob` reads: the history never
  changes what the trader did;
* every journaled step with OB is compared with the history, field by field, exactly:
  it agrees, differs (each difference with its likely cause), or is not covered (the
  history has no bar of the engine's assets nor a macro for that close).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum, unique

import msgspec
import numpy as np

from dolphin.backtest.session import SessionInputs, StepOb
from dolphin.bus.ob_feed import MAX_AGE_MS
from dolphin.engine.ob import (
    NEUTRAL_ASSET,
    NEUTRAL_MACRO,
    OB_ASSET_FIELDS,
    OB_MACRO_FIELDS,
    OBBlock,
    OBProvider,
    RecordedOBProvider,
)
from dolphin.execution.ob_inputs import N_ASSET, block_from_flat, recorded_provider

MACRO = "(macro)"
"""The `asset` of a difference in the market-wide values."""

KEEP_PER_CAUSE = 3
"""Differences kept (and shown) per cause: the first differing asset of each of the first few steps."""
CHUNK = 4_096
"""Journaled steps compared per history block (a month of steps at once would be a GB of floats)."""


@unique
class DiffCause(StrEnum):
    """Why a journaled step's OB differs from the history's bar for that close (wire strings)."""

    EARLY_STEP = "trader_stepped_early"     # the journal holds an earlier bar: OBF's bar for this close came later
    NO_LIVE_BAR = "no_live_bar"              # the trader had no bar of it (neutral values): not discovered or not yet
    NOT_IN_HISTORY = "not_in_history"        # the history has no bar of it for this close (a gap, a part lost)
    OTHER = "other"                          # no bar of the history within the feed's age holds the journal's values


CAUSE_TEXT = {
    DiffCause.EARLY_STEP: "the trader stepped before OBF's bar for this close reached it",
    DiffCause.NO_LIVE_BAR: "the trader's feed had no bar of it yet",
    DiffCause.NOT_IN_HISTORY: "the history has no bar of it for this close (a gap, or a part lost)",
    DiffCause.OTHER: "no recorded bar holds the journal's values",
}


class ObDifference(msgspec.Struct, frozen=True):
    """One journaled step and asset (or the macro) whose OB differs from the history: its first differing field."""

    scan_number: int
    asset: str
    field: str
    journal: float
    history: float
    cause: DiffCause
    journal_bar_ms: int | None   # the history's bar holding the journal's values, when one does
    history_bar_ms: int | None   # the bar the history gives for this close (None: none)


class ObCheck(msgspec.Struct, frozen=True):
    """The journal's OB against the recorded history, step by step (`agree + differ + uncovered == steps`)."""

    steps: int                          # journaled steps carrying OB in the replayed range
    agree: int                          # every value equal to the history's
    differ: int                         # some value differs
    uncovered: int                      # the history has no bar for the step's close
    filled: int                         # steps whose record carries no OB: the history's values were replayed
    sources: dict[str, int]             # the range's journaled steps per OB source (ObSource; "unrecorded": none)
    causes: dict[str, int]              # differing (step, asset) pairs per cause (the macro counts as one asset)
    differences: list[ObDifference]     # the first few steps of each cause (in scan order), one asset each


@dataclass(frozen=True, slots=True)
class JournalWithHistory:
    """The engine's OB provider of a `--journal --ob` replay (module docstring)."""

    journaled: OBProvider          # what `--journal` alone reads (the journaled blocks, as of each step)
    history: RecordedOBProvider    # the recorded history, as the trader's feed would have read it
    fill_ts: np.ndarray            # open times of the journaled steps whose record carries no OB (sorted)

    def block(self, ts_ms: np.ndarray, assets: list[str]) -> OBBlock:
        out = self.journaled.block(ts_ms, assets)
        ts = np.asarray(ts_ms, dtype=np.int64)
        fill = np.isin(ts, self.fill_ts)
        if fill.any():
            recorded = self.history.block(ts[fill], assets)
            out.asset[fill] = recorded.asset
            out.macro[fill] = recorded.macro
        return out


def with_history(session: SessionInputs, history: RecordedOBProvider, assets: Sequence[str]) -> JournalWithHistory:
    """The replay's provider: the journal's blocks where it has them, ``history`` for its steps without."""
    fill = np.array(sorted({r.ts_ms for r in session.ob_records if r.values is None}), dtype=np.int64)
    return JournalWithHistory(recorded_provider(session.ob_steps, assets), history, fill)


def _iso(ms: int | None) -> str:
    return "—" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


def describe(d: ObDifference) -> str:
    """A difference's cause in words, with the bars involved (market time of their close, UTC)."""
    text = CAUSE_TEXT[d.cause]
    if d.cause is DiffCause.EARLY_STEP:
        return f"{text}: it used the bar of {_iso(d.journal_bar_ms)}, the history's is {_iso(d.history_bar_ms)}"
    if d.history_bar_ms is not None:
        return f"{text} (the history's bar: {_iso(d.history_bar_ms)})"
    return text


class _Checker:
    """Compares journaled blocks with the history's (one instance per check)."""

    def __init__(self, history: RecordedOBProvider, assets: Sequence[str]) -> None:
        self.history = history
        self.assets = list(assets)
        self.col = {s: i for i, s in enumerate(history.symbols)}
        self.max_age = MAX_AGE_MS if history.max_age_ms is None else history.max_age_ms

    def _bar_holding(self, close_ms: int, values: np.ndarray, series_ts: np.ndarray,
                     series: np.ndarray, neutral: np.ndarray) -> int | None:
        """The latest recorded bar at or before the close (within the feed's age) whose values are ``values``."""
        lo = int(np.searchsorted(series_ts, close_ms - self.max_age, side="left"))
        hi = int(np.searchsorted(series_ts, close_ms, side="right"))
        for k in range(hi - 1, lo - 1, -1):
            row = series[k]
            if not np.isfinite(row).any():
                continue
            if np.array_equal(np.where(np.isfinite(row), row, neutral), values):
                return int(series_ts[k])
        return None

    def _cause(self, close_ms: int, journal: np.ndarray, history_row: int, series_ts: np.ndarray,
               series: np.ndarray, neutral: np.ndarray) -> tuple[DiffCause, int | None, int | None]:
        picked = None if history_row < 0 else int(series_ts[history_row])
        if picked is None:
            return DiffCause.NOT_IN_HISTORY, None, None
        held = self._bar_holding(close_ms, journal, series_ts, series, neutral)
        if held is not None and held < picked:
            return DiffCause.EARLY_STEP, held, picked
        if np.array_equal(journal, neutral):
            return DiffCause.NO_LIVE_BAR, None, picked
        return DiffCause.OTHER, held, picked

    def _series(self, asset: str) -> tuple[np.ndarray, np.ndarray]:
        """The history's records of one asset (all-NaN rows where it has none) or of the macro."""
        hist = self.history
        if asset == MACRO:
            return hist.macro_ts, hist.macro_values
        i = self.col.get(asset)
        return hist.asset_ts, (hist.asset_values[:, i, :] if i is not None
                               else np.full((len(hist.asset_ts), N_ASSET), np.nan))

    def check(self, records: Sequence[StepOb], keep: int = KEEP_PER_CAUSE) -> ObCheck:
        journaled = [r for r in records if r.values is not None]
        sources: Counter[str] = Counter(r.source or "unrecorded" for r in records)
        agree = differ = uncovered = 0
        causes: Counter[str] = Counter()
        kept: list[ObDifference] = []
        shown: Counter[DiffCause] = Counter()
        hist = self.history
        fields = {a: OB_ASSET_FIELDS for a in self.assets} | {MACRO: OB_MACRO_FIELDS}
        for at in range(0, len(journaled), CHUNK):   # the history's blocks a chunk at a time: memory stays flat
            chunk = journaled[at:at + CHUNK]
            ts = np.fromiter((r.ts_ms for r in chunk), dtype=np.int64, count=len(chunk))
            expected = hist.block(ts, self.assets)
            asset_rows, macro_rows = hist.picks(ts, self.assets)
            for k, r in enumerate(chunk):
                assert r.values is not None
                if (asset_rows[k] < 0).all() and macro_rows[k] < 0:
                    uncovered += 1
                    continue
                mine = block_from_flat(r.values, len(self.assets))
                if (np.array_equal(mine.asset[0], expected.asset[k])
                        and np.array_equal(mine.macro[0], expected.macro[k])):
                    agree += 1
                    continue
                differ += 1
                sides = [(a, mine.asset[0, j], expected.asset[k, j], int(asset_rows[k, j]), NEUTRAL_ASSET)
                         for j, a in enumerate(self.assets)]
                sides.append((MACRO, mine.macro[0], expected.macro[k], int(macro_rows[k]), NEUTRAL_MACRO))
                first = True
                for asset, journal, history, row, neutral in sides:
                    if np.array_equal(journal, history):
                        continue
                    series_ts, series = self._series(asset)
                    cause, held, picked = self._cause(int(r.ts_ms) + hist.offset_ms, journal, row, series_ts,
                                                      series, neutral)
                    if first and shown[cause] < keep:   # the step's first differing asset (or the macro)
                        shown[cause] += 1
                        f = int(np.flatnonzero(journal != history)[0])
                        kept.append(ObDifference(r.scan_number, asset, fields[asset][f], float(journal[f]),
                                                 float(history[f]), cause, held, picked))
                    causes[str(cause)] += 1
                    first = False
        return ObCheck(steps=len(journaled), agree=agree, differ=differ, uncovered=uncovered,
                       filled=len(records) - len(journaled), sources=dict(sorted(sources.items())),
                       causes=dict(sorted(causes.items())), differences=kept)


def cross_check(records: Sequence[StepOb], history: RecordedOBProvider, assets: Sequence[str],
                keep: int = KEEP_PER_CAUSE) -> ObCheck:
    """Each journaled step's OB against the history's for its close (``history`` set up by `history_provider`)."""
    return _Checker(history, assets).check(records, keep)


__all__ = ["CAUSE_TEXT", "MACRO", "DiffCause", "JournalWithHistory", "ObCheck", "ObDifference", "cross_check",
           "describe", "with_history"]
