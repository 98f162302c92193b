"""Top eigenpair of a window's correlation matrix, computed from the running sums.

The correlation matrix is never formed. With S = Σ (r − c)(r − c)ᵀ and s = Σ (r − c)
over the window (c: a per-asset shift, see kernels.py) and D = diag(1/√(S_ii − s_i²/w))
(0 for an excluded asset), the correlation operator is

    C x = D (S (D x) − s (sᵀ D x) / w)

so one product costs one pass over S and nothing has to be written per bar. Excluded
assets have d_i = 0, so their rows and columns are exactly zero and every Krylov vector
stays inside the eligible subspace: the result equals the eigenpair of the compact m×m
matrix without any gather.

The solver is Lanczos warm-started from the previous bar's top vector. A bar moves the
window by one return, so that start is already close and a handful of steps reach
‖Cy − θy‖ ≤ tol·θ even when the eigengap is small (plain power iteration would crawl
there). The products C·v_k are kept beside the basis, so the true residual of the result
costs no further product. If the cycles run out, a dense Jacobi solve of the
compact matrix takes over: numba has no LAPACK without SciPy, which is not a dependency,
and Jacobi is the simplest dense method that cannot fail to converge.

All functions here are plain loops without fastmath: the batch builder and the
incremental updater must produce bit-identical numbers from the same calls. Numba
caches each function keyed on its own file, so after editing this module clear
dolphin/scan/__pycache__/*.nbi|*.nbc (kernels.py would otherwise keep the old code).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Lanczos steps per cycle (the Krylov basis is restarted from the Ritz vector after this).
KMAX = 48
#: Restart cycles before the dense fallback.
MAX_CYCLES = 6
#: Second Gram–Schmidt pass when a pass removes more than this fraction of the norm ("twice is enough").
_REORTH_KAPPA = 0.7071067811865476
#: Cold-start weights: 1 + 0.5·frac(i·φ) — not orthogonal to any structured top vector.
_GOLDEN = 0.6180339887498949
#: Share of the cold-start vector mixed into every warm start (see nudge_start).
NUDGE = 1e-2
#: A converged cycle whose residual estimate is below SLACK·tol·θ probably needed one step
#: less (a step cuts the residual ~15–25× on the benchmark markets): check one step earlier next bar.
SLACK = 0.05


@njit(cache=True, error_model="numpy")
def dot(a: np.ndarray, b: np.ndarray, n: int) -> float:
    """Dot product with four fixed accumulators: fast, and the same bits in every caller."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    i = 0
    while i + 4 <= n:
        s0 += a[i] * b[i]
        s1 += a[i + 1] * b[i + 1]
        s2 += a[i + 2] * b[i + 2]
        s3 += a[i + 3] * b[i + 3]
        i += 4
    while i < n:
        s0 += a[i] * b[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, error_model="numpy")
def corr_matvec(S: np.ndarray, s: np.ndarray, d: np.ndarray, w: float,
                x: np.ndarray, z: np.ndarray, y: np.ndarray) -> None:
    """y = C x for the correlation operator of the module docstring (z is scratch)."""
    n = x.shape[0]
    for j in range(n):
        z[j] = d[j] * x[j]
        y[j] = 0.0
    c = dot(s, z, n) / w
    # Four rows of S (= four columns, S is symmetric) per term added to y, in a fixed
    # summation order, so every caller gets the same bits. Two such terms per pass over y
    # (y[i] = (y[i] + t0) + t1 is the same two additions as two passes): an eighth of the
    # loads and stores of y. No skipping of zero entries: a branch stops the vectorising.
    j = 0
    while j + 8 <= n:
        z0 = z[j]
        z1 = z[j + 1]
        z2 = z[j + 2]
        z3 = z[j + 3]
        z4 = z[j + 4]
        z5 = z[j + 5]
        z6 = z[j + 6]
        z7 = z[j + 7]
        r0 = S[j]
        r1 = S[j + 1]
        r2 = S[j + 2]
        r3 = S[j + 3]
        r4 = S[j + 4]
        r5 = S[j + 5]
        r6 = S[j + 6]
        r7 = S[j + 7]
        for i in range(n):
            y[i] = ((y[i] + ((z0 * r0[i] + z1 * r1[i]) + (z2 * r2[i] + z3 * r3[i])))
                    + ((z4 * r4[i] + z5 * r5[i]) + (z6 * r6[i] + z7 * r7[i])))
        j += 8
    while j + 4 <= n:
        z0 = z[j]
        z1 = z[j + 1]
        z2 = z[j + 2]
        z3 = z[j + 3]
        r0 = S[j]
        r1 = S[j + 1]
        r2 = S[j + 2]
        r3 = S[j + 3]
        for i in range(n):
            y[i] += (z0 * r0[i] + z1 * r1[i]) + (z2 * r2[i] + z3 * r3[i])
        j += 4
    while j < n:
        zj = z[j]
        rj = S[j]
        for i in range(n):
            y[i] += zj * rj[i]
        j += 1
    for i in range(n):
        y[i] = d[i] * (y[i] - s[i] * c)


