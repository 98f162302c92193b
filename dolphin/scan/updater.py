"""Live: the scan advanced one bar at a time (the scanner calls `update` every 5-second bar)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dolphin.scan import kernels as K
from dolphin.scan.batch import advance_block
from dolphin.scan.definitions import DEFAULT_WINDOWS, as_price_matrix, vel_div
from dolphin.scan.features import ScanFeatureArrays, ScanFeatures
from dolphin.scan.state import ScanState


class ScanUpdater:
    """Incremental eigen scan over a fixed asset universe.

    Each `update` costs O(n²) per window plus a few Lanczos products warm-started from
    the previous bar (no allocation in the kernels). `warm` backfills history through
    the batch kernels on the same state, so warm-then-update equals updating bar by bar.
    """

    def __init__(self, n_assets: int, windows: Sequence[int] = DEFAULT_WINDOWS) -> None:
        self.state = ScanState.new(n_assets, windows)
        self.windows: tuple[int, ...] = tuple(int(w) for w in self.state.windows)
        nw = len(self.windows)
        self._out = np.empty((1, nw, K.N_OUT))
        self._nel = np.zeros((1, nw), dtype=np.int64)
        st = self.state
        # Bound once: the per-bar call then costs one numba dispatch and a few small copies.
        self._args = (st.windows, st.last_price, st.gst, st.ring, st.vring, *st.window_arrays(),
                      self._out, self._nel)

    @property
    def n_assets(self) -> int:
        return self.state.n_assets

    @property
    def bars(self) -> int:
        """Bars ingested so far (warm + update)."""
        return self.state.bars

    def update(self, prices_row: np.ndarray) -> ScanFeatures:
        """Ingest one bar of close prices (NaN/inf/≤0 = missing) and return its scan."""
        row = prices_row
        if not (isinstance(row, np.ndarray) and row.dtype == np.float64 and row.flags.c_contiguous):
            row = np.ascontiguousarray(row, dtype=np.float64)
        if row.shape != (self.state.n_assets,):
            raise ValueError(f"prices_row: expected shape ({self.state.n_assets},), got {row.shape}")
        K.scan_one(row, *self._args)
        values = self._out[0].copy()
        st = self.state
        return ScanFeatures(windows=self.windows, values=values, n_eligible=self._nel[0].copy(),
                            vel_div=float(vel_div(values[0, K.O_VEL], values[-1, K.O_VEL])),
                            loadings=np.where(st.elig != 0, st.u, np.nan))

    def warm(self, prices: np.ndarray, *, parallel: bool | None = None) -> ScanFeatureArrays:
        """Backfill with a block of bars (bars, n_assets); returns their scan."""
        return advance_block(self.state, as_price_matrix(prices, self.state.n_assets), parallel=parallel)

    def solver_stats(self) -> dict[str, int]:
        return self.state.solver_stats()
