"""The volatility gate (vol_ok): trade only when the reference asset is in its upper volatility regime.

    dvol(t)   = sample std (ddof=1) of the last `window` log returns of the reference
                asset; NaN unless all of them are defined.
    θ(t)      = numpy-default (linear) `percentile` of the previous `calib_bars` finite
                dvol values (NaN bars are skipped, not counted).
    vol_ok(t) = dvol(t) ≥ θ(t); False while fewer than `calib_bars` previous finite dvol
                values exist, or when dvol(t) is NaN.

Parameters come from `dolphin.engine.params.ExtrasParams` (vol_window, vol_percentile,
vol_calib_bars) but are taken as plain arguments so the scan package stays free of config.
The batch function and `VolGate` run the same numba kernel (one bar per call for the
gate), so they agree bit for bit. The trailing values are kept sorted incrementally
(binary search + shift, O(K) per bar) instead of re-sorting K values every bar.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numba import njit

# fstate: [last price]; istate: [consecutive valid returns, ring position, dvol history count, bars]
_F_LAST = 0
_I_RUN = 0
_I_POS = 1
_I_HCOUNT = 2
_I_BARS = 3


@njit(cache=True, error_model="numpy")
def _percentile_sorted(v: np.ndarray, K: int, q: float) -> float:
    """np.percentile(v[:K], 100·q) for sorted v, reproducing numpy's 'linear' arithmetic."""
    vi = (K - 1) * q
    lo = int(np.floor(vi))
    if vi >= K - 1:
        return v[K - 1]
    if lo < 0:
        return v[0]
    gamma = vi - lo
    a = v[lo]
    b = v[lo + 1]
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


@njit(cache=True, error_model="numpy")
def _vol_rows(prices: np.ndarray, window: int, q: float, K: int, fst: np.ndarray, ist: np.ndarray,
              rets: np.ndarray, hist: np.ndarray, srt: np.ndarray,
              out_dvol: np.ndarray, out_ok: np.ndarray) -> None:
    """Advance the gate over `prices`; writes dvol and vol_ok for each."""
    for t in range(prices.shape[0]):
        p = prices[t]
        pp = fst[_F_LAST]
        r = np.nan
        if np.isfinite(p) and p > 0.0 and np.isfinite(pp) and pp > 0.0:
            r = np.log(p / pp)
        fst[_F_LAST] = p
        pos = ist[_I_POS]
        if np.isfinite(r):
            rets[pos] = r
            if ist[_I_RUN] < window:
                ist[_I_RUN] += 1
        else:
            rets[pos] = 0.0
            ist[_I_RUN] = 0
        ist[_I_POS] = (pos + 1) % window
        ist[_I_BARS] += 1

        dvol = np.nan
        if ist[_I_RUN] >= window:
            mean = 0.0
            for k in range(window):
                mean += rets[k]
            mean /= window
            ss = 0.0
            for k in range(window):
                dv = rets[k] - mean
                ss += dv * dv
            dvol = np.sqrt(ss / (window - 1))

        hc = ist[_I_HCOUNT]
        ok = False
        if np.isfinite(dvol) and hc >= K:
            ok = dvol >= _percentile_sorted(srt, K, q)
        out_dvol[t] = dvol
        out_ok[t] = ok

        if np.isfinite(dvol):
            # hist is a ring of the last K finite dvols; srt holds the same values sorted.
            n_s = hc if hc < K else K
            if hc >= K:
                old = hist[hc % K]
                j = np.searchsorted(srt[:n_s], old)
                while j + 1 < n_s and srt[j] != old:
                    j += 1
                for k in range(j, n_s - 1):
                    srt[k] = srt[k + 1]
                n_s -= 1
            hist[hc % K] = dvol
            j = np.searchsorted(srt[:n_s], dvol)
            for k in range(n_s, j, -1):
                srt[k] = srt[k - 1]
            srt[j] = dvol
            ist[_I_HCOUNT] = hc + 1


