"""Numba kernels of the eigen scan: one return row in, one feature row per window out.

Both entry points — `scan_one` (the live updater, one bar) and `prepare_block` +
`run_windows_serial|parallel` + `finish_block` (history, many bars, windows in
parallel) — drive the same two functions, `ingest_row` and `window_step`, over the same
state arrays. That is what makes the batch builder and the incremental updater
bit-identical: they execute the same arithmetic in the same order (no fastmath anywhere,
so LLVM may not reorder it either).

Numba caveat: the on-disk cache of a function is keyed on its own source file only. After
editing eigen.py, delete dolphin/scan/__pycache__/*.nbi and *.nbc, or the kernels here
keep running the old solver.

Returns live in a row buffer addressed as ``buf[(g - base) % M]`` for global return row g
(row g belongs to bar g; row 0 is undefined). The live updater keeps a ring of
``max(windows) + 1`` rows (base 0, M = ring length); the batch builder lays the ring and
the new rows out linearly (base = first global row in the buffer, M = buffer length).

Per window the state is the running sums of *shifted* returns, s = Σ(r − c) and
S = Σ (r − c)(r − c)ᵀ over the window (invalid returns stored as 0), where c_i is asset
i's window mean when its row was last re-synchronised; a per-asset count of consecutive
valid returns (capped at w); the previous top vector and eligibility mask; and the
previous share and velocity. The covariance S_ij − s_i s_j / w does not depend on c, but
without the shift it would be a difference of two large numbers whenever an asset's
mean return is large against its spread (a steady drift), and the correlation would be
rounding noise.

Sums are updated by a rank-2 step per bar (add the newest row, remove the one leaving)
and re-synchronised from the window data one row at a time — n/(4w) rows per bar on
average, so every row (and its shift) is recomputed once per 4w bars — to stop floating
drift. The first full window re-synchronises every row at once.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from dolphin.scan.eigen import KMAX, MAX_CYCLES, cold_start, cold_weights, nudge_start, top_eigpair

# fst columns (float state per window)
F_PREV_SHARE = 0
F_PREV_VEL = 1
N_FST = 2
# ist columns (int state per window); 3..5 are solver statistics, 6..7 the last bar's Lanczos steps
# and whether it ended with slack (they set where the next bar starts its convergence checks)
I_HAS_U = 0
I_SYNC_PTR = 1
I_SYNC_CREDIT = 2
I_STEPS = 3
I_RESTARTS = 4
I_FALLBACKS = 5
I_LAST_STEPS = 6
I_SLACK = 7
N_IST = 8
# work rows per window: 0..2 solver scratch, 3 start vector, 4 new top vector, 5 resync accumulator,
# 6..7 shifted newest / leaving return rows, 8 the cold-start weights (filled on first use)
N_WORK = 9
N_TRI = 6
# out columns
O_LAMBDA = 0
O_SHARE = 1
O_VEL = 2
O_ACC = 3
O_INST = 4
N_OUT = 5

_VAR_EPS = 1e-20
_VAR_RECHECK = 1e-12
# Recompute an asset's row exactly when the shifted sums have lost more than ~6 digits.
_CANCEL_RECHECK = 1e-6
# Every row is re-synchronised once per _SYNC_PERIOD·w bars (n/(_SYNC_PERIOD·w) rows per bar).
_SYNC_PERIOD = 4
# Rounding residue of the add/remove updates is at most ~2·_SYNC_PERIOD·w·eps·peak² between
# re-syncs (peak = largest |r − c| that went through them); re-sync a row before that
# residue exceeds _DRIFT_TOL of the asset's current Σ(r − mean)². Triggers after a ~23σ move.
_DRIFT_GROWTH = 2.0 * 2.220446049250313e-16
_DRIFT_TOL = 1e-12
_RES_TOL = 1e-8


@njit(cache=True, error_model="numpy")
def ingest_row(prices_row: np.ndarray, last_price: np.ndarray, r_out: np.ndarray, v_out: np.ndarray) -> None:
    """Log returns of one bar against the previous bar's prices; invalid → 0 with flag 0."""
    n = prices_row.shape[0]
    for i in range(n):
        p = prices_row[i]
        pp = last_price[i]
        r = 0.0
        ok = np.isfinite(p) and p > 0.0 and np.isfinite(pp) and pp > 0.0
        if ok:
            r = np.log(p / pp)
            if not np.isfinite(r):
                ok = False
                r = 0.0
        r_out[i] = r
        v_out[i] = 1 if ok else 0
        last_price[i] = p


