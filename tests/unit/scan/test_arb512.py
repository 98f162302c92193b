"""512-bit path vs float64: same decisions, and how far apart the numbers are."""

from __future__ import annotations

import time

import numpy as np
import pytest
from flint import arb, arb_mat, ctx

from dolphin.scan.arb512 import ArbScanner, arb_scan_features, arb_vol_regime_ok, rayleigh_refine
from dolphin.scan.batch import build_scan_features
from dolphin.scan.definitions import VEL_DIV_LONG, VEL_DIV_SHORT
from dolphin.scan.volatility import vol_regime_ok

pytestmark = pytest.mark.scan


def test_rayleigh_refine_reaches_512_bits() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6)) + rng.standard_normal((40, 1))
    C = np.corrcoef(X, rowvar=False)
    vals, vecs = np.linalg.eigh(C)
    with ctx.workprec(512):
        Ca = arb_mat(C.tolist())
        lam = rayleigh_refine(Ca, vecs[:, -1])
        # the characteristic polynomial vanishes at lambda_max to ~512-bit accuracy
        det = (Ca - arb_mat([[lam if i == j else 0 for j in range(6)] for i in range(6)])).det()
        assert abs(float(det.mid())) < 1e-120
        assert float(lam) == pytest.approx(vals[-1], rel=1e-14)
    assert ctx.prec == 53, "the 512-bit path must restore flint's precision"


def test_scan_and_vol_gate_decisions_match_float64(make_prices, capsys: pytest.CaptureFixture[str]) -> None:
    """Equivalence on a 12-asset, 320-bar series (windows 20/60 keep it fast) and a 2000-bar vol series."""
    P = make_prices(320, 12, seed=21, vol=3e-3)
    P[150:153, 4] = np.nan
    windows = (20, 60)
    t0 = time.perf_counter()
    A = arb_scan_features(P, windows)
    arb_seconds = time.perf_counter() - t0
    F = build_scan_features(P, windows)
    assert np.array_equal(A.n_eligible, F.n_eligible)
    for name in ("lambda_max", "velocity", "vel_div"):
        assert np.array_equal(np.isnan(getattr(A, name)), np.isnan(getattr(F, name))), name
    short_a, short_f = A.vel_div < VEL_DIV_SHORT, F.vel_div < VEL_DIV_SHORT
    long_a, long_f = A.vel_div > VEL_DIV_LONG, F.vel_div > VEL_DIV_LONG
    assert short_f.sum() > 5 and long_f.sum() > 5, "the series must exercise both thresholds"
    assert np.array_equal(short_a, short_f) and np.array_equal(long_a, long_f)
    d_lam = np.nanmax(np.abs(A.lambda_max - F.lambda_max))
    d_vd = np.nanmax(np.abs(A.vel_div - F.vel_div))

    rng = np.random.default_rng(22)
    vol = 1e-3 * np.exp(np.cumsum(0.05 * rng.standard_normal(2000)))
    btc = 60_000 * np.exp(np.cumsum(vol * rng.standard_normal(2000)))
    dvol_a, ok_a = arb_vol_regime_ok(btc)
    dvol_f, ok_f = vol_regime_ok(btc)
    assert np.array_equal(ok_a, ok_f)
    assert ok_f.sum() > 100
    d_dvol = np.nanmax(np.abs(dvol_a - dvol_f))
    assert d_lam < 1e-12 and d_vd < 1e-12 and d_dvol < 1e-16
    with capsys.disabled():
        print(f"\n[arb512 vs float64] max|Δ lambda_max| = {d_lam:.3e}, max|Δ vel_div| = {d_vd:.3e}, "
              f"max|Δ dvol| = {d_dvol:.3e}; vol_ok bars {int(ok_f.sum())}/2000 identical; "
              f"vel_div<{VEL_DIV_SHORT}: {int(short_f.sum())}, >{VEL_DIV_LONG}: {int(long_f.sum())} identical; "
              f"arb scan {arb_seconds / 320 * 1e3:.1f} ms/bar (12 assets, 2 windows)")


def test_scanner_reports_none_until_defined() -> None:
    sc = ArbScanner(3, (3, 5))
    rows = [sc.update(np.array([1.0, 2.0, 3.0]) * (1 + 0.01 * k * np.array([1, -1, 0.5]) + 0.001 * k * k))
            for k in range(7)]
    assert rows[0].lambda_max == [None, None] and rows[0].vel_div is None
    assert rows[3].lambda_max[0] is not None and rows[3].lambda_max[1] is None
    assert rows[6].vel_div is not None and isinstance(rows[6].vel_div, arb)
    with pytest.raises(ValueError, match="expected shape"):
        sc.update(np.ones(2))


def test_warm_backfill_skips_only_the_eigen_step(make_prices) -> None:
    P = make_prices(90, 5, seed=23)
    full = arb_scan_features(P, (10, 30))
    sc = ArbScanner(5, (10, 30))
    last_warm = sc.warm(P[:80])
    assert last_warm is not None and last_warm.velocity == [None, None]
    assert float(last_warm.lambda_max[1]) == full.lambda_max[79, 1]
    for t in range(80, 90):
        row = sc.update(P[t])
        assert float(row.vel_div) == full.vel_div[t]
        assert [float(v) for v in row.lambda_max] == full.lambda_max[t].tolist()
