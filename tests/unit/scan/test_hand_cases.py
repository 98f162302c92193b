"""Cases whose answer is known without a computer."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.scan.batch import build_scan_features
from dolphin.scan.updater import ScanUpdater

pytestmark = pytest.mark.scan


def _walk(T: int, seed: int, vol: float = 1e-3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.exp(np.cumsum(vol * rng.standard_normal(T)))


def test_two_perfectly_correlated_assets() -> None:
    x = _walk(200, 1)
    P = np.column_stack([100 * x, 7 * x])     # identical returns
    F = build_scan_features(P, (20, 50))
    assert np.allclose(F.lambda_max[60:], 2.0, atol=1e-12)
    assert np.allclose(F.share[60:], 1.0, atol=1e-12)
    assert np.allclose(F.velocity[61:], 0.0, atol=1e-12)
    assert np.allclose(F.instability[61:], 0.0, atol=1e-12)


def test_anti_correlated_pair_is_found_from_a_cold_start() -> None:
    """The uniform start vector is orthogonal to (1, −1): the solver must not stop at λ = 0."""
    x = _walk(120, 2)
    P = np.column_stack([100 * x, 100 / x])   # returns r and −r
    F = build_scan_features(P, (20, 50))
    assert np.allclose(F.lambda_max[60:], 2.0, atol=1e-12)


def test_independent_assets_with_a_long_window() -> None:
    """Marchenko–Pastur: lambda_max ≈ (1 + sqrt(n/w))² for n independent assets."""
    n, w = 20, 2000
    rng = np.random.default_rng(3)
    P = np.exp(np.cumsum(1e-3 * rng.standard_normal((w + 1, n)), axis=0))
    lam = build_scan_features(P, (w,)).lambda_max[-1, 0]
    edge = (1 + np.sqrt(n / w)) ** 2
    assert 1.0 < lam < edge + 3 * np.sqrt(n / w)
    assert lam == pytest.approx(edge, rel=0.15)


def test_an_asset_turning_invalid_drops_n_by_one() -> None:
    rng = np.random.default_rng(4)
    P = np.exp(np.cumsum(1e-3 * rng.standard_normal((120, 4)), axis=0))
    P[70, 1] = np.nan
    F = build_scan_features(P, (10, 30))
    assert F.n_eligible[69].tolist() == [4, 4]
    # bar 70's return and bar 71's return of asset 1 are both undefined
    assert F.n_eligible[70].tolist() == [3, 3]
    assert F.n_eligible[80].tolist() == [3, 3]
    assert F.n_eligible[81].tolist() == [4, 3]   # back after 10 valid returns (bars 72..81)
    assert F.n_eligible[100].tolist() == [4, 3]
    assert F.n_eligible[101].tolist() == [4, 4]


def test_fewer_than_two_eligible_gives_nan() -> None:
    P = np.column_stack([_walk(60, 5), np.full(60, np.nan), np.full(60, 3.0)])
    F = build_scan_features(P, (10,))
    assert (F.n_eligible[:, 0] <= 1).all()
    for name in ("lambda_max", "share", "velocity", "acceleration", "instability", "vel_div"):
        assert np.isnan(getattr(F, name)).all(), name


def test_warm_up_and_velocity_definitions() -> None:
    rng = np.random.default_rng(6)
    P = np.exp(np.cumsum(1e-3 * rng.standard_normal((40, 3)), axis=0))
    F = build_scan_features(P, (5, 10))
    # window w needs returns of bars 1..w, so the first feature is at bar w
    assert np.isnan(F.lambda_max[:5, 0]).all() and np.isfinite(F.lambda_max[5, 0])
    assert np.isnan(F.lambda_max[:10, 1]).all() and np.isfinite(F.lambda_max[10, 1])
    assert np.isnan(F.velocity[5, 0]) and np.isnan(F.acceleration[6, 0])
    assert F.velocity[7, 0] == F.share[7, 0] - F.share[6, 0]
    assert F.acceleration[8, 0] == F.velocity[8, 0] - F.velocity[7, 0]
    assert np.array_equal(F.vel_div, F.velocity[:, 0] - F.velocity[:, 1], equal_nan=True)
    assert np.array_equal(F.share, F.lambda_max / F.n_eligible, equal_nan=True)


def test_first_bar_of_a_live_updater_is_empty() -> None:
    f = ScanUpdater(3, (5, 10)).update(np.array([1.0, 2.0, 3.0]))
    assert np.isnan(f.lambda_max).all() and f.n_eligible.tolist() == [0, 0] and np.isnan(f.vel_div)