@njit(cache=True, error_model="numpy")
def _resync_row(i: int, w: int, g: int, buf: np.ndarray, base: int, M: int,
                S: np.ndarray, s: np.ndarray, c: np.ndarray, pk: np.ndarray, acc: np.ndarray) -> None:
    """Re-centre asset i on its window mean and recompute row/column i of S and s_i exactly."""
    n = buf.shape[1]
    ci = 0.0
    for t in range(g - w + 1, g + 1):
        ci += buf[(t - base) % M, i]
    ci /= w
    c[i] = ci
    for j in range(n):
        acc[j] = 0.0
    si = 0.0
    peak = 0.0
    for t in range(g - w + 1, g + 1):
        row = buf[(t - base) % M]
        a = row[i] - ci
        si += a
        if abs(a) > peak:
            peak = abs(a)
        for j in range(n):
            acc[j] += a * (row[j] - c[j])
    for j in range(n):
        S[i, j] = acc[j]
        S[j, i] = acc[j]
    s[i] = si
    pk[i] = peak


@njit(cache=True, error_model="numpy")
def _window_ss(i: int, w: int, g: int, buf: np.ndarray, base: int, M: int) -> float:
    """Two-pass Σ(r − mean)² of asset i over the window: exact where the sums would cancel."""
    mean = 0.0
    for t in range(g - w + 1, g + 1):
        mean += buf[(t - base) % M, i]
    mean /= w
    ss = 0.0
    for t in range(g - w + 1, g + 1):
        dv = buf[(t - base) % M, i] - mean
        ss += dv * dv
    return ss


