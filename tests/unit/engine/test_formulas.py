"""Every engine formula against values worked by hand from the bible (§4–§12)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dolphin.engine.acb import ExternalFactors, acb_signals, base_boost, dynamic_beta, w750_threshold
from dolphin.engine.codes import (
    APEX,
    DC_CONFIRM,
    DC_CONTRADICT,
    DC_NEUTRAL,
    EXIT_FIXED_TP,
    EXIT_MAX_HOLD,
    EXIT_STOP_LOSS,
    EXIT_VD_ADVERSE,
    HIBERNATE,
    STALKER,
    TURTLE,
)
from dolphin.engine.exits import blended_fee_rate, evaluate_exit, exit_slippage, ob_dynamic_exit_params
from dolphin.engine.irp import compute_ars, compute_irp, ob_ars_adjust, profile_asset
from dolphin.engine.mc_gate import MCReport, mc_verdict
from dolphin.engine.params import AcbParams, StrategyConfig, SurvivalParams
from dolphin.engine.signal import (
    classify,
    dc_verdict,
    is_extreme,
    ob_confidence_adjust,
    signal_active,
    signal_confidence,
    signal_strength,
)
from dolphin.engine.sizing import (
    bucket_boost,
    cubic_leverage,
    effective_fraction,
    final_leverage,
    regime_size_mult,
    signal_bucket,
    streak_mult,
    trend_mult,
)
from dolphin.engine.survival import (
    SurvivalInputs,
    SurvivalStack,
    bounded_recovery,
    cat1_invariant,
    cat2_structural,
    cat3_microstructure,
    cat4_environmental,
    cat5_capital,
    combine,
    posture_for,
)
from dolphin.enums import SignalState

pytestmark = [pytest.mark.engine, pytest.mark.signal_fill]

THR, EXT = -0.02, -0.05
SHORT, LONG = -1, 1


# ---------------------------------------------------------------- §4.1 signal gate and confidence
@pytest.mark.parametrize(("vd", "strength", "confidence"), [
    (-0.02, 0.0, 0.50),
    (-0.035, 0.5, 0.70),     # (-0.02 + 0.035) / 0.03 = 0.5 → 0.50 + 0.5 * 0.40
    (-0.05, 1.0, 0.90),
    (-0.08, 1.0, 0.90),      # clamped
    (-0.01, 0.0, 0.50),      # above the gate: clamped at 0
    (-0.026, 0.2, 0.58),
])
def test_short_strength_and_confidence(vd: float, strength: float, confidence: float) -> None:
    assert signal_strength(vd, THR, EXT) == pytest.approx(strength, abs=1e-12)
    assert signal_confidence(vd, THR, EXT) == pytest.approx(confidence, abs=1e-12)


def test_long_strength_mirrors_short() -> None:
    # green: threshold 0.01, extreme 0.04 → (0.025 - 0.01) / 0.03 = 0.5
    assert signal_strength(0.025, 0.01, 0.04) == pytest.approx(0.5)
    assert signal_confidence(0.04, 0.01, 0.04) == pytest.approx(0.90)


def test_signal_gate_and_extreme() -> None:
    assert signal_active(-0.0201, THR, SHORT) and not signal_active(-0.02, THR, SHORT)
    assert not signal_active(math.nan, THR, SHORT)
    assert signal_active(0.0101, 0.01, LONG) and not signal_active(0.01, 0.01, LONG)
    assert is_extreme(-0.05, EXT, SHORT) and not is_extreme(-0.0499, EXT, SHORT)
    assert is_extreme(0.04, 0.04, LONG)


# ---------------------------------------------------------------- §4.2 direction confirmation
@pytest.mark.parametrize(("p1", "short", "long"), [
    (99.99, DC_CONFIRM, DC_CONTRADICT),      # -1.0 bp: falling confirms a short
    (100.005, DC_NEUTRAL, DC_NEUTRAL),       # +0.5 bp: inside ±0.75 bp
    (100.01, DC_CONTRADICT, DC_CONFIRM),     # +1.0 bp
    (99.9925, DC_NEUTRAL, DC_NEUTRAL),       # exactly -0.75 bp is not beyond the magnitude
])
def test_dc_verdicts(p1: float, short: int, long: int) -> None:
    assert dc_verdict(100.0, p1, 0.75, SHORT) == short
    assert dc_verdict(100.0, p1, 0.75, LONG) == long


# ---------------------------------------------------------------- §4.3 OB sub-2
def test_ob_confirmation_boost_dampen_and_skip() -> None:
    # SHORT sees sell pressure (imbalance -0.2) as eff_imb +0.2: boost 1 + min(0.15, 0.2*0.8*0.5) = 1.08
    conf, skip = ob_confidence_adjust(0.7, -0.2, 0.8, SHORT)
    assert not skip and conf == pytest.approx(0.7 * 1.08)
    # strong persistent contradiction: hard skip
    assert ob_confidence_adjust(0.7, 0.2, 0.7, SHORT)[1] is True
    # moderate contradiction: max(0.85, 1 - 0.12*0.5*0.4) = 0.976
    conf, skip = ob_confidence_adjust(0.7, 0.12, 0.5, SHORT)
    assert not skip and conf == pytest.approx(0.7 * 0.976)


# ---------------------------------------------------------------- §5 IRP and ARS
def test_compute_irp_hand_segment() -> None:
    seg = np.array([100.0, 101.0, 100.0, 102.0])  # normalised returns +0.01, -0.01, +0.02
    mfe, mae, eff, align, noise, lat = compute_irp(seg, LONG)
    assert mfe == pytest.approx(0.02) and mae == pytest.approx(0.0)
    assert eff == pytest.approx(0.02 / 1e-6)
    assert align == pytest.approx(2 / 3)
    assert noise == pytest.approx(2e-4 - (0.02 / 3) ** 2)
    assert lat == 1
    mfe, mae, eff, align, noise, lat = compute_irp(seg, SHORT)
    assert mfe == 0.0 and mae == pytest.approx(0.02) and eff == 0.0
    assert align == pytest.approx(1 / 3) and lat == 50


def test_ars_formula() -> None:
    # 0.5 * ln(2) + 0.35 * 0.5 - 0.15 * 0 * 1000
    assert compute_ars(1.0, 0.5, 0.0) == pytest.approx(0.5 * math.log(2) + 0.175)
    assert compute_ars(0.0, 0.0, 1e-4) == pytest.approx(-0.015)


def test_inverse_selection_and_gates() -> None:
    falling = 100.0 * (1 - 0.001 * np.arange(50))
    ars, action, align, ok = profile_asset(falling, SHORT)
    assert action == SHORT and align == 1.0 and ok
    ars_i, action_i, _, ok_i = profile_asset(falling, LONG)  # inverse wins for a LONG regime
    assert action_i == SHORT and ars_i == pytest.approx(ars) and ok_i
    flat = np.full(50, 100.0)
    assert profile_asset(flat, SHORT)[3] is False  # no excursion → latency 50 > 20


def test_ob_depth_adjusts_ars() -> None:
    assert ob_ars_adjust(1.0, 1.2) == pytest.approx(1.05)
    assert ob_ars_adjust(1.0, 0.3) == pytest.approx(0.90)
    assert ob_ars_adjust(-1.0, 0.3) == pytest.approx(-1.10)
    assert ob_ars_adjust(1.0, 0.7) == 1.0


# ---------------------------------------------------------------- §6 sizing
@pytest.mark.parametrize(("strength", "leverage"), [(0.0, 0.5), (0.5, 0.5 + 0.125 * 4.5), (1.0, 5.0)])
def test_cubic_leverage(strength: float, leverage: float) -> None:
    assert cubic_leverage(strength, 0.5, 5.0, 3.0) == pytest.approx(leverage)


# extreme * 1.5 is -0.07500000000000001 in binary floating point, as in the bible's code,
# so the bucket-0 edge is tested just beyond it.
@pytest.mark.parametrize(("vd", "bucket"), [
    (-0.08, 0), (-0.0751, 0), (-0.0749, 1), (-0.05, 1), (-0.0499, 2), (-0.035, 2), (-0.0349, 3), (-0.021, 3),
])
def test_bucket_thresholds(vd: float, bucket: int) -> None:
    assert signal_bucket(vd, THR, EXT, SHORT) == bucket


def test_long_buckets_mirror() -> None:
    assert signal_bucket(0.06, 0.01, 0.04, LONG) == 0
    assert signal_bucket(0.045, 0.01, 0.04, LONG) == 1
    assert signal_bucket(0.03, 0.01, 0.04, LONG) == 2
    assert signal_bucket(0.02, 0.01, 0.04, LONG) == 3


@pytest.mark.parametrize(("wins", "n", "boost"), [
    (7, 10, 1.3), (57, 100, 1.1), (3, 10, 0.7), (42, 100, 0.85), (5, 10, 1.0), (4, 4, 1.0),
])
def test_bucket_boost(wins: int, n: int, boost: float) -> None:
    assert bucket_boost(wins, n, 5) == boost


@pytest.mark.parametrize(("losses", "mult"), [(5, 0.5), (4, 0.5), (3, 0.7), (2, 1.0), (1, 1.1), (0, 1.1)])
def test_streak_multiplier(losses: int, mult: float) -> None:
    assert streak_mult(losses, 20, 5) == mult
    assert streak_mult(losses, 3, 5) == 1.0  # not enough history yet


def test_trend_multiplier() -> None:
    assert trend_mult(-0.02, SHORT) == 1.3 and trend_mult(0.02, SHORT) == 0.7 and trend_mult(0.0, SHORT) == 1.0
    assert trend_mult(0.02, LONG) == 1.3 and trend_mult(-0.02, LONG) == 0.7
    assert trend_mult(math.nan, SHORT) == 1.0


def test_effective_fraction() -> None:
    # strength 0.5, not extreme: (0.02 + 0.5 * 0.18) * 0.55 / 0.95
    assert effective_fraction(0.5, False, 0.20, 1.0, 1.0, 1.0) == pytest.approx(0.11 * 0.55 / 0.95)
    # extreme: 0.20 * 0.70/0.95 * 2 = 0.2947 → clamped to 0.20
    assert effective_fraction(1.0, True, 0.20, 1.0, 1.0, 1.0) == 0.20
    # tiny: clamped up to 0.02
    assert effective_fraction(0.0, False, 0.20, 0.7, 0.7, 0.5) == 0.02


def test_regime_size_mult_and_leverage_ceiling() -> None:
    # §10.4: 1.347 * (1 + 0.8 * 0.5**3) * 1.0 at vd = -0.035
    assert regime_size_mult(-0.035, THR, EXT, 3.0, 1.347, 0.8, 1.0) == pytest.approx(1.347 * 1.1)
    assert regime_size_mult(-0.035, THR, EXT, 3.0, 1.347, 0.0, 0.5) == pytest.approx(1.347 * 0.5)
    # §6.5: raw 1.0625 * 1.5 = 1.59375 under a ceiling of min(5 * 1.5, 6) = 6
    assert final_leverage(1.0625, 1.0, 1.5, 1.0, 5.0, 6.0, 0.5, False, 2.0) == pytest.approx(1.59375)
    assert final_leverage(5.0, 1.0, 1.5, 1.0, 5.0, 6.0, 0.5, False, 2.0) == 6.0   # abs max
    assert final_leverage(5.0, 1.0, 1.5, 1.0, 5.0, 6.0, 0.5, True, 2.0) == 2.0    # STALKER cap
    assert final_leverage(0.5, 1.0, 0.5, 1.0, 5.0, 6.0, 0.5, False, 2.0) == 0.5   # floor


# ---------------------------------------------------------------- §7 exits and §8 friction
def test_exit_priority() -> None:
    assert evaluate_exit(0.0095, 5, 0.0095, 1.0, 120, 0, False, 3) == EXIT_FIXED_TP
    assert evaluate_exit(-1.0, 5, 0.0095, 1.0, 120, 0, False, 3) == EXIT_STOP_LOSS
    assert evaluate_exit(0.0, 120, 0.0095, 1.0, 120, 0, False, 3) == EXIT_MAX_HOLD
    assert evaluate_exit(0.0, 119, 0.0095, 1.0, 120, 0, False, 3) == 0
    assert evaluate_exit(0.0, 10, 0.0095, 1.0, 120, 3, True, 3) == EXIT_VD_ADVERSE
    assert evaluate_exit(0.0, 10, 0.0095, 1.0, 120, 3, False, 3) == 0   # off by default


def test_ob_dynamic_exit_adjustments() -> None:
    assert ob_dynamic_exit_params(0.0095, 1.0, 120, 0.0, 2, 0, 0.0, 0.0) == pytest.approx((0.0133, 1.0, 60))
    tp, sl, hold = ob_dynamic_exit_params(0.0095, 1.0, 120, 0.001, 0, 1, -0.2, 0.0)
    assert (tp, sl, hold) == pytest.approx((0.0095 * 0.6, 0.10, 48))
    assert ob_dynamic_exit_params(0.0095, 1.0, 120, 0.0, 0, -1, 0.2, 0.0)[2] == 180
    tp, _, hold = ob_dynamic_exit_params(0.0095, 1.0, 120, 0.001, 0, 0, 0.0, -0.3)
    assert hold == 48 and tp == pytest.approx(0.0095 * 0.75)


def test_slippage_and_fees() -> None:
    assert exit_slippage(EXIT_FIXED_TP, 0.0002, 0.0005, 0.0002, True, 0.5) == pytest.approx(0.0001)
    assert exit_slippage(EXIT_STOP_LOSS, 0.0002, 0.0005, 0.0002, True, 0.5) == 0.0005
    assert exit_slippage(EXIT_MAX_HOLD, 0.0002, 0.0005, 0.0002, False, 0.5) == 0.0
    # §8.1: 0.0002 * 0.62 + 0.0005 * 0.38 = 0.000314 (3.14 bp of notional)
    assert blended_fee_rate(0.62, 0.0002, 0.0005) == pytest.approx(0.000314)
    assert blended_fee_rate(0.50, 0.0002, 0.0005) == pytest.approx(0.00035)


# ---------------------------------------------------------------- §10 ACB v6
@pytest.mark.parametrize(("signals", "boost"), [(0.5, 1.0), (1.0, 1.347), (2.0, 1.549), (3.0, 1.693)])
def test_acb_base_boost(signals: float, boost: float) -> None:
    assert base_boost(signals) == pytest.approx(boost, abs=5e-4)


def test_acb_signal_count() -> None:
    p = AcbParams()
    f = ExternalFactors(funding_btc=-0.0002, dvol_btc=60.0, fng=20.0, taker=1.0)
    assert acb_signals(f, p) == 2.5   # 1.0 funding + 0.5 dvol + 1.0 confirmed fear
    assert acb_signals(ExternalFactors(fng=10.0), p) == 0.0   # fear alone is not confirmed
    assert acb_signals(ExternalFactors(taker=0.75, dvol_btc=90.0), p) == 2.0
    assert acb_signals(ExternalFactors(funding_btc=-0.00005, taker=0.85), p) == 1.0


def test_dynamic_beta_switches_at_w750_p60() -> None:
    p = AcbParams()
    history = np.arange(1000) / 1000.0
    threshold = w750_threshold(history, 60.0)
    assert threshold == pytest.approx(0.5994)
    assert dynamic_beta(0.5994, threshold, p) == 0.8
    assert dynamic_beta(0.5993, threshold, p) == 0.2
    assert dynamic_beta(0.9, threshold, p, ob_stress=True) == pytest.approx(1.0)
    assert math.isnan(w750_threshold(history[:50], 60.0))
    assert dynamic_beta(0.9, math.nan, p) == 0.2


# ---------------------------------------------------------------- §11 survival stack
@pytest.mark.parametrize(("dd", "rm5"), [(0.05, 0.8909), (0.12, 0.5), (0.20, 0.0832)])
def test_rm5_capital_sigmoid(dd: float, rm5: float) -> None:
    assert cat5_capital(dd) == pytest.approx(rm5, abs=1e-4)


def test_sensor_categories() -> None:
    assert cat1_invariant(1, 10.0) == 1.0 and cat1_invariant(0, 1.0) == 0.0 and cat1_invariant(1, 31.0) == 0.0
    assert cat2_structural("ORANGE", 2.0) == 0.5
    assert cat2_structural("OK", 9.0) == pytest.approx(math.exp(-1.0))
    assert cat3_microstructure(0.5, 0.8, False) == pytest.approx(0.65)
    assert cat3_microstructure(0.5, 0.8, True) == 0.5
    assert cat4_environmental(True, 0.0) == 0.3
    assert cat4_environmental(False, 60.0) == pytest.approx(0.3 + 0.7 * (1 - math.exp(-1)))


def test_hierarchical_combination_and_collapse_penalty() -> None:
    assert combine(1.0, 0.9, 0.9, 1.0, 1.0) == pytest.approx(0.81)
    # two degraded (Cat2 0.7, Cat3 0.7): 0.7 * 0.7 * 0.5
    assert combine(1.0, 0.7, 0.7, 1.0, 1.0) == pytest.approx(0.245)
    assert combine(0.0, 1.0, 1.0, 1.0, 1.0) == 0.0


@pytest.mark.parametrize(("rm", "posture"), [
    (1.0, APEX), (0.90, APEX), (0.8999, STALKER), (0.75, STALKER), (0.7499, TURTLE), (0.50, TURTLE),
    (0.4999, HIBERNATE), (0.0, HIBERNATE),
])
def test_posture_mapping(rm: float, posture: int) -> None:
    assert posture_for(rm, SurvivalParams()) == posture


def test_bounded_recovery() -> None:
    assert bounded_recovery(0.9, 0.3, 1.0) == 0.3                       # fast attack
    assert bounded_recovery(0.5, 1.0, 1.0) == pytest.approx(0.51)       # alpha 0.02 → step 0.01
    assert bounded_recovery(0.5, 1.0, 10.0) == pytest.approx(0.60)      # alpha 0.2 → 0.1
    assert bounded_recovery(0.5, 1.0, 50.0) == pytest.approx(1.0)


def test_hysteresis_two_down_five_up() -> None:
    stack = SurvivalStack()
    turtle = SurvivalInputs(drawdown=0.115)       # Rm5 ≈ 0.54 → TURTLE
    assert stack.update(turtle, 1.0).posture == "APEX"
    assert stack.update(turtle, 1.0).posture == "TURTLE"
    calm = SurvivalInputs()
    postures = [stack.update(calm, 100.0).posture for _ in range(5)]   # dt large: Rm recovers fully
    assert postures == ["TURTLE"] * 4 + ["APEX"]


def test_kill_switch_bypasses_hysteresis() -> None:
    stack = SurvivalStack()
    assert stack.update(SurvivalInputs(hz_nodes=0), 1.0).posture == "HIBERNATE"


# ---------------------------------------------------------------- §12 MC gate
@pytest.mark.parametrize(("cp", "env", "status", "scale", "halt"), [
    (0.30, 0.5, "RED", 1.0, True), (0.05, -1.5, "RED", 1.0, True), (0.15, 0.5, "ORANGE", 0.5, False),
    (0.05, -0.5, "ORANGE", 0.5, False), (0.05, 0.5, "OK", 1.0, False), (math.nan, 0.5, "RED", 1.0, True),
])
def test_mc_verdicts(cp: float, env: float, status: str, scale: float, halt: bool) -> None:
    v = mc_verdict(MCReport(cp, env))
    assert (v.status, v.scale, v.halt) == (status, scale, halt)
    assert mc_verdict(None).status == "OK"


@pytest.mark.parametrize(("vd", "state"), [
    (None, SignalState.UNDEFINED), (math.nan, SignalState.UNDEFINED), (math.inf, SignalState.UNDEFINED),
    (0.0, SignalState.NONE), (-0.0199, SignalState.NONE),
    (-0.02, SignalState.NONE),          # at the gate the engine does not trade (§4.1: strictly below)
    (-0.0201, SignalState.SIGNAL), (-0.0499, SignalState.SIGNAL),
    (-0.05, SignalState.EXTREME),       # is_extreme: vel_div <= extreme
    (-0.3, SignalState.EXTREME),
])
def test_classify_is_the_engines_own_gate(vd: float | None, state: SignalState) -> None:
    cfg = StrategyConfig()
    assert classify(vd, cfg) is state
    if vd is not None and math.isfinite(vd):
        assert classify(vd, cfg).active == bool(signal_active(vd, cfg.signal_threshold, cfg.direction_sign))


def test_classify_mirrors_for_long() -> None:
    cfg = StrategyConfig(direction="long")
    assert classify(cfg.signal_threshold, cfg) is SignalState.NONE
    assert classify(cfg.signal_threshold + 1e-6, cfg) is SignalState.SIGNAL
    assert classify(cfg.signal_extreme, cfg) is SignalState.EXTREME


def test_position_marks_by_hand() -> None:
    from dolphin.engine.position_view import position_marks

    cfg = StrategyConfig()   # TP 0.95 %, stop 100 % (disabled), max hold 120 bars
    short = position_marks("SHORT", 100.0, 1_000.0, 99.5, cfg, bars_held=20)
    assert short.unrealised_pct == pytest.approx(0.005) and short.unrealised == pytest.approx(5.0)
    assert short.tp_price == pytest.approx(99.05) and short.sl_price is None and short.to_sl_pct is None
    assert short.to_tp_pct == pytest.approx((99.5 - 99.05) / 99.5) and short.bars_left == 100
    long = position_marks("LONG", 100.0, 1_000.0, 101.0, StrategyConfig(direction="long"))
    assert long.unrealised == pytest.approx(10.0) and long.tp_price == pytest.approx(100.95)
    assert long.to_tp_pct < 0                                  # past take-profit: the engine exits next bar
