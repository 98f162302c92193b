"""Live updates, batch history, chunking and threading must give the same bits."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.scan.batch import build_scan_features
from dolphin.scan.features import ScanFeatureArrays
from dolphin.scan.updater import ScanUpdater

pytestmark = pytest.mark.scan

WINDOWS = (10, 30, 60, 150)
NAMES = ("lambda_max", "share", "velocity", "acceleration", "instability", "n_eligible", "vel_div")


def assert_identical(a: ScanFeatureArrays, b: ScanFeatureArrays) -> None:
    for name in NAMES:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype
        # byte equality: NaN payloads, signed zeros and all
        assert x.tobytes() == y.tobytes(), name


def _rows(upd: ScanUpdater, P: np.ndarray) -> ScanFeatureArrays:
    feats = [upd.update(row) for row in P]
    vals = np.stack([f.values for f in feats])
    nel = np.stack([f.n_eligible for f in feats])
    out = ScanFeatureArrays.from_kernel(upd.windows, vals, nel)
    assert np.array_equal(out.vel_div, np.array([f.vel_div for f in feats]), equal_nan=True)
    return out


def test_update_equals_batch_bit_for_bit(make_prices, with_defects) -> None:
    P = with_defects(make_prices(500, 10, seed=5))
    batch = build_scan_features(P, WINDOWS)
    assert_identical(_rows(ScanUpdater(10, WINDOWS), P), batch)


def test_warm_then_update_equals_batch(make_prices, with_defects) -> None:
    P = with_defects(make_prices(500, 10, seed=6))
    batch = build_scan_features(P, WINDOWS)
    upd = ScanUpdater(10, WINDOWS)
    first = upd.warm(P[:333])
    rest = _rows(upd, P[333:])
    assert_identical(ScanFeatureArrays.concat([first, rest]), batch)
    assert upd.bars == 500


def test_chunking_and_threads_do_not_change_bits(make_prices, with_defects) -> None:
    P = with_defects(make_prices(400, 8, seed=7))
    whole = build_scan_features(P, WINDOWS, parallel=False)
    assert_identical(build_scan_features(P, WINDOWS, parallel=True), whole)
    # an odd number of windows over the threads' lanes
    assert_identical(build_scan_features(P, WINDOWS[:3], parallel=True), build_scan_features(P, WINDOWS[:3], parallel=False))
    assert_identical(build_scan_features(P, WINDOWS, chunk_rows=37), whole)
    calls: list[tuple[int, int]] = []
    assert_identical(build_scan_features(P, WINDOWS, progress=lambda d, t: calls.append((d, t)), chunk_rows=100), whole)
    assert calls == [(100, 400), (200, 400), (300, 400), (400, 400)]


def test_update_reports_loadings_and_eligibility(make_prices) -> None:
    P = make_prices(80, 5, seed=8)
    P[60:, 4] = np.nan
    upd = ScanUpdater(5, (10, 30))
    for row in P[:59]:
        upd.update(row)
    f = upd.update(P[59])
    assert f.n_eligible.tolist() == [5, 5]
    assert np.allclose(np.linalg.norm(f.loadings, axis=1), 1.0)
    assert (f.loadings.sum(axis=1) >= 0).all()
    f = upd.update(P[60])
    assert f.n_eligible.tolist() == [4, 4]
    assert np.isnan(f.loadings[:, 4]).all()
    assert np.allclose(np.linalg.norm(f.loadings[:, :4], axis=1), 1.0)
    assert f.index(30) == 1
    d = f.to_dict()
    assert d["w30"]["n_eligible"] == 4 and d["vel_div"] == pytest.approx(f.vel_div)


def test_bad_input_is_rejected() -> None:
    upd = ScanUpdater(3, (5, 10))
    with pytest.raises(ValueError, match="expected shape"):
        upd.update(np.ones(4))
    with pytest.raises(ValueError, match="strictly increasing"):
        ScanUpdater(3, (10, 5))
    with pytest.raises(ValueError, match="at least 2"):
        ScanUpdater(3, (1, 5))
    with pytest.raises(ValueError, match="asset columns"):
        upd.warm(np.ones((5, 4)))
    with pytest.raises(ValueError, match="2-D"):
        build_scan_features(np.ones(5))
