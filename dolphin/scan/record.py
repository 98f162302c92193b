"""The scan: one canonical record per scan (`ScanRecord`) and the engine's view of it (`ScanBar`).

`ScanRecord` is the NG5 row (bible §27.3): the 27 columns of the doctrinal Arrow layout,
held decoded. Every path that moves a scan — the scanner's file and bus write, the
bridge, the trader, `backtest --journal`, the TUI and its replay — holds this one type,
and `dolphin.bus.scan_codec` is the one place that converts it to and from the Arrow
row, the bus payloads (NG8 flat, NG7 nested) and the engine's input. `ScanBar` is that
input: the few fields a step of the engine reads.

This module is pure (no file, bus or clock): it sits with the scan math it records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from dolphin.scan.definitions import DEFAULT_WINDOWS, VEL_DIV_LONG, VEL_DIV_SHORT
from dolphin.scan.features import ScanFeatures

SCHEMA_VERSION = "5.0.0"
#: Per-window statistics, in column order within a window.
WINDOW_STATS: tuple[str, ...] = ("lambda_max", "velocity", "acceleration", "instability")
#: The per-window columns of the NG5 layout, in file order.
WINDOW_COLUMNS: tuple[str, ...] = tuple(f"w{w}_{stat}" for w in DEFAULT_WINDOWS for stat in WINDOW_STATS)
#: regime_signal gates (bible §4.1): SHORT below, LONG above.
REGIME_SHORT_GATE: float = VEL_DIV_SHORT
REGIME_LONG_GATE: float = VEL_DIV_LONG


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def iso_from_ns(timestamp_ns: int) -> str:
    """ISO-8601 UTC (``+00:00``) of a Unix-ns time, exact to the microsecond."""
    seconds, rem = divmod(int(timestamp_ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rem // 1000).isoformat()


def regime_signal(vel_div: float) -> float:
    """−1 below the SHORT gate, +1 above the LONG gate, 0 between, NaN while vel_div is undefined."""
    if math.isnan(vel_div):
        return math.nan
    if vel_div < REGIME_SHORT_GATE:
        return -1.0
    if vel_div > REGIME_LONG_GATE:
        return 1.0
    return 0.0


def instability_composite(values: Sequence[float]) -> float:
    """Mean of the defined window instabilities; NaN when none is defined."""
    defined = [v for v in values if not math.isnan(v)]
    return math.fsum(defined) / len(defined) if defined else math.nan


class ScanRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One scan as stored: the 27 NG5 columns in file order.

    The three JSON columns are held decoded: `assets` (symbols), `prices` (close per
    asset, None = no price) and `loadings` (window → top eigenvector aligned with
    assets, None = asset not eligible). Float statistics keep NaN for "undefined"
    (warm-up); the constructor checks the row is self-consistent.
    """

    scan_number: int
    timestamp_ns: int
    timestamp: str
    w50_lambda_max: float
    w50_velocity: float
    w50_acceleration: float
    w50_instability: float
    w150_lambda_max: float
    w150_velocity: float
    w150_acceleration: float
    w150_instability: float
    w300_lambda_max: float
    w300_velocity: float
    w300_acceleration: float
    w300_instability: float
    w750_lambda_max: float
    w750_velocity: float
    w750_acceleration: float
    w750_instability: float
    vel_div: float
    regime_signal: float
    instability_composite: float
    n_assets: int
    assets: tuple[str, ...]
    prices: tuple[float | None, ...]
    loadings: dict[str, tuple[float | None, ...]]
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.scan_number < 0:
            raise ValueError(f"scan_number={self.scan_number} is negative")
        if self.timestamp_ns <= 0:
            raise ValueError(f"timestamp_ns={self.timestamp_ns} must be positive")
        try:
            datetime.fromisoformat(self.timestamp.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"timestamp={self.timestamp!r} is not ISO-8601") from None
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version={self.schema_version!r}, expected {SCHEMA_VERSION!r}")
        n = self.n_assets
        if n != len(self.assets) or n != len(self.prices):
            raise ValueError(f"n_assets={n} but {len(self.assets)} assets and {len(self.prices)} prices")
        if len(set(self.assets)) != n or not all(self.assets):
            raise ValueError("assets must be unique, non-empty symbols")
        for price in self.prices:
            if price is not None and not (math.isfinite(price) and price > 0):
                raise ValueError(f"price {price} is not a positive finite number (use null for missing)")
        allowed = {str(w) for w in DEFAULT_WINDOWS}
        for key, vector in self.loadings.items():
            if key not in allowed:
                raise ValueError(f"loadings key {key!r} is not a window ({', '.join(sorted(allowed, key=int))})")
            if len(vector) != n:
                raise ValueError(f"loadings[{key!r}] has {len(vector)} values for {n} assets")

    # ------------------------------------------------------------ accessors
    def window(self, w: int) -> tuple[float, float, float, float]:
        """(lambda_max, velocity, acceleration, instability) of window w."""
        if w not in DEFAULT_WINDOWS:
            raise KeyError(f"window {w} not in {DEFAULT_WINDOWS}")
        return (getattr(self, f"w{w}_lambda_max"), getattr(self, f"w{w}_velocity"),
                getattr(self, f"w{w}_acceleration"), getattr(self, f"w{w}_instability"))

    def price_map(self) -> dict[str, float]:
        """Symbol → close for the assets that have a price."""
        return {a: p for a, p in zip(self.assets, self.prices, strict=True) if p is not None}

    @property
    def day(self) -> str:
        """UTC date of the market timestamp (the archive's day directory)."""
        return _utc(self.timestamp_ns).strftime("%Y-%m-%d")

    # ------------------------------------------------------------ construction
    @classmethod
    def from_features(cls, scan_number: int, timestamp_ns: int, assets: Sequence[str], prices_row: np.ndarray,
                      features: ScanFeatures) -> ScanRecord:
        """The record of one live scan: `features` from `ScanUpdater.update(prices_row)`.

        The scan must run on the NG5 windows (50, 150, 300, 750). Invalid prices (NaN,
        ±inf, ≤ 0 — what the scan itself treats as missing) are stored as null.
        """
        if tuple(features.windows) != DEFAULT_WINDOWS:
            raise ValueError(f"NG5 files hold windows {DEFAULT_WINDOWS}; the scan ran on {features.windows}")
        names = tuple(str(a) for a in assets)
        row = np.asarray(prices_row, dtype=np.float64)
        if row.shape != (len(names),) or features.loadings.shape != (len(DEFAULT_WINDOWS), len(names)):
            raise ValueError(f"{len(names)} assets, prices {row.shape}, loadings {features.loadings.shape} disagree")
        stats: dict[str, Any] = {}
        values = features.values
        for k, w in enumerate(DEFAULT_WINDOWS):
            stats[f"w{w}_lambda_max"] = float(values[k, 0])
            stats[f"w{w}_velocity"] = float(values[k, 2])
            stats[f"w{w}_acceleration"] = float(values[k, 3])
            stats[f"w{w}_instability"] = float(values[k, 4])
        vel_div = float(features.vel_div)
        prices = tuple(float(p) if math.isfinite(p) and p > 0 else None for p in row.tolist())
        loadings = {str(w): tuple(_finite_or_none(v) for v in features.loadings[k].tolist())
                    for k, w in enumerate(DEFAULT_WINDOWS)}
        return cls(scan_number=int(scan_number), timestamp_ns=int(timestamp_ns), timestamp=iso_from_ns(timestamp_ns),
                   **stats, vel_div=vel_div, regime_signal=regime_signal(vel_div),
                   instability_composite=instability_composite([stats[f"w{w}_instability"] for w in DEFAULT_WINDOWS]),
                   n_assets=len(names), assets=names, prices=prices, loadings=loadings)


def _utc(timestamp_ns: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ns // 1_000_000_000, tz=UTC)


class ScanBar(msgspec.Struct, frozen=True):
    """One scan as the engine steps it (built only by `dolphin.bus.scan_codec`).

    NaN marks an undefined statistic (warm-up); `published_s` is the wall clock of the
    bus write, None when the scan came from the archive or a journal.
    """

    scan_number: int
    ts_ms: int                       # market time (bar open), ms
    vel_div: float
    v50: float
    v750: float
    prices: dict[str, float]
    published_s: float | None = None


__all__ = ["REGIME_LONG_GATE", "REGIME_SHORT_GATE", "SCHEMA_VERSION", "WINDOW_COLUMNS", "WINDOW_STATS", "ScanBar",
           "ScanRecord", "instability_composite", "iso_from_ns", "regime_signal"]