@njit(cache=True, error_model="numpy")
def _sturm_below(alpha: np.ndarray, beta: np.ndarray, k: int, x: float) -> int:
    """Number of eigenvalues of the k×k tridiagonal (alpha, beta) below x (Sturm count)."""
    count = 0
    p = alpha[0] - x
    if p == 0.0:
        p = -1e-300
    if p < 0.0:
        count += 1
    for i in range(1, k):
        p = alpha[i] - x - beta[i - 1] * beta[i - 1] / p
        if p == 0.0:
            p = -1e-300
        if p < 0.0:
            count += 1
    return count


@njit(cache=True, error_model="numpy")
def _newton_shift(alpha: np.ndarray, beta: np.ndarray, k: int, x: float) -> float:
    """Newton on det(xI − T) from a point above the top eigenvalue; returns a point above it.

    For a polynomial with real roots, Newton started above the largest root decreases
    monotonically towards it, so every iterate is an upper bound — checked on the way,
    since x is above the whole spectrum exactly when every pivot of xI − T is positive.
    Returns NaN if the start was not above. Accuracy is not the goal (the pivot sums
    cancel near the root): the point only has to be a tight shift for inverse iteration.
    """
    good = np.nan
    for _ in range(60):
        p = x - alpha[0]
        if p <= 0.0:
            break
        inv = 1.0 / p
        q = 1.0
        ratio = inv
        ok = True
        for i in range(1, k):
            b2 = beta[i - 1] * beta[i - 1]
            q = 1.0 + b2 * q * inv * inv
            p = x - alpha[i] - b2 * inv
            if p <= 0.0:
                ok = False
                break
            inv = 1.0 / p
            ratio += q * inv
        if not ok:
            break
        good = x
        step = 1.0 / ratio
        if not (step > 1e-12 * abs(x)):
            break
        x = x - step
    return good


