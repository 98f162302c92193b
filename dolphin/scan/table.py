"""The scan table: one row per bar — time, scan number, the signal columns and every asset's close.

It is the replay input of the backtester and the bible §3.1 layout (vel_div, the four
window velocities, instability_50/150, then one close column per asset), with ts and
scan_number in front. This module only turns a close matrix into the table's columns;
reading and writing the file is `dolphin.store.scan_table`.

Velocities here are the scan's share velocities (lambda_max / n_eligible, differenced):
the bible's "lambda_max velocity" names are kept for compatibility.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from dolphin.scan.definitions import DEFAULT_WINDOWS

#: Non-asset columns, in file order. Every other column of a scan table is an asset's close.
SCAN_META_COLUMNS: tuple[str, ...] = (
    "ts", "scan_number", "vel_div",
    "v50_lambda_max_velocity", "v150_lambda_max_velocity",
    "v300_lambda_max_velocity", "v750_lambda_max_velocity",
    "instability_50", "instability_150",
)
#: The float64 signal columns (meta columns after ts and scan_number).
FEATURE_COLUMNS: tuple[str, ...] = SCAN_META_COLUMNS[2:]


@dataclass(frozen=True, slots=True)
class ScanTable:
    """A scan table in memory: one entry per bar in every array."""

    ts: np.ndarray                        # int64 ms UTC, bar open time, strictly increasing
    scan_number: np.ndarray               # int64, 1..N when built
    vel_div: np.ndarray
    v50_lambda_max_velocity: np.ndarray
    v150_lambda_max_velocity: np.ndarray
    v300_lambda_max_velocity: np.ndarray
    v750_lambda_max_velocity: np.ndarray
    instability_50: np.ndarray
    instability_150: np.ndarray
    assets: tuple[str, ...]
    prices: np.ndarray                    # (bars, n_assets) float64 close, NaN = no price

    @property
    def rows(self) -> int:
        return int(self.ts.shape[0])

    def feature(self, name: str) -> np.ndarray:
        """A signal column by its file name (one of FEATURE_COLUMNS)."""
        if name not in FEATURE_COLUMNS:
            raise KeyError(f"{name!r} is not a scan feature column ({', '.join(FEATURE_COLUMNS)})")
        return getattr(self, name)

    def price(self, asset: str) -> np.ndarray:
        """One asset's close column."""
        try:
            return self.prices[:, self.assets.index(asset)]
        except ValueError:
            raise KeyError(f"asset {asset!r} not in the scan table") from None

    @classmethod
    def concat(cls, parts: list[ScanTable]) -> ScanTable:
        """Consecutive pieces of one table (same assets) joined into one."""
        if not parts:
            raise ValueError("concat: no parts")
        if len(parts) == 1:
            return parts[0]
        values = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
                  for f in fields(cls) if f.name != "assets"}
        return cls(assets=parts[0].assets, **values)

    def rows_between(self, start: int, stop: int) -> ScanTable:
        """Rows [start, stop) as views (no copy)."""
        values = {f.name: getattr(self, f.name)[start:stop] for f in fields(self) if f.name != "assets"}
        return ScanTable(assets=self.assets, **values)

    def take(self, index: np.ndarray) -> ScanTable:
        """The rows selected by a boolean mask or an index array."""
        values = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name not in ("assets",)}
        return ScanTable(assets=self.assets, **values)

    def append(self, later: ScanTable) -> ScanTable:
        """These rows then `later`'s (which must start after them); assets are the union, in first-seen order.

        An asset one side lacks is NaN (no price) on that side's rows, as in an archive
        whose universe changed.
        """
        if self.rows and later.rows and int(later.ts[0]) <= int(self.ts[-1]):
            raise ValueError(f"appended rows start at {int(later.ts[0])} ms, not after {int(self.ts[-1])} ms")
        assets = self.assets + tuple(a for a in later.assets if a not in self.assets)
        prices = np.full((self.rows + later.rows, len(assets)), np.nan)
        prices[: self.rows, : len(self.assets)] = self.prices
        prices[self.rows:, [assets.index(a) for a in later.assets]] = later.prices
        values = {f.name: np.concatenate([getattr(self, f.name), getattr(later, f.name)])
                  for f in fields(self) if f.name not in ("assets", "prices")}
        return ScanTable(assets=assets, prices=prices, **values)


def _check_assets(assets: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    names = tuple(str(a) for a in assets)
    clash = sorted(set(names) & set(SCAN_META_COLUMNS))
    if clash or len(set(names)) != len(names):
        raise ValueError(f"asset names must be unique and differ from the meta columns (clash: {clash})")
    return names


class ScanTableBuilder:
    """Scan a close matrix piece by piece: the scan windows are the only state carried between pieces.

    Why: a long replay (a year of 5-second bars) cannot hold its whole market in memory;
    fed a day at a time, the builder keeps one `ScanState` (the four windows' sums, ring
    and last eigenvectors) and numbers the rows on. The scan kernels are chunk-invariant,
    so the pieces equal the rows of one `build_scan_table` call over the whole matrix,
    bit for bit.
    """

    def __init__(self, assets: tuple[str, ...] | list[str], *, first_scan_number: int = 1) -> None:
        from dolphin.scan.state import ScanState

        self.assets = _check_assets(assets)
        if not self.assets:
            raise ValueError("prices: need at least one asset column")
        self.state = ScanState.new(len(self.assets), DEFAULT_WINDOWS)
        self.next_scan_number = int(first_scan_number)

    def advance(self, ts: np.ndarray, close: np.ndarray, *,
                progress: Callable[[int, int], None] | None = None) -> ScanTable:
        """The scan table rows of the next bars (ts (bars,), close (bars, assets))."""
        from dolphin.scan.batch import build_scan_features

        ts = np.ascontiguousarray(ts, dtype=np.int64)
        close = np.ascontiguousarray(close, dtype=np.float64)
        if close.ndim != 2 or close.shape != (ts.shape[0], len(self.assets)):
            raise ValueError(f"close must be (bars={ts.shape[0]}, assets={len(self.assets)}), got {close.shape}")
        feats = build_scan_features(close, DEFAULT_WINDOWS, progress=progress, state=self.state)
        first = self.next_scan_number
        self.next_scan_number += ts.shape[0]
        return ScanTable(
            ts=ts,
            scan_number=np.arange(first, first + ts.shape[0], dtype=np.int64),
            vel_div=feats.vel_div,
            v50_lambda_max_velocity=feats.column("velocity", 50),
            v150_lambda_max_velocity=feats.column("velocity", 150),
            v300_lambda_max_velocity=feats.column("velocity", 300),
            v750_lambda_max_velocity=feats.column("velocity", 750),
            instability_50=feats.column("instability", 50),
            instability_150=feats.column("instability", 150),
            assets=self.assets,
            prices=close,
        )


def build_scan_table(ts: np.ndarray, assets: tuple[str, ...] | list[str], close: np.ndarray, *,
                     progress: Callable[[int, int], None] | None = None) -> ScanTable:
    """Scan a close matrix (bars, assets) on the default windows and lay it out as a scan table.

    Every bar is kept, including the warm-up bars whose features are still NaN, so the
    price columns stay continuous for the replay.
    """
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    close = np.ascontiguousarray(close, dtype=np.float64)
    names = _check_assets(assets)
    if close.ndim != 2 or close.shape != (ts.shape[0], len(names)):
        raise ValueError(f"close must be (bars={ts.shape[0]}, assets={len(names)}), got {close.shape}")
    return ScanTableBuilder(names).advance(ts, close, progress=progress)
