"""The scan and the volatility gate in 512-bit ball arithmetic (python-flint `arb`, bible §25).

Bible §25 asks for 512-bit precision on critical math "when performance allows". This
module is that path, and the yardstick for the float64 kernels: the equivalence tests
check that both make the same vol_ok and vel_div-threshold decisions.

Scan, per window: log returns are computed in arb from the float64 prices; the window
sums s = Σr and S = Σ r rᵀ are kept as `arb_mat` and updated by the same add/remove
rank-2 step as the float64 kernels (at 512 bits the drift is ~1e-150, so no
re-synchronisation is needed); the correlation matrix of the eligible assets is formed
in arb; its top eigenvalue is refined from a float64 eigenvector (np.linalg.eigh of the
rounded matrix) by Rayleigh-quotient iteration with `arb_mat.solve` until the residual
is below 2^-(prec/2+32)·λ — the eigenvalue error is about residual²/gap, so that is
full 512-bit accuracy. share, velocity and vel_div follow in arb.

Volatility gate: returns, mean, sum of squared deviations and sqrt in arb; the trailing
percentile is interpolated in arb with the exact rational index (K−1)·p/100.

Exclusion and warm-up rules are those of docs/scan.md, so the eligible sets match the
float64 path exactly. Cost: ~0.1 s per bar for 50 assets and four windows (see
benchmarks/README.md), usable at the 5-second cadence; the float64 kernels stay the
production path.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from flint import arb, arb_mat, ctx, fmpq

from dolphin.scan.definitions import DEFAULT_WINDOWS, VAR_EPS, as_price_matrix, check_windows, vel_div

PREC = 512


@contextmanager
def _precision(prec: int) -> Iterator[None]:
    """flint's precision is process-global: set it for our work and restore it after."""
    with ctx.workprec(prec):
        yield


def _arb_log_return(p: float, pp: float) -> arb | None:
    """ln(p/pp) in arb, or None when either price is invalid (NaN, inf, ≤ 0)."""
    if not (math.isfinite(p) and p > 0.0 and math.isfinite(pp) and pp > 0.0):
        return None
    return (arb(p) / arb(pp)).log()


