"""OB intelligence (bible §9) behind a provider interface.

The bar loop consumes order-book features as dense per-bar arrays so it stays in numba.
With no provider the engine uses the seeded legacy Monte-Carlo fill edge of §8.3; a
`RecordedOBProvider` serves recorded per-asset and macro features, as-of each bar's time
(the latest record at or before it, never a later one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Per-asset feature columns (§9.1, §9.3).
OB_IMBALANCE_MA5 = 0
OB_PERSISTENCE = 1
OB_WITHDRAWAL_VELOCITY = 2
OB_DEPTH_QUALITY = 3
OB_FILL_PROBABILITY = 4
OB_ASSET_FIELDS = ("imbalance_ma5", "imbalance_persistence", "withdrawal_velocity", "depth_quality",
                   "fill_probability")

# Market-wide columns (§9.2, plus the cross-asset imbalance OB sub-3 needs).
OB_CASCADE_COUNT = 0
OB_REGIME_SIGNAL = 1
OB_MARKET_IMBALANCE = 2
OB_MACRO_FIELDS = ("cascade_count", "regime_signal", "market_imbalance")

# Neutral values used where a record is missing: no imbalance, average depth, no stress.
NEUTRAL_ASSET = np.array([0.0, 0.0, 0.0, 0.75, 0.5])
NEUTRAL_MACRO = np.array([0.0, 0.0, 0.0])


@dataclass(frozen=True, slots=True)
class OBBlock:
    """OB features for a block of bars: asset (n_bars, n_assets, 5) and macro (n_bars, 3)."""

    asset: np.ndarray
    macro: np.ndarray


class OBProvider(Protocol):
    """Anything that can serve OB features for bar timestamps and an asset list."""

    def block(self, ts_ms: np.ndarray, assets: list[str]) -> OBBlock: ...


def empty_block(n_bars: int, n_assets: int) -> OBBlock:
    """Zero-size arrays handed to the kernel when OB is off; the kernel never reads them."""
    return OBBlock(np.zeros((0, n_assets, len(OB_ASSET_FIELDS))), np.zeros((0, len(OB_MACRO_FIELDS))))


def asof_rows(record_ts: np.ndarray, query_ms: np.ndarray, max_age_ms: int | None) -> np.ndarray:
    """For each query time the index of the latest record at or before it (-1: none, or older than ``max_age_ms``)."""
    rows = np.searchsorted(record_ts, query_ms, side="right") - 1
    if max_age_ms is not None and rows.shape[0]:
        have = rows >= 0
        age = query_ms - record_ts[np.maximum(rows, 0)]
        rows[have & (age > max_age_ms)] = -1
    return rows


@dataclass(frozen=True, slots=True)
class RecordedOBProvider:
    """Recorded OB features, looked up as-of each bar.

    ``asset_ts`` (sorted ms) and ``asset_values`` (n_records, n_symbols, 5) hold per-asset
    snapshots for ``symbols`` (NaN where a symbol has no record at that time);
    ``macro_ts`` and ``macro_values`` (n_records, 3) the market-wide ones.

    Each engine bar stamped ``ts`` reads, per symbol, its latest record at or before
    ``ts + offset_ms`` — never a later one — and not older than ``max_age_ms`` (None: any
    age); the macro likewise. A replay of recorded OB history sets ``offset_ms`` to the
    bar length (scan ts is the bar's open, a live step reads OB as of the bar's close)
    and ``max_age_ms`` to the trader feed's, so it sees what the trader's `ObFeed` saw.
    A symbol's missing record, or a NaN field in one, reads as the neutral value.
    """

    symbols: tuple[str, ...]
    asset_ts: np.ndarray
    asset_values: np.ndarray
    macro_ts: np.ndarray
    macro_values: np.ndarray
    offset_ms: int = 0
    max_age_ms: int | None = None

    def __post_init__(self) -> None:
        if self.asset_values.ndim != 3 or self.asset_values.shape[1:] != (len(self.symbols), len(OB_ASSET_FIELDS)):
            raise ValueError("asset_values must be (n_records, n_symbols, 5)")
        if self.macro_values.ndim != 2 or self.macro_values.shape[1] != len(OB_MACRO_FIELDS):
            raise ValueError("macro_values must be (n_records, 3)")
        if len(self.asset_ts) != len(self.asset_values) or len(self.macro_ts) != len(self.macro_values):
            raise ValueError("timestamps and values differ in length")
        if np.any(np.diff(self.asset_ts) < 0) or np.any(np.diff(self.macro_ts) < 0):
            raise ValueError("OB record timestamps must be sorted")

    def picks(self, ts_ms: np.ndarray, assets: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Which record each bar reads: (n_bars, n_assets) rows of ``asset_ts`` and (n_bars,) rows of ``macro_ts``.

        -1 where there is none (before the first record, an asset without records, older than
        ``max_age_ms``). A row is the symbol's own latest record (one with a finite field).
        """
        query = np.asarray(ts_ms, dtype=np.int64) + self.offset_ms
        n_bars, n_assets = len(query), len(assets)
        asset_rows = np.full((n_bars, n_assets), -1, dtype=np.int64)
        col = {s: i for i, s in enumerate(self.symbols)}
        for j, asset in enumerate(assets):
            i = col.get(asset)
            if i is None:
                continue
            own = np.flatnonzero(np.isfinite(self.asset_values[:, i, :]).any(axis=1))   # the symbol's records
            rows = asof_rows(self.asset_ts[own], query, self.max_age_ms)
            have = rows >= 0
            asset_rows[have, j] = own[rows[have]]
        own = np.flatnonzero(np.isfinite(self.macro_values).any(axis=1))
        mrows = asof_rows(self.macro_ts[own], query, self.max_age_ms)
        macro_rows = np.full(n_bars, -1, dtype=np.int64)
        mhave = mrows >= 0
        macro_rows[mhave] = own[mrows[mhave]]
        return asset_rows, macro_rows

    def block(self, ts_ms: np.ndarray, assets: list[str]) -> OBBlock:
        asset_rows, macro_rows = self.picks(ts_ms, assets)
        n_bars, n_assets = asset_rows.shape
        out_asset = np.tile(NEUTRAL_ASSET, (n_bars, n_assets, 1))
        col = {s: i for i, s in enumerate(self.symbols)}
        for j, asset in enumerate(assets):
            i = col.get(asset)
            have = asset_rows[:, j] >= 0
            if i is not None and have.any():
                _fill(out_asset[:, j, :], have, self.asset_values[asset_rows[have, j], i, :])
        out_macro = np.tile(NEUTRAL_MACRO, (n_bars, 1))
        mhave = macro_rows >= 0
        _fill(out_macro, mhave, self.macro_values[macro_rows[mhave]])
        return OBBlock(out_asset, out_macro)


def _fill(out: np.ndarray, have: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` into the rows ``have`` of ``out`` where they are finite (NaN keeps the neutral value)."""
    target = out[have]
    finite = np.isfinite(values)
    target[finite] = values[finite]
    out[have] = target
