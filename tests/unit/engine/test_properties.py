"""Bounds and invariants that must hold for any input (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dolphin.config import load_config
from dolphin.engine.engine import NDAlphaEngine
from dolphin.engine.sizing import cubic_leverage, effective_fraction, final_leverage, market_ob_multiplier
from dolphin.engine.survival import (
    SurvivalInputs,
    SurvivalStack,
    bounded_recovery,
    cat2_structural,
    cat3_microstructure,
    cat4_environmental,
    cat5_capital,
    combine,
)
from tests.unit.engine.support import random_market

pytestmark = [pytest.mark.finance_fuzz, pytest.mark.engine]

unit = st.floats(0.0, 1.0, allow_nan=False)
BLUE = load_config("blue")


@given(strength=unit, rsm=st.floats(0.0, 20.0), ob=st.floats(-2.0, 2.0), stalker=st.booleans())
def test_final_leverage_bounds(strength: float, rsm: float, ob: float, stalker: bool) -> None:
    size = cubic_leverage(strength, 0.5, 5.0, 3.0)
    lev = final_leverage(size, 1.0, rsm, market_ob_multiplier(ob, -1), 5.0, 6.0, 0.5, stalker, 2.0)
    assert 0.5 <= lev <= 6.0
    if stalker:
        assert lev <= 2.0


@given(strength=unit, extreme=st.booleans(), trend=st.sampled_from([0.7, 1.0, 1.3]),
       bucket=st.sampled_from([0.7, 0.85, 1.0, 1.1, 1.3]), streak=st.sampled_from([0.5, 0.7, 1.0, 1.1]))
def test_fraction_bounds(strength: float, extreme: bool, trend: float, bucket: float, streak: float) -> None:
    assert 0.02 <= effective_fraction(strength, extreme, 0.20, trend, bucket, streak) <= 0.20


finite = st.floats(-1e6, 1e6) | st.sampled_from([math.nan, math.inf, -math.inf])


@given(hz=st.integers(-1, 3), hb=finite, mc=st.sampled_from(["OK", "ORANGE", "RED", "BOGUS"]), stale=finite,
       dq=finite, fp=finite, ob_stale=st.booleans(), spike=st.booleans(), since=finite, dd=finite,
       dt=st.floats(0.0, 1e4))
def test_rm_always_in_unit_interval(hz: int, hb: float, mc: str, stale: float, dq: float, fp: float, ob_stale: bool,
                                   spike: bool, since: float, dd: float, dt: float) -> None:
    stack = SurvivalStack()
    inputs = SurvivalInputs(hz_nodes=hz, heartbeat_age_s=hb, mc_status=mc, staleness_hours=stale, depth_quality=dq,
                            fill_probability=fp, ob_stale=ob_stale, dvol_spike=spike, minutes_since_spike=since,
                            drawdown=dd)
    for _ in range(3):
        reading = stack.update(inputs, dt)
        assert 0.0 <= reading.rm <= 1.0 and 0.0 <= reading.r_target <= 1.0
        assert reading.posture in {"APEX", "STALKER", "TURTLE", "HIBERNATE"}
    for value in (cat2_structural(mc, stale), cat3_microstructure(dq, fp, ob_stale), cat4_environmental(spike, since),
                  cat5_capital(dd)):
        assert 0.0 <= value <= 1.0 and not math.isnan(value)


@given(last=unit, target=unit, dt=st.floats(0.0, 1e3))
def test_recovery_is_bounded_and_never_overshoots(last: float, target: float, dt: float) -> None:
    r = bounded_recovery(last, target, dt)
    if target < last:
        assert r == target
    else:
        assert last <= r <= target + 1e-15
        assert r - last <= 0.05 * dt + 1e-15


@given(values=st.lists(unit, min_size=5, max_size=5))
def test_combination_monotone_in_each_sensor(values: list[float]) -> None:
    base = combine(*values)
    for i in range(5):
        raised = list(values)
        raised[i] = min(1.0, raised[i] + 0.1)
        assert combine(*raised) >= base - 1e-12


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), posture=st.sampled_from(["APEX", "STALKER"]))
def test_engine_trades_respect_bounds(seed: int, posture: str) -> None:
    m = random_market(seed, 1500, 6)
    eng = NDAlphaEngine(BLUE, m.assets)
    eng.process_day("2026-01-05", *m.day(0, m.n_bars), posture=posture)
    for t in eng.trades:
        assert 0.5 <= t.leverage <= (2.0 if posture == "STALKER" else 6.0)
        assert 0.02 <= t.fraction <= 0.20
        assert t.bars_held <= BLUE.champion.max_hold_bars
        assert t.exit_bar > t.entry_bar and np.isfinite(t.pnl)
    assert eng.peak_capital >= eng.capital