@njit(cache=True, error_model="numpy")
def window_step(wi: int, w: int, g: int, buf: np.ndarray, vbuf: np.ndarray, base: int, M: int,
                run: np.ndarray, s_all: np.ndarray, S_all: np.ndarray, ctr_all: np.ndarray,
                d_all: np.ndarray, u_all: np.ndarray, elig_all: np.ndarray, fst: np.ndarray,
                ist: np.ndarray, V_all: np.ndarray, work_all: np.ndarray, tri_all: np.ndarray,
                out: np.ndarray, nel: np.ndarray, orow: int) -> None:
    """Advance window `wi` (length w) to return row g and write its features to out[orow, wi]."""
    n = buf.shape[1]
    S = S_all[wi]
    s = s_all[wi]
    c = ctr_all[wi, 0]
    pk = ctr_all[wi, 1]
    d = d_all[wi]
    u = u_all[wi]
    elig = elig_all[wi]
    runw = run[wi]
    work = work_all[wi]
    rn = buf[(g - base) % M]
    vn = vbuf[(g - base) % M]

    # 1. consecutive-valid counters: eligibility needs all w returns in the window defined
    for i in range(n):
        if vn[i] != 0:
            if runw[i] < w:
                runw[i] += 1
        else:
            runw[i] = 0

    # 2. rank-2 update of the shifted sums (add the newest row, remove the leaving one)
    a = work[6]
    for i in range(n):
        a[i] = rn[i] - c[i]
        if abs(a[i]) > pk[i]:
            pk[i] = abs(a[i])
    if g >= w:
        ro = buf[(g - w - base) % M]
        b = work[7]
        for i in range(n):
            b[i] = ro[i] - c[i]
            if abs(b[i]) > pk[i]:
                pk[i] = abs(b[i])
        for i in range(n):
            ai = a[i]
            bi = b[i]
            s[i] += ai - bi
            Si = S[i]
            for j in range(n):
                Si[j] += ai * a[j] - bi * b[j]
    else:
        for i in range(n):
            ai = a[i]
            s[i] += ai
            Si = S[i]
            for j in range(n):
                Si[j] += ai * a[j]

    # 3. re-synchronisation: all rows at the first full window, then n/(P·w) rows per bar
    if g == w - 1:
        for i in range(n):
            _resync_row(i, w, g, buf, base, M, S, s, c, pk, work[5])
    elif g >= w:
        credit = ist[wi, I_SYNC_CREDIT] + n
        ptr = ist[wi, I_SYNC_PTR]
        while credit >= _SYNC_PERIOD * w:
            _resync_row(ptr, w, g, buf, base, M, S, s, c, pk, work[5])
            ptr += 1
            if ptr >= n:
                ptr = 0
            credit -= _SYNC_PERIOD * w
        ist[wi, I_SYNC_CREDIT] = credit
        ist[wi, I_SYNC_PTR] = ptr

    # 4. eligibility and the diagonal scaling d_i = 1/sqrt((w-1)·var_i) (0 = excluded)
    m = 0
    for i in range(n):
        di = 0.0
        if runw[i] >= w:
            ssq = S[i, i] - s[i] * s[i] / w
            if ssq < _VAR_RECHECK * (w - 1) or ssq < _CANCEL_RECHECK * S[i, i]:
                ssq = _window_ss(i, w, g, buf, base, M)
                if ssq / (w - 1) > _VAR_EPS:
                    _resync_row(i, w, g, buf, base, M, S, s, c, pk, work[5])
                else:
                    ssq = 0.0
            elif _DRIFT_GROWTH * _SYNC_PERIOD * w * pk[i] * pk[i] > _DRIFT_TOL * ssq:
                # a move far larger than today's spread passed through the sums since the
                # last re-sync: its rounding residue would show in the correlations
                _resync_row(i, w, g, buf, base, M, S, s, c, pk, work[5])
                ssq = S[i, i] - s[i] * s[i] / w
            if ssq > 0.0:
                di = 1.0 / np.sqrt(ssq)
        d[i] = di
        if di != 0.0:
            m += 1
    nel[orow, wi] = m

    if m < 2:
        for col in range(N_OUT):
            out[orow, wi, col] = np.nan
        fst[wi, F_PREV_SHARE] = np.nan
        fst[wi, F_PREV_VEL] = np.nan
        ist[wi, I_HAS_U] = 0
        for i in range(n):
            u[i] = 0.0
            elig[i] = 0
        return

    # 5. warm start from the previous top vector restricted to today's eligible assets
    q = work[3]
    nq = 0.0
    if ist[wi, I_HAS_U] != 0:
        for i in range(n):
            qi = u[i] if d[i] != 0.0 else 0.0
            q[i] = qi
            nq += qi * qi
    wts = work[8]
    if wts[0] == 0.0:          # the cold-start weights are ≥ 1: 0 = not computed yet for this state
        cold_weights(wts)
    if nq < 0.25:
        cold_start(d, q, wts)
    else:
        nudge_start(d, q, m, wts)

    y = work[4]
    theta = top_eigpair(S, s, d, float(w), m, q, V_all[wi], work, tri_all[wi], y,
                        KMAX, MAX_CYCLES, _RES_TOL, ist[wi, I_LAST_STEPS] - ist[wi, I_SLACK],
                        ist[wi, I_STEPS:I_SLACK + 1])
    tot = 0.0
    for i in range(n):
        tot += y[i]
    if tot < 0.0:
        for i in range(n):
            y[i] = -y[i]

    # 6. instability: rotation of the top vector over the assets eligible at both bars
    inst = np.nan
    if ist[wi, I_HAS_U] != 0:
        dp = 0.0
        na = 0.0
        nb = 0.0
        common = 0
        for i in range(n):
            if d[i] != 0.0 and elig[i] != 0:
                dp += y[i] * u[i]
                na += y[i] * y[i]
                nb += u[i] * u[i]
                common += 1
        if common >= 2 and na > 0.0 and nb > 0.0:
            inst = 1.0 - abs(dp) / (np.sqrt(na) * np.sqrt(nb))
            if inst < 0.0:
                inst = 0.0
            elif inst > 1.0:
                inst = 1.0

    # λ_max of an m×m correlation matrix lies in [1, m]; clip the rounding excursions
    if theta < 1.0:
        theta = 1.0
    elif theta > m:
        theta = float(m)
    share = theta / m
    vel = share - fst[wi, F_PREV_SHARE]
    acc = vel - fst[wi, F_PREV_VEL]
    out[orow, wi, O_LAMBDA] = theta
    out[orow, wi, O_SHARE] = share
    out[orow, wi, O_VEL] = vel
    out[orow, wi, O_ACC] = acc
    out[orow, wi, O_INST] = inst
    fst[wi, F_PREV_SHARE] = share
    fst[wi, F_PREV_VEL] = vel
    ist[wi, I_HAS_U] = 1
    for i in range(n):
        u[i] = y[i]
        elig[i] = 1 if d[i] != 0.0 else 0


