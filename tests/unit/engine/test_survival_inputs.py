"""Live observations → survival inputs (dolphin.engine.survival_inputs), with the engine's stack doing the scoring."""

from __future__ import annotations

import math

import pytest

from dolphin.engine.params import SurvivalParams
from dolphin.engine.survival import SurvivalStack, cat4_environmental
from dolphin.engine.survival_inputs import (
    DvolSpikeDetector,
    Observation,
    explain,
    median_quality,
    staleness_hours,
    trader_heartbeat_age,
)

pytestmark = pytest.mark.engine


def _obs(**changes: object) -> Observation:
    base: dict[str, object] = dict(hz_nodes=1, heartbeat_age_s=1.0, mc_status=None, data_ages_s=(None, 5.0, 2.0),
                                   ob_quality=None, ob_age_s=None, ob_stale_s=180.0, dvol=60.0, dvol_spike=False,
                                   minutes_since_spike=math.inf, drawdown=0.01)
    base.update(changes)
    return Observation(**base)  # type: ignore[arg-type]


def test_a_stopped_or_absent_trader_is_no_failure_but_a_silent_one_is() -> None:
    now, started = 10_000.0, 9_000.0
    assert trader_heartbeat_age(None, None, now, started, 60.0) == 0.0            # never ran
    assert trader_heartbeat_age(now - 500, "stopped", now, started, 60.0) == 0.0  # stopped on purpose
    assert trader_heartbeat_age(now - 500, "running", now, started, 60.0) == 500.0
    assert trader_heartbeat_age(now - 500, "crashed", now, started, 60.0) == 500.0
    # a beat from before this watchdog started gets the grace period to be renewed (a family restarting)
    assert trader_heartbeat_age(started - 100, "running", started + 30, started, 60.0) == 0.0
    assert trader_heartbeat_age(started - 100, "running", started + 61, started, 60.0) == 161.0


def test_staleness_is_the_oldest_known_input_in_hours() -> None:
    assert staleness_hours([None, 3600.0, 7200.0]) == 2.0
    assert staleness_hours([None, None]) == 0.0


def test_ob_quality_is_the_median_over_the_trading_universe() -> None:
    assets = {"BTCUSDT": (1.2, 0.9), "ETHUSDT": (0.4, 0.5), "SOLUSDT": (0.8, 0.7), "OTHERUSDT": (0.0, 0.0)}
    assert median_quality(assets, ["BTCUSDT", "ETHUSDT", "SOLUSDT"]) == (0.8, 0.7)
    assert median_quality(assets, None) == pytest.approx((0.6, 0.6))
    dq, fp = median_quality(assets, ["XRPUSDT"])
    assert math.isnan(dq) and math.isnan(fp)


def test_a_dvol_spike_is_one_impulse_per_episode() -> None:
    d = DvolSpikeDetector(spike_points=10.0, window_min=60.0)
    assert d.observe(0.0, 60.0) == (False, math.inf)
    assert d.observe(1.0, 65.0)[0] is False                 # +5 over the trailing low: no spike
    spike, since = d.observe(2.0, 75.0)                     # +15: a spike, now
    assert spike and since == 0.0 and cat4_environmental(spike, since) == pytest.approx(0.3)
    spike, since = d.observe(5.0, 76.0)                     # still high: the same episode, no new impulse
    assert not spike and since == 3.0
    assert d.observe(6.0, 87.0)[0]                          # a second leg 10+ above the first spike: new spike
    d.observe(30.0, 64.0)                                   # back within half the threshold: re-armed
    assert d.observe(31.0, 80.0)[0] and d.spikes == 3
    assert d.observe(200.0, None)[1] == 169.0               # no reading: the clock still runs


def test_observation_feeds_the_engine_stack_and_explains_itself() -> None:
    stack = SurvivalStack(SurvivalParams())
    calm = _obs()
    r = stack.update(calm.inputs(), 1.0)
    assert r.posture == "APEX" and "every sensor healthy" in explain(r, stack, calm)
    hit = _obs(drawdown=0.12, ob_quality=(math.nan, math.nan), ob_age_s=None)   # Cat5 0.5, Cat3 stale 0.5
    r = stack.update(hit.inputs(), 1.0)
    assert r.categories["cat5_capital"] == pytest.approx(0.5)
    assert r.categories["cat3_microstructure"] == 0.5
    why = explain(r, stack, hit)
    assert "Cat5 capital 0.50 (drawdown 12.0 %)" in why and "OB stale (never published)" in why
    assert "1/2 bars towards a lower posture" in why                        # hysteresis, in words
    r = stack.update(hit.inputs(), 1.0)
    assert r.posture == "HIBERNATE"                                          # 0.25 after the second bar
    dead = _obs(hz_nodes=0)
    assert "no bus member reachable" in explain(stack.update(dead.inputs(), 1.0), stack, dead)


def test_readings_are_finite_for_the_bus() -> None:
    readings = _obs(minutes_since_spike=math.inf, dvol=None).readings()
    assert "minutes_since_spike" not in readings and "dvol" not in readings
    assert all(math.isfinite(v) for v in readings.values())
