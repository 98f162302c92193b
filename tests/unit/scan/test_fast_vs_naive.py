"""The fast kernels against the np.corrcoef + eigh oracle, defects included."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.scan.batch import build_scan_features
from dolphin.scan.features import ScanFeatureArrays
from dolphin.scan.naive import naive_scan

pytestmark = pytest.mark.scan

SMALL_WINDOWS = (10, 30, 60, 150)


def assert_close_to_oracle(fast: ScanFeatureArrays, ref: ScanFeatureArrays) -> None:
    """The tolerances the lead fixed: lambda 1e-9 rel, velocities 1e-10 abs, instability 1e-8."""
    assert fast.windows == ref.windows
    assert np.array_equal(fast.n_eligible, ref.n_eligible)
    for name in ("lambda_max", "share", "velocity", "acceleration", "instability", "vel_div"):
        a, b = getattr(fast, name), getattr(ref, name)
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{name}: NaN pattern differs"
    ok = ~np.isnan(ref.lambda_max)
    assert ok.sum() > 100
    rel = np.abs(fast.lambda_max[ok] - ref.lambda_max[ok]) / ref.lambda_max[ok]
    assert rel.max() <= 1e-9
    for name in ("velocity", "acceleration", "vel_div"):
        a, b = getattr(fast, name), getattr(ref, name)
        m = ~np.isnan(b)
        assert np.abs(a[m] - b[m]).max() <= 1e-10, name
    m = ~np.isnan(ref.instability)
    assert np.abs(fast.instability[m] - ref.instability[m]).max() <= 1e-8


def test_matches_oracle_on_clean_data(make_prices) -> None:
    P = make_prices(700, 14, seed=1)
    assert_close_to_oracle(build_scan_features(P, SMALL_WINDOWS), naive_scan(P, SMALL_WINDOWS))


def test_matches_oracle_with_defects(make_prices, with_defects) -> None:
    P = with_defects(make_prices(700, 12, seed=2))
    fast = build_scan_features(P, SMALL_WINDOWS)
    assert_close_to_oracle(fast, naive_scan(P, SMALL_WINDOWS))
    # the defects really changed the eligible sets
    assert fast.n_eligible[:, 0].min() < fast.n_eligible[:, 0].max()


def test_matches_oracle_on_default_windows(defective_prices) -> None:
    fast = build_scan_features(defective_prices)
    ref = naive_scan(defective_prices)
    assert fast.windows == (50, 150, 300, 750)
    assert_close_to_oracle(fast, ref)
    assert np.isfinite(fast.vel_div).sum() == 900 - 751


def test_frozen_price_is_excluded(make_prices) -> None:
    P = make_prices(300, 6, seed=3)
    P[100:, 2] = P[100, 2]
    fast = build_scan_features(P, (20, 50))
    # window 20 holds returns of bars t-19..t: all zero from bar 120 on
    assert fast.n_eligible[119, 0] == 6
    assert fast.n_eligible[120, 0] == 5
    assert fast.n_eligible[150, 1] == 5
    assert_close_to_oracle(fast, naive_scan(P, (20, 50)))


def test_tiny_but_real_variance_stays_eligible(make_prices) -> None:
    """An asset moving 1e-7 per bar has variance ~1e-14: below the fast sums' comfort zone, above 1e-20."""
    P = make_prices(400, 5, seed=4)
    rng = np.random.default_rng(4)
    P[:, 3] = 1.0 * np.exp(np.cumsum(1e-7 * rng.standard_normal(400)))
    fast = build_scan_features(P, (20, 60))
    ref = naive_scan(P, (20, 60))
    assert fast.n_eligible[-1, 0] == 5
    assert_close_to_oracle(fast, ref)