@njit(cache=True, error_model="numpy")
def tridiag_top(alpha: np.ndarray, beta: np.ndarray, k: int, theta_prev: float, est_prev: float,
                svec: np.ndarray, piv: np.ndarray, rhs: np.ndarray) -> float:
    """Largest eigenvalue of the Lanczos tridiagonal T_k and its unit eigenvector (into svec).

    A shift σ just above the top eigenvalue comes from Newton on the characteristic
    polynomial, started at theta_prev + 2·est_prev (the previous Ritz pair padded with a
    zero has residual est_prev in T_k, so the new top is usually just above it) when the
    pivots confirm that point is above the spectrum, else from the Weyl bound
    max(theta_prev, α_k) + β_{k−1}, else (never seen) from bisection on the Sturm count.
    σI − T is then positive definite, so pivot-free inverse iteration on it is stable and
    two solves give the vector to working precision. Returns its Rayleigh quotient.
    """
    if k == 1:
        svec[0] = 1.0
        return alpha[0]
    scale = max(abs(theta_prev), abs(alpha[k - 1]), abs(beta[k - 2]), 1e-300)
    sigma = np.nan
    if est_prev > 0.0:
        sigma = _newton_shift(alpha, beta, k, theta_prev + 2.0 * est_prev + 1e-12 * scale)
    if not np.isfinite(sigma) and est_prev > 0.0:
        sigma = _newton_shift(alpha, beta, k, max(theta_prev, alpha[k - 1]) + abs(beta[k - 2]) + 1e-12 * scale)
    if not np.isfinite(sigma):
        # Gershgorin: a certified upper bound (no previous Ritz pair when steps were skipped)
        hi = -np.inf
        for i in range(k):
            r = alpha[i]
            if i > 0:
                r += abs(beta[i - 1])
            if i < k - 1:
                r += abs(beta[i])
            hi = max(hi, r)
        sigma = _newton_shift(alpha, beta, k, hi + 1e-12 * max(abs(hi), 1e-300))
    if not np.isfinite(sigma):
        lo = np.inf
        hi = -np.inf
        for i in range(k):
            r = 0.0
            if i > 0:
                r += abs(beta[i - 1])
            if i < k - 1:
                r += abs(beta[i])
            lo = min(lo, alpha[i] - r)
            hi = max(hi, alpha[i] + r)
        scale = max(abs(lo), abs(hi), 1e-300)
        hi += 4.0 * 2.220446049250313e-16 * scale + 1e-300
        for _ in range(200):
            if hi - lo <= 1e-12 * scale:
                break
            mid = 0.5 * (lo + hi)
            if _sturm_below(alpha, beta, k, mid) == k:
                hi = mid
            else:
                lo = mid
        sigma = hi
    for i in range(k):
        rhs[i] = 1.0
    for _ in range(2):
        # LDLᵀ of A = σI − T (positive definite), then forward/back substitution.
        p = sigma - alpha[0]
        if p <= 0.0:
            p = 1e-300
        piv[0] = p
        svec[0] = rhs[0]
        for i in range(1, k):
            l = -beta[i - 1] / piv[i - 1]
            p = sigma - alpha[i] + l * beta[i - 1]
            if p <= 0.0:
                p = 1e-300
            piv[i] = p
            svec[i] = rhs[i] - l * svec[i - 1]
        svec[k - 1] = svec[k - 1] / piv[k - 1]
        for i in range(k - 2, -1, -1):
            svec[i] = (svec[i] + beta[i] * svec[i + 1]) / piv[i]
        nrm = np.sqrt(dot(svec, svec, k))
        if not (nrm > 0.0) or not np.isfinite(nrm):
            for i in range(k):
                svec[i] = rhs[i]
            nrm = np.sqrt(dot(svec, svec, k))
        for i in range(k):
            svec[i] /= nrm
            rhs[i] = svec[i]
    theta = 0.0
    for i in range(k):
        ti = alpha[i] * svec[i]
        if i > 0:
            ti += beta[i - 1] * svec[i - 1]
        if i < k - 1:
            ti += beta[i] * svec[i + 1]
        theta += svec[i] * ti
    return theta


@njit(cache=True, error_model="numpy")
def cold_weights(out: np.ndarray) -> None:
    """The cold-start weights 1 + 0.5·frac(i·φ) of every asset (callers compute them once)."""
    for i in range(out.shape[0]):
        f = i * _GOLDEN
        out[i] = 1.0 + 0.5 * (f - np.floor(f))


@njit(cache=True, error_model="numpy")
def cold_start(d: np.ndarray, q: np.ndarray, wts: np.ndarray) -> None:
    """Deterministic start vector over the eligible assets (d_i > 0); wts from cold_weights."""
    for i in range(q.shape[0]):
        q[i] = wts[i] if d[i] != 0.0 else 0.0


@njit(cache=True, error_model="numpy")
def nudge_start(d: np.ndarray, q: np.ndarray, m: int, wts: np.ndarray) -> None:
    """Add a NUDGE share of the cold-start vector to a warm start.

    Lanczos only sees eigenvectors the start vector touches. A warm start can be exactly
    orthogonal to the new top vector — with two assets the eigenvectors are always
    (1, 1) and (1, −1), so the old top vector is exactly the new second one whenever the
    correlation changes sign — and the solver would stop, converged, on the wrong
    eigenvalue. With the nudge that needs the top two eigenvalues to nearly coincide
    (relative gap below ~tol/NUDGE, divided by the nudge's overlap with the top vector),
    and the error is then below that gap. With tol = 1e-8 (kernel v2) that gap is
    ~1e-6. Cost: +1–4 % Lanczos steps.
    """
    scale = NUDGE / np.sqrt(max(m, 1))
    for i in range(q.shape[0]):
        if d[i] != 0.0:
            q[i] += scale * wts[i]


