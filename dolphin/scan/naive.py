"""The reference scan: np.corrcoef + np.linalg.eigh for every bar and window.

Slow on purpose — every bar is computed from scratch from the definitions in
docs/scan.md, with no running sums and no warm start, so it shares no shortcut (and no
bug) with the fast kernels. Tests compare the fast path against it and the benchmark
uses it as the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dolphin.scan.definitions import DEFAULT_WINDOWS, VAR_EPS, as_price_matrix, check_windows
from dolphin.scan.features import ScanFeatureArrays


def log_returns(prices: np.ndarray) -> np.ndarray:
    """r[t, i] = ln(P[t, i] / P[t−1, i]); NaN where undefined (row 0, or an invalid price)."""
    P = as_price_matrix(prices)
    valid = np.isfinite(P) & (P > 0)
    R = np.full(P.shape, np.nan)
    if P.shape[0] > 1:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            r = np.log(P[1:] / P[:-1])
        ok = valid[1:] & valid[:-1] & np.isfinite(r)
        R[1:] = np.where(ok, r, np.nan)
    return R


def eligible(R: np.ndarray, t: int, w: int) -> np.ndarray:
    """Assets whose w returns ending at bar t are all defined and vary (sample var > VAR_EPS)."""
    n = R.shape[1]
    if t - w + 1 < 0:
        return np.zeros(n, dtype=bool)
    X = R[t - w + 1:t + 1]
    elig = np.all(np.isfinite(X), axis=0)
    if elig.any():
        var = np.var(X[:, elig], axis=0, ddof=1)
        elig[np.flatnonzero(elig)] = var > VAR_EPS
    return elig


def window_eigenvalues(R: np.ndarray, t: int, w: int) -> np.ndarray:
    """All eigenvalues (ascending) of window w's correlation matrix at bar t; empty if n < 2."""
    elig = eligible(R, t, w)
    if elig.sum() < 2:
        return np.empty(0)
    return np.linalg.eigvalsh(np.corrcoef(R[t - w + 1:t + 1][:, elig], rowvar=False))


def window_top(R: np.ndarray, t: int, w: int) -> tuple[float, np.ndarray | None, np.ndarray]:
    """(lambda_max, top unit vector over eligible assets, eligibility mask) of window w at bar t.

    lambda_max is clipped to [1, m] (its mathematical range) like the fast path does.
    The vector is None (and lambda_max NaN) when fewer than two assets are eligible.
    The vector's sign makes its sum ≥ 0.
    """
    elig = eligible(R, t, w)
    m = int(elig.sum())
    if m < 2:
        return np.nan, None, elig
    C = np.corrcoef(R[t - w + 1:t + 1][:, elig], rowvar=False)
    vals, vecs = np.linalg.eigh(C)
    u = vecs[:, -1]
    if u.sum() < 0:
        u = -u
    return float(min(max(vals[-1], 1.0), m)), u, elig


def instability(u_now: np.ndarray, el_now: np.ndarray, u_prev: np.ndarray, el_prev: np.ndarray) -> float:
    """1 − |a·b| for the two unit vectors restricted to common assets and renormalised."""
    common = el_now & el_prev
    if common.sum() < 2:
        return np.nan
    a = u_now[common[el_now]]
    b = u_prev[common[el_prev]]
    na = np.linalg.norm(a)
    nb = np.linalg.norm(b)
    if na == 0 or nb == 0:
        return np.nan
    return float(min(1.0, max(0.0, 1.0 - abs(np.dot(a / na, b / nb)))))


def naive_scan(prices: np.ndarray, windows: Sequence[int] = DEFAULT_WINDOWS) -> ScanFeatureArrays:
    """The scan of every bar of `prices`, computed from the definitions."""
    win = tuple(int(w) for w in check_windows(windows))
    R = log_returns(prices)
    T = R.shape[0]
    nw = len(win)
    out = np.full((T, nw, 5), np.nan)
    nel = np.zeros((T, nw), dtype=np.int64)
    for k, w in enumerate(win):
        prev_u: np.ndarray | None = None
        prev_el = np.zeros(R.shape[1], dtype=bool)
        prev_share = np.nan
        prev_vel = np.nan
        for t in range(T):
            lam, u, el = window_top(R, t, w)
            nel[t, k] = int(el.sum())
            if u is None:
                prev_u, prev_share, prev_vel = None, np.nan, np.nan
                continue
            share = lam / nel[t, k]
            vel = share - prev_share
            inst = instability(u, el, prev_u, prev_el) if prev_u is not None else np.nan
            out[t, k] = (lam, share, vel, vel - prev_vel, inst)
            prev_u, prev_el, prev_share, prev_vel = u, el, share, vel
    return ScanFeatureArrays.from_kernel(win, out, nel)


def naive_bar(R: np.ndarray, t: int, windows: Sequence[int] = DEFAULT_WINDOWS) -> list[float]:
    """lambda_max of every window at bar t (the per-bar cost of the naive live scanner)."""
    return [window_top(R, t, int(w))[0] for w in windows]
