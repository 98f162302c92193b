"""vol_ok: batch == incremental bit for bit, and both equal a plain numpy reading of the definition."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.engine.params import ExtrasParams
from dolphin.scan.volatility import VolGate, vol_regime_ok

pytestmark = pytest.mark.scan


def _series(T: int, seed: int) -> np.ndarray:
    """A random walk whose volatility itself wanders, so vol_ok switches often."""
    rng = np.random.default_rng(seed)
    vol = 1e-3 * np.exp(np.cumsum(0.05 * rng.standard_normal(T)))
    return 100 * np.exp(np.cumsum(vol * rng.standard_normal(T)))


def numpy_reference(p: np.ndarray, window: int, percentile: float, calib: int) -> tuple[np.ndarray, np.ndarray]:
    T = p.shape[0]
    valid = np.isfinite(p) & (p > 0)
    r = np.full(T, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        r[1:] = np.where(valid[1:] & valid[:-1], np.log(p[1:] / p[:-1]), np.nan)
    dvol = np.full(T, np.nan)
    for t in range(window, T):
        x = r[t - window + 1:t + 1]
        if np.isfinite(x).all():
            dvol[t] = np.std(x, ddof=1)
    ok = np.zeros(T, dtype=bool)
    hist: list[float] = []
    for t in range(T):
        if np.isfinite(dvol[t]):
            if len(hist) >= calib:
                ok[t] = dvol[t] >= np.percentile(hist[-calib:], percentile)
            hist.append(float(dvol[t]))
    return dvol, ok


def test_defaults_come_from_extras_params() -> None:
    ex = ExtrasParams()
    assert (ex.vol_window, ex.vol_percentile, ex.vol_calib_bars) == (50, 60.0, 720)
    gate = VolGate()
    assert (gate.window, gate.percentile, gate.calib_bars) == (50, 60.0, 720)


def test_batch_matches_incremental_and_numpy() -> None:
    p = _series(2500, 1)
    p[1200] = np.nan
    p[1700] = -1.0
    p[1900:1930] = p[1900]           # frozen: dvol falls to 0
    dvol, ok = vol_regime_ok(p)
    gate = VolGate()
    inc = np.array([gate.update(x) for x in p])
    assert np.array_equal(inc, ok)
    assert gate.dvol == dvol[-1]
    ref_dvol, ref_ok = numpy_reference(p, 50, 60.0, 720)
    assert np.array_equal(np.isnan(dvol), np.isnan(ref_dvol))
    assert np.nanmax(np.abs(dvol - ref_dvol)) < 1e-15
    assert np.array_equal(ok, ref_ok)
    assert 100 < ok.sum() < 1500
    # warm-up: the first 720 finite dvols (bars 50..769) cannot be judged
    assert not ok[:770].any()


def test_gap_resets_the_window_and_skips_nan_in_calibration() -> None:
    p = _series(400, 2)
    p[150] = np.nan
    dvol, ok = vol_regime_ok(p, window=10, percentile=50.0, calib_bars=30)
    assert np.isnan(dvol[150:161]).all() and np.isfinite(dvol[161])
    ref_dvol, ref_ok = numpy_reference(p, 10, 50.0, 30)
    assert np.array_equal(ok, ref_ok)


@pytest.mark.parametrize("percentile", [0.0, 37.5, 60.0, 99.9, 100.0])
def test_percentile_arithmetic_is_numpys(percentile: float) -> None:
    p = _series(600, 3)
    _, ok = vol_regime_ok(p, window=5, percentile=percentile, calib_bars=97)
    _, ref_ok = numpy_reference(p, 5, percentile, 97)
    assert np.array_equal(ok, ref_ok)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="window"):
        VolGate(window=1)
    with pytest.raises(ValueError, match="percentile"):
        VolGate(percentile=101)
    with pytest.raises(ValueError, match="calib_bars"):
        vol_regime_ok(np.ones(10), calib_bars=0)
    with pytest.raises(ValueError, match="1-D"):
        vol_regime_ok(np.ones((3, 3)))