@njit(cache=True, error_model="numpy")
def jacobi_top(A: np.ndarray, vec: np.ndarray) -> float:
    """Largest eigenvalue and unit eigenvector of a small dense symmetric matrix (cyclic Jacobi).

    A is destroyed. Used only when Lanczos fails, and as a reference in tests.
    """
    m = A.shape[0]
    Q = np.zeros((m, m))
    for i in range(m):
        Q[i, i] = 1.0
    for _sweep in range(100):
        off = 0.0
        diag = 0.0
        for i in range(m):
            diag += A[i, i] * A[i, i]
            for j in range(i + 1, m):
                off += A[i, j] * A[i, j]
        if off <= 1e-32 * diag or off == 0.0:
            break
        for p in range(m - 1):
            for q in range(p + 1, m):
                apq = A[p, q]
                if apq == 0.0:
                    continue
                tau = (A[q, q] - A[p, p]) / (2.0 * apq)
                if tau >= 0.0:
                    t = 1.0 / (tau + np.sqrt(1.0 + tau * tau))
                else:
                    t = -1.0 / (-tau + np.sqrt(1.0 + tau * tau))
                c = 1.0 / np.sqrt(1.0 + t * t)
                sn = t * c
                for r in range(m):
                    arp = A[r, p]
                    arq = A[r, q]
                    A[r, p] = c * arp - sn * arq
                    A[r, q] = sn * arp + c * arq
                for r in range(m):
                    apr = A[p, r]
                    aqr = A[q, r]
                    A[p, r] = c * apr - sn * aqr
                    A[q, r] = sn * apr + c * aqr
                for r in range(m):
                    qrp = Q[r, p]
                    qrq = Q[r, q]
                    Q[r, p] = c * qrp - sn * qrq
                    Q[r, q] = sn * qrp + c * qrq
    best = 0
    for i in range(1, m):
        if A[i, i] > A[best, best]:
            best = i
    nrm = 0.0
    for r in range(m):
        vec[r] = Q[r, best]
        nrm += vec[r] * vec[r]
    nrm = np.sqrt(nrm)
    for r in range(m):
        vec[r] /= nrm
    return A[best, best]


@njit(cache=True, error_model="numpy")
def _dense_fallback(S: np.ndarray, s: np.ndarray, d: np.ndarray, w: float, y: np.ndarray) -> float:
    """Form the compact correlation matrix of the eligible assets and solve it densely."""
    n = d.shape[0]
    m = 0
    for i in range(n):
        if d[i] != 0.0:
            m += 1
    idx = np.empty(m, dtype=np.int64)
    k = 0
    for i in range(n):
        if d[i] != 0.0:
            idx[k] = i
            k += 1
    A = np.empty((m, m))
    for a in range(m):
        i = idx[a]
        for b in range(m):
            j = idx[b]
            A[a, b] = (S[i, j] - s[i] * s[j] / w) * (d[i] * d[j])
        A[a, a] = 1.0
    v = np.empty(m)
    theta = jacobi_top(A, v)
    for i in range(n):
        y[i] = 0.0
    for a in range(m):
        y[idx[a]] = v[a]
    return theta


@njit(cache=True, error_model="numpy")
def _orthogonalise(V: np.ndarray, k: int, wv: np.ndarray, coef: np.ndarray, n: int) -> float:
    """wv −= Σ_{kk≤k} (V[kk]·wv) V[kk] (classical Gram–Schmidt); returns the coefficient on V[k]."""
    for kk in range(k + 1):
        coef[kk] = dot(V[kk], wv, n)
    for kk in range(k + 1):
        c = coef[kk]
        vk = V[kk]
        for i in range(n):
            wv[i] -= c * vk[i]
    return coef[k]


