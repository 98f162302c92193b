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


@dataclass(frozen=True, slots=True)
class RecordedOBProvider:
    """Recorded OB features, looked up as-of each bar.

    ``asset_ts`` (sorted ms) and ``asset_values`` (n_records, n_symbols, 5) hold per-asset
    snapshots for ``symbols``; ``macro_ts`` and ``macro_values`` (n_records, 3) the market-wide ones.
    """

    symbols: tuple[str, ...]
    asset_ts: np.ndarray
    asset_values: np.ndarray
    macro_ts: np.ndarray
    macro_values: np.ndarray

    def __post_init__(self) -> None:
        if self.asset_values.ndim != 3 or self.asset_values.shape[1:] != (len(self.symbols), len(OB_ASSET_FIELDS)):
            raise ValueError("asset_values must be (n_records, n_symbols, 5)")
        if self.macro_values.ndim != 2 or self.macro_values.shape[1] != len(OB_MACRO_FIELDS):
            raise ValueError("macro_values must be (n_records, 3)")
        if len(self.asset_ts) != len(self.asset_values) or len(self.macro_ts) != len(self.macro_values):
            raise ValueError("timestamps and values differ in length")
        if np.any(np.diff(self.asset_ts) < 0) or np.any(np.diff(self.macro_ts) < 0):
            raise ValueError("OB record timestamps must be sorted")

    def block(self, ts_ms: np.ndarray, assets: list[str]) -> OBBlock:
        n_bars, n_assets = len(ts_ms), len(assets)
        out_asset = np.tile(NEUTRAL_ASSET, (n_bars, n_assets, 1))
        col = {s: i for i, s in enumerate(self.symbols)}
        rows = np.searchsorted(self.asset_ts, ts_ms, side="right") - 1
        have = rows >= 0
        for j, asset in enumerate(assets):
            i = col.get(asset)
            if i is None:
                continue
            vals = self.asset_values[rows[have], i, :]
            finite = np.isfinite(vals)
            target = out_asset[have, j, :]
            target[finite] = vals[finite]
            out_asset[have, j, :] = target
        out_macro = np.tile(NEUTRAL_MACRO, (n_bars, 1))
        mrows = np.searchsorted(self.macro_ts, ts_ms, side="right") - 1
        mhave = mrows >= 0
        mvals = self.macro_values[mrows[mhave]]
        mtarget = out_macro[mhave]
        mfinite = np.isfinite(mvals)
        mtarget[mfinite] = mvals[mfinite]
        out_macro[mhave] = mtarget
        return OBBlock(out_asset, out_macro)