def _check(window: int, percentile: float, calib_bars: int) -> tuple[int, float, int]:
    window, calib_bars, percentile = int(window), int(calib_bars), float(percentile)
    if window < 2:
        raise ValueError(f"vol window must be ≥ 2 returns, got {window}")
    if calib_bars < 1:
        raise ValueError(f"vol calib_bars must be ≥ 1, got {calib_bars}")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"vol percentile must be in [0, 100], got {percentile}")
    return window, percentile / 100.0, calib_bars


class VolGate:
    """Incremental vol_ok for the live loop: `update(price) -> bool`, one call per bar."""

    def __init__(self, window: int = 50, percentile: float = 60.0, calib_bars: int = 720) -> None:
        self.window, self._q, self.calib_bars = _check(window, percentile, calib_bars)
        self.percentile = float(percentile)
        self._fst = np.full(1, np.nan)
        self._ist = np.zeros(4, dtype=np.int64)
        self._rets = np.zeros(self.window)
        self._hist = np.zeros(self.calib_bars)
        self._srt = np.zeros(self.calib_bars)
        self._dvol = np.empty(1)
        self._ok = np.zeros(1, dtype=np.bool_)
        self._px = np.empty(1)

    @property
    def dvol(self) -> float:
        """dvol of the last bar (NaN before `window` valid returns)."""
        return float(self._dvol[0]) if self._ist[_I_BARS] else float("nan")

    _STATE_ARRAYS = ("_fst", "_ist", "_rets", "_hist", "_srt", "_dvol", "_ok")

    def get_state(self) -> dict[str, object]:
        """Exact state (arrays as raw bytes) so a restarted trader resumes the same gate."""
        return {"window": self.window, "percentile": self.percentile, "calib_bars": self.calib_bars,
                **{name.lstrip("_"): getattr(self, name).tobytes() for name in self._STATE_ARRAYS}}

    def restore_state(self, state: Mapping[str, object]) -> None:
        if (state["window"], state["percentile"], state["calib_bars"]) != (self.window, self.percentile,
                                                                             self.calib_bars):
            raise ValueError("vol gate state was taken with other parameters")
        for name in self._STATE_ARRAYS:
            current = getattr(self, name)
            data = state[name.lstrip("_")]
            if not isinstance(data, bytes):
                raise ValueError(f"vol gate state field {name} is not raw bytes")
            raw = np.frombuffer(data, dtype=current.dtype)
            if raw.shape != current.shape:
                raise ValueError(f"vol gate state field {name} has the wrong size")
            setattr(self, name, raw.copy())

    def update(self, price: float) -> bool:
        self._px[0] = price
        _vol_rows(self._px, self.window, self._q, self.calib_bars, self._fst, self._ist,
                  self._rets, self._hist, self._srt, self._dvol, self._ok)
        return bool(self._ok[0])

    def update_block(self, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dvol, vol_ok) of the next bars of the reference series, in one kernel call.

        A long history fed block by block gives the same values as one call over all of
        it: the gate carries only its trailing returns and dvol values between blocks.
        """
        px = np.ascontiguousarray(prices, dtype=np.float64)
        if px.ndim != 1:
            raise ValueError(f"prices: expected a 1-D series, got shape {px.shape}")
        dvol = np.empty(px.shape[0])
        ok = np.zeros(px.shape[0], dtype=np.bool_)
        if px.shape[0]:
            _vol_rows(px, self.window, self._q, self.calib_bars, self._fst, self._ist,
                      self._rets, self._hist, self._srt, dvol, ok)
            self._dvol[0] = dvol[-1]
            self._ok[0] = ok[-1]
        return dvol, ok


def vol_regime_ok(prices: np.ndarray, window: int = 50, percentile: float = 60.0,
                  calib_bars: int = 720) -> tuple[np.ndarray, np.ndarray]:
    """(dvol, vol_ok) for every bar of a reference price series (see the module docstring)."""
    return VolGate(window, percentile, calib_bars).update_block(prices)