@njit(cache=True, error_model="numpy")
def top_eigpair(S: np.ndarray, s: np.ndarray, d: np.ndarray, w: float, m: int,
                q0: np.ndarray, V: np.ndarray, work: np.ndarray, tri: np.ndarray,
                y: np.ndarray, kmax: int, max_cycles: int, tol: float, kcheck: int,
                stats: np.ndarray) -> float:
    """Top eigenvalue of the correlation operator (returned) and its unit vector (into y).

    q0: start vector (zero outside the eligible set, any norm > 0); m: number of eligible
    assets (the Krylov space cannot grow beyond it). V (2·(kmax+1) rows: the Lanczos basis
    in the first half, the products C·v_k in the second), work (≥ 3 rows) and tri (≥ 6 rows
    of ≥ kmax+1) are caller-owned scratch, so nothing is allocated on the normal path.

    Convergence: stop when the Lanczos residual estimate β_k·|s_k| is ≤ tol·θ, then
    confirm with the true residual ‖Cy − θy‖ ≤ 2·tol·θ, where Cy = Σ s_k (C v_k) comes
    from the stored products (no extra product) and θ = yᵀCy is the Rayleigh quotient.
    A failed confirmation restarts Lanczos from y. The tridiagonal is only solved from
    step `kcheck` on: the caller passes the previous bar's count (stable from bar to bar),
    one less when that bar ended with slack (estimate ≤ SLACK·tol·θ: the step before
    would probably have done), so the usual bar solves it once — a solve costs about half
    a product at 50 assets.

    stats[0] += Lanczos steps, stats[1] += restarts, stats[2] += dense fallbacks,
    stats[3] = steps of the last (converged) cycle, stats[4] = 1 if it ended with slack
    (the caller's next `kcheck` is stats[3] − stats[4]).
    """
    n = d.shape[0]
    wv = work[0]
    zs = work[1]
    cy = work[2]
    alpha = tri[0]
    beta = tri[1]
    svec = tri[2]
    piv = tri[3]
    rhs = tri[4]
    coef = tri[5]
    nb = V.shape[0] // 2
    kcap = min(kmax, m, nb - 1)
    if kcap < 1:
        kcap = 1
    nq = np.sqrt(dot(q0, q0, n))
    v0 = V[0]
    for i in range(n):
        v0[i] = q0[i] / nq
    for cycle in range(max_cycles):
        if cycle > 0:
            stats[1] += 1
            kcheck = 1
        k = 0
        theta = 0.0
        est = 0.0
        while True:
            wk = V[nb + k]
            corr_matvec(S, s, d, w, V[k], zs, wk)
            # Three-term step (modified Gram–Schmidt against v_{k-1}, v_k), then
            # orthogonality against v_0 only. Lanczos loses orthogonality towards the Ritz
            # vectors that converge (Paige), at a level eps·‖C‖/residual ≤ ~1e-8 here since
            # the loop stops at residual tol·θ; the one converging is the top vector, which
            # is v_0 plus a few per cent of the rest on a warm start. A restart cycle (the
            # confirmation failed, or a cold start ran long) reorthogonalises against the
            # whole basis, twice when a pass removes more than 29 % of the norm.
            vk = V[k]
            if k > 0:
                bp = beta[k - 1]
                vp = V[k - 1]
                for i in range(n):
                    wv[i] = wk[i] - bp * vp[i]
            else:
                for i in range(n):
                    wv[i] = wk[i]
            a_k = dot(vk, wv, n)
            for i in range(n):
                wv[i] -= a_k * vk[i]
            if cycle > 0:
                n0 = np.sqrt(dot(wv, wv, n))
                a_k += _orthogonalise(V, k, wv, coef, n)
                n1 = np.sqrt(dot(wv, wv, n))
                if n1 < _REORTH_KAPPA * n0:
                    a_k += _orthogonalise(V, k, wv, coef, n)
            elif k > 0:
                c0 = dot(v0, wv, n)
                for i in range(n):
                    wv[i] -= c0 * v0[i]
            n1 = np.sqrt(dot(wv, wv, n))
            alpha[k] = a_k
            beta[k] = n1
            stats[0] += 1
            last = k + 1 >= kcap or not (n1 > 1e-300)
            if k + 1 >= kcheck or last:
                theta = tridiag_top(alpha, beta, k + 1, theta, est, svec, piv, rhs)
                est = n1 * abs(svec[k])
                if est <= tol * abs(theta) or last:
                    break
            inv = 1.0 / n1
            vn = V[k + 1]
            for i in range(n):
                vn[i] = wv[i] * inv
            k += 1
        for i in range(n):
            y[i] = 0.0
            cy[i] = 0.0
        for kk in range(k + 1):
            c = svec[kk]
            vk = V[kk]
            wk = V[nb + kk]
            for i in range(n):
                y[i] += c * vk[i]
                cy[i] += c * wk[i]
        ny = np.sqrt(dot(y, y, n))
        for i in range(n):
            y[i] /= ny
            cy[i] /= ny
        theta = dot(y, cy, n)
        res = 0.0
        for i in range(n):
            r = cy[i] - theta * y[i]
            res += r * r
        res = np.sqrt(res)
        if res <= 2.0 * tol * abs(theta) and np.isfinite(theta):
            stats[3] = k + 1
            stats[4] = 1 if est <= SLACK * tol * abs(theta) else 0
            return theta
        for i in range(n):
            v0[i] = y[i]
    stats[2] += 1
    stats[3] = 0
    stats[4] = 0
    return _dense_fallback(S, s, d, w, y)
