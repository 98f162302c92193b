"""The scan of one bar, float64 or 512-bit: all four windows in one call (bible §27.2).

`ScanEngine.update(row)` is the only scan call per bar: one `ScanUpdater.update` (the
numba kernels run windows 50/150/300/750 in one pass) — never a fast and a slow cycle
(the NG7 double-output bug, §27.1).

``precision="arb512"`` (bible §25) runs `ArbScanner.update` on the same row in the same
call and takes the critical numbers from it: lambda_max, velocity, acceleration (the
difference of two 512-bit velocities) and vel_div, each rounded once to float64. The
512-bit path computes no eigenvector, so instability and the loadings come from the
float64 pass of the same bar (its eligibility rule is identical; a disagreement in
eligible counts is counted in `eligibility_mismatches`). One record per bar either way.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from dolphin.scan.definitions import DEFAULT_WINDOWS
from dolphin.scan.features import ScanFeatures
from dolphin.scan.updater import ScanUpdater

PRECISIONS = ("float64", "arb512")
ARB_PREC = 512


def _to_float(value: Any) -> float:
    return math.nan if value is None else float(value)


class ScanEngine:
    """Incremental scan of ``n_assets`` with the NG5 windows, at ``precision``."""

    def __init__(self, n_assets: int, precision: str = "float64") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
        self.n_assets = int(n_assets)
        self.precision = precision
        self.windows = tuple(DEFAULT_WINDOWS)
        self.f64 = ScanUpdater(self.n_assets, self.windows)
        self.arb: Any = None
        self._arb_prev_velocity: list[Any] = [None] * len(self.windows)
        if precision == "arb512":
            from dolphin.scan.arb512 import ArbScanner

            self.arb = ArbScanner(self.n_assets, self.windows, ARB_PREC)
        self.bars = 0
        self.eligibility_mismatches = 0
        self.last_compute_s = 0.0

    @property
    def max_window(self) -> int:
        return self.windows[-1]

    def warm(self, prices: np.ndarray) -> None:
        """Feed a block of bars (rows) without producing scans (backfill before the first scan)."""
        block = np.ascontiguousarray(prices, dtype=np.float64)
        if block.shape[0] == 0:
            return
        self.f64.warm(block)
        if self.arb is not None:
            # the last bar through `update` so its velocity is known: the next bar's acceleration needs it
            if block.shape[0] > 1:
                self.arb.warm(block[:-1])
            self._arb_prev_velocity = list(self.arb.update(block[-1]).velocity)
        self.bars += int(block.shape[0])

    def update(self, row: np.ndarray) -> ScanFeatures:
        """The scan of one bar (every window, one pass)."""
        started = time.perf_counter()
        features = self.f64.update(row)
        if self.arb is not None:
            features = self._with_arb(features, self.arb.update(row))
        self.bars += 1
        self.last_compute_s = time.perf_counter() - started
        return features

    def _with_arb(self, f: ScanFeatures, a: Any) -> ScanFeatures:
        from flint import ctx

        values = f.values.copy()
        n_eligible = np.asarray(a.n_eligible, dtype=np.int64)
        if not np.array_equal(n_eligible, f.n_eligible):
            self.eligibility_mismatches += 1
        with ctx.workprec(ARB_PREC):
            for k in range(len(self.windows)):
                vel, prev = a.velocity[k], self._arb_prev_velocity[k]
                values[k, 0] = _to_float(a.lambda_max[k])
                values[k, 1] = _to_float(a.share[k])
                values[k, 2] = _to_float(vel)
                values[k, 3] = _to_float(vel - prev) if vel is not None and prev is not None else math.nan
        self._arb_prev_velocity = list(a.velocity)
        return ScanFeatures(windows=f.windows, values=values, n_eligible=n_eligible, vel_div=_to_float(a.vel_div),
                            loadings=f.loadings)


__all__ = ["ARB_PREC", "PRECISIONS", "ScanEngine"]
