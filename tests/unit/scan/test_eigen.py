"""The eigen solvers on their own: Lanczos, its dense fallback, the tridiagonal step."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.scan.eigen import KMAX, jacobi_top, top_eigpair, tridiag_top

pytestmark = pytest.mark.scan


def _window_sums(n: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = 1e-3 * (rng.standard_normal((w, 1)) @ rng.uniform(0.2, 1, (1, n)) + rng.standard_normal((w, n)))
    S = X.T @ X
    s = X.sum(axis=0)
    d = 1 / np.sqrt(np.diag(S) - s * s / w)
    return S, s, d, np.corrcoef(X, rowvar=False)


def _solve(S, s, d, w, q0, kmax=KMAX, cycles=6, kcheck=1):
    n = d.shape[0]
    V = np.zeros((2 * (KMAX + 1), n))
    work = np.zeros((6, n))
    tri = np.zeros((6, KMAX + 1))
    y = np.zeros(n)
    stats = np.zeros(5, dtype=np.int64)
    theta = top_eigpair(S, s, d, float(w), int((d != 0).sum()), q0, V, work, tri, y, kmax, cycles, 1e-10, kcheck,
                        stats)
    return theta, y, stats


@pytest.mark.parametrize("kcheck", [1, 4, 40])
def test_lanczos_matches_eigh(kcheck: int) -> None:
    """Same accuracy whether the tridiagonal is solved at every step or only from step kcheck on
    (past the step that converges: the solver runs on to kcheck, or to m when kcheck is larger)."""
    S, s, d, C = _window_sums(30, 120, 1)
    vals, vecs = np.linalg.eigh(C)
    theta, y, stats = _solve(S, s, d, 120, np.ones(30), kcheck=kcheck)
    assert theta == pytest.approx(vals[-1], rel=1e-12)
    assert abs(abs(y @ vecs[:, -1]) - 1) < 1e-10
    assert stats[2] == 0 and 0 < stats[0] <= 30
    assert stats[3] == stats[0] and stats[3] >= min(kcheck, 30)


def test_excluded_assets_stay_out_of_the_subspace() -> None:
    S, s, d, _ = _window_sums(12, 80, 2)
    d[[3, 7]] = 0.0
    keep = np.setdiff1d(np.arange(12), [3, 7])
    Dk = np.diag(d[keep])
    Ck = Dk @ (S[np.ix_(keep, keep)] - np.outer(s[keep], s[keep]) / 80) @ Dk
    q0 = np.ones(12)
    q0[[3, 7]] = 0
    theta, y, _ = _solve(S, s, d, 80, q0)
    assert theta == pytest.approx(np.linalg.eigvalsh(Ck)[-1], rel=1e-12)
    assert y[3] == 0.0 and y[7] == 0.0


def test_dense_fallback_when_lanczos_is_starved() -> None:
    S, s, d, C = _window_sums(20, 90, 3)
    theta, y, stats = _solve(S, s, d, 90, np.ones(20), kmax=1, cycles=1)
    assert stats[2] == 1
    vals, vecs = np.linalg.eigh(C)
    assert theta == pytest.approx(vals[-1], rel=1e-12)
    assert abs(abs(y @ vecs[:, -1]) - 1) < 1e-10


def test_jacobi_on_random_symmetric_matrices() -> None:
    rng = np.random.default_rng(4)
    for m in (1, 2, 5, 17):
        A = rng.standard_normal((m, m))
        A = A + A.T
        vals, vecs = np.linalg.eigh(A)
        v = np.zeros(m)
        theta = jacobi_top(A.copy(), v)
        assert theta == pytest.approx(vals[-1], rel=1e-12, abs=1e-12)
        assert abs(abs(v @ vecs[:, -1]) - 1) < 1e-9


def test_tridiagonal_top_pair() -> None:
    rng = np.random.default_rng(5)
    for k in (2, 3, 6, 12):
        a = rng.uniform(0, 3, k)
        a[0] = 15.0
        b = rng.uniform(0.2, 1.0, k)
        T = np.diag(a) + np.diag(b[:-1], 1) + np.diag(b[:-1], -1)
        vals, vecs = np.linalg.eigh(T)
        prev_vals, prev_vecs = np.linalg.eigh(T[:-1, :-1])
        est_prev = b[k - 2] * abs(prev_vecs[-1, -1])
        for start, est in ((prev_vals[-1], est_prev), (0.0, 0.0)):   # good start, and a useless one
            sv = np.zeros(k)
            theta = tridiag_top(a, b, k, start, est, sv, np.zeros(k), np.zeros(k))
            assert theta == pytest.approx(vals[-1], rel=1e-13)
            assert abs(abs(sv @ vecs[:, -1]) - 1) < 1e-12