def rayleigh_refine(C: arb_mat, u0: np.ndarray, prec: int = PREC, max_iter: int = 8) -> arb:
    """Top eigenvalue of the symmetric arb matrix C, refined from a float64 eigenvector u0.

    Rayleigh-quotient iteration converges cubically to the eigenpair nearest the start,
    so a float64 top vector (error ~1e-15) reaches 512-bit accuracy in two or three solves.
    The linear solves use flint's approximate algorithm: only the direction matters, and
    the final Rayleigh quotient is computed in full ball arithmetic. Works at flint's
    current precision (`prec` only sets the stopping target): the module's entry points
    run it inside a `prec`-bit context.
    """
    m = C.nrows()
    u = arb_mat(m, 1, [float(x) for x in u0])
    target = arb(2) ** (-(prec // 2 + 32))
    eye = arb_mat(m, m)
    for i in range(m):
        eye[i, i] = 1
    theta = arb(0)
    for _ in range(max_iter):
        nrm = (u.transpose() * u)[0, 0].sqrt()
        u = u * (1 / nrm)
        cu = C * u
        theta = (u.transpose() * cu)[0, 0]
        r = cu - u * theta
        res = (r.transpose() * r)[0, 0].sqrt()
        if res.mid() <= (target * abs(theta)).mid():
            break
        y = (C - eye * theta).solve(u, nonstop=True, algorithm="approx")
        if not all(y[i, 0].is_finite() for i in range(m)):
            break
        u = y
    return theta


@dataclass(frozen=True, slots=True)
class ArbScanRow:
    """One bar of the 512-bit scan; None where the float64 path has NaN."""

    windows: tuple[int, ...]
    lambda_max: list[arb | None]
    share: list[arb | None]
    velocity: list[arb | None]
    n_eligible: list[int]
    vel_div: arb | None


@dataclass(frozen=True, slots=True)
class ArbScanArrays:
    """The 512-bit scan of a span of bars, rounded to float64 (NaN where undefined)."""

    windows: tuple[int, ...]
    lambda_max: np.ndarray   # (bars, nw)
    share: np.ndarray
    velocity: np.ndarray
    n_eligible: np.ndarray   # (bars, nw) int64
    vel_div: np.ndarray      # (bars,)
    seconds_per_bar: float


class _ArbWindow:
    """Running 512-bit sums of one window, over all assets (invalid returns as 0)."""

    def __init__(self, n: int, w: int) -> None:
        self.w = w
        self.S = arb_mat(n, n)
        self.s = arb_mat(n, 1)
        self.run = np.zeros(n, dtype=np.int64)
        self.share: arb | None = None        # share of the last bar whose features were computed
        self.prev_share: arb | None = None   # share of the bar before the one being ingested


class ArbScanner:
    """The scan of docs/scan.md in 512-bit arithmetic, one bar at a time (lambda_max → vel_div)."""

    def __init__(self, n_assets: int, windows: Sequence[int] = DEFAULT_WINDOWS, prec: int = PREC) -> None:
        self.n = int(n_assets)
        self.windows = tuple(int(w) for w in check_windows(windows))
        self.prec = int(prec)
        self._wins = [_ArbWindow(self.n, w) for w in self.windows]
        self._ring_len = self.windows[-1] + 1
        self._ring: list[tuple[arb_mat, arb_mat] | None] = [None] * self._ring_len
        self._last = np.full(self.n, np.nan)
        self._bars = 0

    def update(self, prices_row: np.ndarray) -> ArbScanRow:
        """Ingest one bar and compute its 512-bit scan."""
        row = self._check_row(prices_row)
        with _precision(self.prec):
            self._ingest(row)
            return self._features()

    def warm(self, prices: np.ndarray) -> ArbScanRow | None:
        """Backfill: feed every bar into the window sums, computing the eigen step only for the last.

        The eigenvalues of the skipped bars are not needed to continue (only the last
        share is, for the next velocity), so a backfill costs the sums alone.
        """
        P = as_price_matrix(prices, self.n)
        if P.shape[0] == 0:
            return None
        with _precision(self.prec):
            for row in P[:-1]:
                self._ingest(row)
            self._ingest(P[-1])
            return self._features()

    def _check_row(self, prices_row: np.ndarray) -> np.ndarray:
        row = np.asarray(prices_row, dtype=np.float64)
        if row.shape != (self.n,):
            raise ValueError(f"prices_row: expected shape ({self.n},), got {row.shape}")
        return row

    def _ingest(self, row: np.ndarray) -> None:
        """Returns of this bar into the ring and every window's running sums."""
        g = self._bars
        rets = [_arb_log_return(float(p), float(pp)) for p, pp in zip(row, self._last)]
        self._last = row.copy()
        valid = np.array([r is not None for r in rets])
        col = arb_mat(self.n, 1, [r if r is not None else 0 for r in rets])
        rowm = col.transpose()
        self._ring[g % self._ring_len] = (col, rowm)
        for win in self._wins:
            w = win.w
            win.run = np.where(valid, np.minimum(win.run + 1, w), 0)
            if g >= w:
                old = self._ring[(g - w) % self._ring_len]
                assert old is not None
                win.S = win.S + (col * rowm - old[0] * old[1])
                win.s = win.s + (col - old[0])
            else:
                win.S = win.S + col * rowm
                win.s = win.s + col
            win.prev_share, win.share = win.share, None
        self._bars = g + 1

    def _features(self) -> ArbScanRow:
        """lambda_max → share → velocity per window, and vel_div, for the bar just ingested."""
        lam: list[arb | None] = []
        shares: list[arb | None] = []
        vels: list[arb | None] = []
        nels: list[int] = []
        for win in self._wins:
            theta, m = self._window_lambda(win)
            nels.append(m)
            share = theta / m if theta is not None else None
            vel = share - win.prev_share if share is not None and win.prev_share is not None else None
            win.share = share
            lam.append(theta)
            shares.append(share)
            vels.append(vel)
        vd = vel_div(vels[0], vels[-1]) if vels[0] is not None and vels[-1] is not None else None
        return ArbScanRow(self.windows, lam, shares, vels, nels, vd)

    def _window_lambda(self, win: _ArbWindow) -> tuple[arb | None, int]:
        """(lambda_max, n_eligible) of one window; lambda_max None when n_eligible < 2."""
        n, w = self.n, win.w
        S = win.S.entries()
        s = win.s.entries()
        inv_w = arb(1) / w
        eligible: list[int] = []
        scale: list[arb] = []
        for i in range(n):
            if win.run[i] < w:
                continue
            ssq = S[i * n + i] - s[i] * s[i] * inv_w
            if (ssq / (w - 1)).mid() > VAR_EPS:
                eligible.append(i)
                scale.append(1 / ssq.sqrt())
        m = len(eligible)
        if m < 2:
            return None, m
        t = [s[i] * inv_w for i in eligible]
        entries: list[list[arb]] = [[arb(0)] * m for _ in range(m)]
        for a, i in enumerate(eligible):
            entries[a][a] = arb(1)
            for b in range(a + 1, m):
                j = eligible[b]
                c = (S[i * n + j] - s[i] * t[b]) * (scale[a] * scale[b])
                entries[a][b] = c
                entries[b][a] = c
        C = arb_mat(entries)
        Cf = np.array([[float(x) for x in r] for r in entries])
        _, vecs = np.linalg.eigh(Cf)
        return rayleigh_refine(C, vecs[:, -1], self.prec), m


def arb_scan_features(prices: np.ndarray, windows: Sequence[int] = DEFAULT_WINDOWS, *,
                      prec: int = PREC, progress: Callable[[int, int], None] | None = None) -> ArbScanArrays:
    """The 512-bit scan of every bar of `prices` (bars, assets), rounded to float64 at the end."""
    P = as_price_matrix(prices)
    T, n = P.shape
    scanner = ArbScanner(n, windows, prec)
    nw = len(scanner.windows)
    lam = np.full((T, nw), np.nan)
    share = np.full((T, nw), np.nan)
    vel = np.full((T, nw), np.nan)
    nel = np.zeros((T, nw), dtype=np.int64)
    vd = np.full(T, np.nan)
    t0 = time.perf_counter()
    for t in range(T):
        res = scanner.update(P[t])
        for k in range(nw):
            nel[t, k] = res.n_eligible[k]
            for arr, val in ((lam, res.lambda_max[k]), (share, res.share[k]), (vel, res.velocity[k])):
                if val is not None:
                    arr[t, k] = float(val)
        if res.vel_div is not None:
            vd[t] = float(res.vel_div)
        if progress is not None:
            progress(t + 1, T)
    spb = (time.perf_counter() - t0) / T if T else 0.0
    return ArbScanArrays(scanner.windows, lam, share, vel, nel, vd, spb)


class ArbVolGate:
    """vol_ok of docs/scan.md in 512-bit arithmetic, one price per call."""

    def __init__(self, window: int = 50, percentile: float = 60.0, calib_bars: int = 720,
                 prec: int = PREC) -> None:
        if int(window) < 2 or int(calib_bars) < 1 or not 0.0 <= float(percentile) <= 100.0:
            raise ValueError(f"invalid vol gate parameters: window={window}, percentile={percentile}, "
                             f"calib_bars={calib_bars}")
        self.window = int(window)
        self.calib_bars = int(calib_bars)
        self.prec = int(prec)
        vi = Fraction(self.calib_bars - 1) * Fraction(float(percentile)) / 100
        self._lo = math.floor(vi)
        self._gamma = vi - self._lo
        self._last = math.nan
        self._rets: list[arb] = []
        self._run = 0
        self._hist: list[arb] = []     # last K finite dvols (exact midpoints), oldest first
        self._sorted: list[arb] = []
        self.dvol: arb | None = None

    def _threshold(self) -> arb:
        v = self._sorted
        K = self.calib_bars
        if self._lo >= K - 1:
            return v[K - 1]
        g = arb(fmpq(self._gamma.numerator, self._gamma.denominator))
        return v[self._lo] + (v[self._lo + 1] - v[self._lo]) * g

    def update(self, price: float) -> bool:
        with _precision(self.prec):
            r = _arb_log_return(float(price), self._last)
            self._last = float(price)
            if r is None:
                self._run = 0
                self._rets.clear()
            else:
                self._run = min(self._run + 1, self.window)
                self._rets.append(r)
                if len(self._rets) > self.window:
                    self._rets.pop(0)
            dvol = None
            if self._run >= self.window:
                mean = sum(self._rets, arb(0)) / self.window
                ss = sum(((x - mean) ** 2 for x in self._rets), arb(0))
                dvol = (ss / (self.window - 1)).sqrt().mid()
            self.dvol = dvol
            ok = False
            if dvol is not None and len(self._hist) >= self.calib_bars:
                ok = bool(dvol >= self._threshold().mid())
            if dvol is not None:
                if len(self._hist) >= self.calib_bars:
                    old = self._hist.pop(0)
                    del self._sorted[bisect.bisect_left(self._sorted, old)]
                self._hist.append(dvol)
                bisect.insort(self._sorted, dvol)
            return ok


def arb_vol_regime_ok(prices: np.ndarray, window: int = 50, percentile: float = 60.0,
                      calib_bars: int = 720, prec: int = PREC) -> tuple[np.ndarray, np.ndarray]:
    """(dvol rounded to float64, vol_ok) for every bar, computed in 512-bit arithmetic."""
    px = np.asarray(prices, dtype=np.float64)
    if px.ndim != 1:
        raise ValueError(f"prices: expected a 1-D series, got shape {px.shape}")
    gate = ArbVolGate(window, percentile, calib_bars, prec)
    dvol = np.full(px.shape[0], np.nan)
    ok = np.zeros(px.shape[0], dtype=np.bool_)
    for t, p in enumerate(px):
        ok[t] = gate.update(float(p))
        if gate.dvol is not None:
            dvol[t] = float(gate.dvol)
    return dvol, ok