@njit(cache=True, error_model="numpy")
def scan_one(prices_row: np.ndarray, windows: np.ndarray, last_price: np.ndarray, gst: np.ndarray,
             ring: np.ndarray, vring: np.ndarray, run: np.ndarray, s_all: np.ndarray,
             S_all: np.ndarray, ctr_all: np.ndarray, d_all: np.ndarray, u_all: np.ndarray,
             elig_all: np.ndarray, fst: np.ndarray, ist: np.ndarray, V_all: np.ndarray,
             work_all: np.ndarray, tri_all: np.ndarray, out: np.ndarray, nel: np.ndarray) -> None:
    """One live bar: ingest the prices into the ring, step every window into out[0]."""
    g = gst[0]
    L = ring.shape[0]
    slot = g % L
    ingest_row(prices_row, last_price, ring[slot], vring[slot])
    for wi in range(windows.shape[0]):
        window_step(wi, windows[wi], g, ring, vring, 0, L, run, s_all, S_all, ctr_all, d_all, u_all,
                    elig_all, fst, ist, V_all, work_all, tri_all, out, nel, 0)
    gst[0] = g + 1


@njit(cache=True, error_model="numpy")
def prepare_block(prices: np.ndarray, last_price: np.ndarray, gst: np.ndarray,
                  ring: np.ndarray, vring: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Lay the ring's history and the block's new return rows out linearly."""
    T, n = prices.shape
    L = ring.shape[0]
    g0 = gst[0]
    base = g0 - L
    buf = np.zeros((L + T, n))
    vbuf = np.zeros((L + T, n), dtype=np.uint8)
    for g in range(max(0, base), g0):
        buf[g - base, :] = ring[g % L]
        vbuf[g - base, :] = vring[g % L]
    for k in range(T):
        ingest_row(prices[k], last_price, buf[L + k], vbuf[L + k])
    return buf, vbuf, base


@njit(cache=True, error_model="numpy")
def finish_block(buf: np.ndarray, vbuf: np.ndarray, base: int, T: int, gst: np.ndarray,
                 ring: np.ndarray, vring: np.ndarray) -> None:
    """Copy the newest rows back into the ring so the live updater can continue."""
    L = ring.shape[0]
    g_end = gst[0] + T
    for g in range(max(0, g_end - L), g_end):
        ring[g % L, :] = buf[g - base]
        vring[g % L, :] = vbuf[g - base]
    gst[0] = g_end


@njit(cache=True, error_model="numpy")
def run_windows_serial(g0: int, T: int, windows: np.ndarray, buf: np.ndarray, vbuf: np.ndarray,
                       base: int, run: np.ndarray, s_all: np.ndarray, S_all: np.ndarray,
                       ctr_all: np.ndarray, d_all: np.ndarray, u_all: np.ndarray, elig_all: np.ndarray,
                       fst: np.ndarray, ist: np.ndarray, V_all: np.ndarray, work_all: np.ndarray,
                       tri_all: np.ndarray, out: np.ndarray, nel: np.ndarray) -> None:
    """All windows over a block of T rows, one window after the other."""
    M = buf.shape[0]
    for wi in range(windows.shape[0]):
        for k in range(T):
            window_step(wi, windows[wi], g0 + k, buf, vbuf, base, M, run, s_all, S_all, ctr_all, d_all,
                        u_all, elig_all, fst, ist, V_all, work_all, tri_all, out, nel, k)


@njit(cache=True, error_model="numpy", parallel=True)
def run_windows_parallel(g0: int, T: int, windows: np.ndarray, buf: np.ndarray, vbuf: np.ndarray,
                         base: int, run: np.ndarray, s_all: np.ndarray, S_all: np.ndarray,
                         ctr_all: np.ndarray, d_all: np.ndarray, u_all: np.ndarray, elig_all: np.ndarray,
                         fst: np.ndarray, ist: np.ndarray, V_all: np.ndarray, work_all: np.ndarray,
                         tri_all: np.ndarray, out: np.ndarray, nel: np.ndarray, lanes: int) -> None:
    """All windows over a block of T rows, windows spread over threads (they share nothing).

    One lane per thread (`lanes`: the caller's numba thread count, at most the windows); windows are dealt to lanes in snake order (0, 1, 1, 0 for four
    windows on two threads) so the short windows, which take the most Lanczos steps, are
    paired with the long ones.
    """
    M = buf.shape[0]
    nw = windows.shape[0]
    lanes = max(1, min(nw, lanes))
    for lane in prange(lanes):
        for wi in range(nw):
            turn = wi % (2 * lanes)
            owner = turn if turn < lanes else 2 * lanes - 1 - turn
            if owner != lane:
                continue
            for k in range(T):
                window_step(wi, windows[wi], g0 + k, buf, vbuf, base, M, run, s_all, S_all, ctr_all, d_all,
                            u_all, elig_all, fst, ist, V_all, work_all, tri_all, out, nel, k)
