"""The scan's mutable state as plain numpy arrays, shared by the live updater and the batch builder.

Plain arrays (not a jitclass) so numba can cache the kernels on disk and the same state
can be advanced by either entry point: a batch backfill followed by live updates is one
continuous computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dolphin.scan import kernels as K
from dolphin.scan.definitions import DEFAULT_WINDOWS, check_windows
from dolphin.scan.eigen import KMAX


@dataclass(slots=True)
class ScanState:
    """Everything a scan carries from one bar to the next (see kernels.py for the layout)."""

    windows: np.ndarray      # (nw,) int64
    last_price: np.ndarray   # (n,) previous bar's prices (NaN before the first bar)
    gst: np.ndarray          # (1,) int64: bars ingested so far
    ring: np.ndarray         # (max_w + 1, n) returns, invalid stored as 0
    vring: np.ndarray        # (max_w + 1, n) uint8 return defined?
    run: np.ndarray          # (nw, n) int64 consecutive valid returns, capped at w
    s: np.ndarray            # (nw, n) Σ (r − c) over the window
    S: np.ndarray            # (nw, n, n) Σ (r − c)(r − c)ᵀ over the window
    ctr: np.ndarray          # (nw, 2, n) per-asset shift c (window mean at its row's last re-sync)
                             #            and peak |r − c| through the sums since then
    d: np.ndarray            # (nw, n) 1/sqrt((w-1)·var), 0 = excluded
    u: np.ndarray            # (nw, n) last top eigenvector (0 outside the eligible set)
    elig: np.ndarray         # (nw, n) uint8 eligibility at the last bar
    fst: np.ndarray          # (nw, 2) previous share, previous velocity
    ist: np.ndarray          # (nw, 8) has-vector flag, resync pointer/credit, solver stats, last step count, slack
    V: np.ndarray            # (nw, 2·(KMAX+1), n) Lanczos basis and its products (scratch)
    work: np.ndarray         # (nw, 9, n) vector scratch (row 8: cold-start weights, filled on first use)
    tri: np.ndarray          # (nw, 6, KMAX+1) tridiagonal scratch

    @classmethod
    def new(cls, n_assets: int, windows: Sequence[int] = DEFAULT_WINDOWS) -> ScanState:
        if int(n_assets) < 1:
            raise ValueError(f"n_assets must be ≥ 1, got {n_assets}")
        n = int(n_assets)
        win = check_windows(windows)
        nw = win.shape[0]
        length = int(win[-1]) + 1
        fst = np.full((nw, K.N_FST), np.nan)
        return cls(
            windows=win,
            last_price=np.full(n, np.nan),
            gst=np.zeros(1, dtype=np.int64),
            ring=np.zeros((length, n)),
            vring=np.zeros((length, n), dtype=np.uint8),
            run=np.zeros((nw, n), dtype=np.int64),
            s=np.zeros((nw, n)),
            S=np.zeros((nw, n, n)),
            ctr=np.zeros((nw, 2, n)),
            d=np.zeros((nw, n)),
            u=np.zeros((nw, n)),
            elig=np.zeros((nw, n), dtype=np.uint8),
            fst=fst,
            ist=np.zeros((nw, K.N_IST), dtype=np.int64),
            V=np.zeros((nw, 2 * (KMAX + 1), n)),
            work=np.zeros((nw, K.N_WORK, n)),
            tri=np.zeros((nw, K.N_TRI, KMAX + 1)),
        )

    @property
    def n_assets(self) -> int:
        return int(self.last_price.shape[0])

    @property
    def bars(self) -> int:
        return int(self.gst[0])

    def window_arrays(self) -> tuple[np.ndarray, ...]:
        """The per-window arrays in the order the kernels take them."""
        return (self.run, self.s, self.S, self.ctr, self.d, self.u, self.elig, self.fst, self.ist,
                self.V, self.work, self.tri)

    def solver_stats(self) -> dict[str, int]:
        """Lanczos steps, restarts and dense fallbacks so far, summed over windows."""
        return {"lanczos_steps": int(self.ist[:, K.I_STEPS].sum()),
                "restarts": int(self.ist[:, K.I_RESTARTS].sum()),
                "dense_fallbacks": int(self.ist[:, K.I_FALLBACKS].sum())}
