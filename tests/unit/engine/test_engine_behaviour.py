"""NDAlphaEngine behaviour: entries, exits, postures, MC gate, sub-day ACB, state, bad input."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from dolphin.config import load_config
from dolphin.engine.acb import AdaptiveCircuitBreaker, ExternalFactors
from dolphin.engine.engine import NDAlphaEngine, decode_state, encode_state
from dolphin.engine.mc_gate import MCReport, StaticForewarner
from dolphin.engine.ob import RecordedOBProvider
from dolphin.engine.params import StrategyConfig
from tests.reference.engine_ref import ReferenceEngine
from tests.unit.engine.support import falling_market, random_market

pytestmark = [pytest.mark.engine, pytest.mark.signal_fill]


@pytest.fixture(scope="module")
def blue() -> StrategyConfig:
    return load_config("blue")


class FixedFactors:
    def __init__(self, factors: ExternalFactors) -> None:
        self.factors = factors

    def factors_for(self, date: str) -> ExternalFactors:
        return self.factors


def _run(cfg: StrategyConfig, market, posture: str = "APEX", **kwargs) -> NDAlphaEngine:
    eng = NDAlphaEngine(cfg, market.assets, **kwargs)
    eng.process_day("2026-01-05", *market.day(0, market.n_bars), posture=posture)
    return eng


def test_first_entry_and_take_profit_worked_by_hand(blue: StrategyConfig) -> None:
    m = falling_market()
    eng = _run(blue, m)
    t = eng.trades[0]
    assert (t.asset, t.side, t.entry_bar) == ("A0USDT", "SHORT", 150)
    # vd = -0.035 → strength 0.5 → leverage 0.5 + 0.125 * 4.5; no ACB → rsm 1.0
    assert t.leverage == pytest.approx(1.0625)
    # fraction (0.02 + 0.5 * 0.18) * 0.55/0.95 × trend 1.3 (vel_div fell 0.035 within 10 bars);
    # no bucket or streak history yet
    assert t.fraction == pytest.approx(0.11 * 0.55 / 0.95 * 1.3)
    assert t.notional == pytest.approx(25_000 * t.fraction * t.leverage)
    assert t.entry_fee == pytest.approx(0.000314 * t.notional)
    # price falls 2 bp per bar: TP (0.95 %) after ceil(ln(1-0.0095)/ln(1-2e-4)) = 48 bars
    assert t.exit_reason == "FIXED_TP" and t.bars_held == 48
    assert t.exit_price == pytest.approx(m.prices[198, 0] * (1 + 0.0002 * 0.5))
    assert t.pnl == pytest.approx(t.pnl_pct * t.notional - t.entry_fee - t.exit_fee)


def test_no_entry_before_warmup_or_without_vol_ok(blue: StrategyConfig) -> None:
    m = falling_market(signal_from=0)
    assert _run(blue, m).trades[0].entry_bar == 99  # bar_count reaches lookback (100) at bar 99
    m2 = dataclasses.replace(m, vol_ok=np.zeros(m.n_bars, dtype=bool))
    assert _run(blue, m2).trades == []


@pytest.mark.parametrize("posture", ["TURTLE", "HIBERNATE"])
def test_defensive_postures_stop_entries(blue: StrategyConfig, posture: str) -> None:
    eng = _run(blue, falling_market(), posture=posture)
    assert eng.trades == [] and eng.open_position is None


def test_mc_red_stops_entries_and_orange_halves_size(blue: StrategyConfig) -> None:
    m = falling_market()
    red = _run(blue, m, forewarner=StaticForewarner(MCReport(0.30, 0.5)))
    assert red.trades == [] and red.mc.status == "RED" and not red.mc_gate_open
    orange = _run(blue, m, forewarner=StaticForewarner(MCReport(0.15, 0.5)))
    ok = _run(blue, m)
    # ORANGE: day_mc_scale 0.5 → rsm 0.5 → 1.0625 * 0.5 under a ceiling of 5 * 0.5
    assert orange.trades[0].leverage == pytest.approx(0.53125) and ok.trades[0].leverage == pytest.approx(1.0625)


def test_stalker_caps_leverage(blue: StrategyConfig) -> None:
    m = falling_market(vd=-0.08)  # extreme: size leverage 5.0
    apex, stalker = _run(blue, m), _run(blue, m, posture="STALKER")
    assert apex.trades[0].leverage == 5.0
    assert stalker.trades[0].leverage == 2.0


def test_kill_switch_blocks_entries_but_manages_positions(blue: StrategyConfig) -> None:
    m = falling_market()
    eng = NDAlphaEngine(blue, m.assets)
    eng.begin_day("2026-01-05")
    eng.run_block(*m.day(0, 160))
    assert eng.open_position is not None
    eng.set_kill_switch(True)
    _, exits = eng.run_block(*m.day(160, 260))
    assert [t.exit_reason for t in exits] == ["FIXED_TP"]          # the open position still exits normally
    assert eng.open_position is None and eng.entries_halted        # …and nothing new is entered
    eng.set_kill_switch(False)
    entries, _ = eng.run_block(*m.day(260, 262))
    assert len(entries) == 1


def test_hibernate_force_exits_open_position(blue: StrategyConfig) -> None:
    m = falling_market()
    eng = NDAlphaEngine(blue, m.assets)
    eng.begin_day("2026-01-05")
    eng.run_block(*m.day(0, 160))
    assert eng.open_position is not None
    eng.set_posture("HIBERNATE")
    entries, exits = eng.run_block(*m.day(160, 161))
    assert [t.exit_reason for t in exits] == ["HIBERNATE_HALT"] and not entries
    eng.run_block(*m.day(161, 300))
    assert eng.open_position is None and len(eng.trades) == 1


def test_subday_acb_normalisation_exit(blue: StrategyConfig) -> None:
    m = falling_market()
    acb = AdaptiveCircuitBreaker(blue.acb, FixedFactors(ExternalFactors(funding_btc=-0.001)))  # 1 signal
    eng = NDAlphaEngine(blue, m.assets, acb=acb)
    eng.begin_day("2026-01-05")
    assert eng.day_base_boost == pytest.approx(1.347, abs=5e-4)
    eng.run_block(*m.day(0, 155))
    assert eng.open_position is not None
    assert eng.update_acb_boost(1.2, 0.2) is False            # 1.2 is not below 1.10
    assert eng.update_acb_boost(1.05, 0.2) is False           # old boost 1.2 < 1.25: no trigger
    eng.update_acb_boost(1.3, 0.2)
    assert eng.update_acb_boost(1.05, 0.2) is True
    _, exits = eng.run_block(*m.day(155, 156))
    assert exits[0].exit_reason == "SUBDAY_ACB_NORMALIZATION"


def test_acb_boost_scales_leverage(blue: StrategyConfig) -> None:
    m = falling_market()
    acb = AdaptiveCircuitBreaker(blue.acb, FixedFactors(ExternalFactors(funding_btc=-0.001, dvol_btc=90.0)))
    eng = _run(blue, m, acb=acb)
    boost = 1.0 + 0.5 * math.log1p(2.0)
    # no w750 history yet → beta_low 0.2: rsm = boost * (1 + 0.2 * 0.125)
    assert eng.trades[0].leverage == pytest.approx(1.0625 * boost * 1.025)


def test_determinism_two_runs_identical(blue: StrategyConfig) -> None:
    m = random_market(3, 3000, 8)
    a, b = _run(blue, m), _run(blue, m)
    assert len(a.trades) > 10
    assert a.trades == b.trades and a.capital == b.capital


def test_state_round_trip_mid_position(blue: StrategyConfig) -> None:
    m = random_market(5, 6000, 10)
    whole = NDAlphaEngine(blue, m.assets)
    whole.process_day("2026-01-05", *m.day(0, 3000))
    whole.process_day("2026-01-06", *m.day(3000, 6000))

    first = NDAlphaEngine(blue, m.assets)
    first.process_day("2026-01-05", *m.day(0, 3000))
    first.begin_day("2026-01-06")
    cut = 3001
    while True:
        first.run_block(*m.day(cut - 1, cut))
        if first.open_position is not None:
            break
        cut += 1
    blob = encode_state(first.get_state())
    resumed = NDAlphaEngine(blue, m.assets)
    resumed.restore_state(decode_state(blob))
    assert resumed.open_position == first.open_position and resumed.capital == first.capital
    resumed.run_block(*m.day(cut, 6000))
    after_cut = [t for t in whole.trades if t.exit_bar >= cut]
    assert after_cut and resumed.trades == after_cut
    assert resumed.capital == whole.capital


def test_warming_feeds_histories_without_trading(blue: StrategyConfig) -> None:
    """A trader warms on archived scans; warmed-then-live must equal a backtest warmed the same way."""
    m = random_market(9, 4000, 8)
    warm = NDAlphaEngine(blue, m.assets)
    warm.begin_day("2026-01-05")
    entries, exits = warm.run_block(*m.day(0, 2000), trade=False)
    assert entries == exits == [] and warm.bar_count == 2000 and warm.open_position is None
    warm.run_block(*m.day(2000, 4000))
    ref = ReferenceEngine(blue, m.assets)
    ref.process_day("2026-01-05", *m.day(0, 2000), trade=False)
    assert ref.trades == []
    bar_idx, ts, vd, v750, vol_ok, prices = m.day(2000, 4000)
    for k in range(len(bar_idx)):
        ref.step_bar(int(bar_idx[k]), float(vd[k]), {a: float(prices[k, j]) for j, a in enumerate(m.assets)},
                     float(v750[k]), bool(vol_ok[k]), int(ts[k]))
    assert len(warm.trades) > 5
    assert [(t.asset, t.entry_bar, t.exit_bar, t.pnl) for t in warm.trades] == [
        (t.asset, t.entry_bar, t.exit_bar, t.pnl) for t in ref.trades]
    cold = NDAlphaEngine(blue, m.assets)
    cold.process_day("2026-01-05", *m.day(2000, 4000))
    assert cold.trades != warm.trades          # warming matters: it is part of the state


def test_state_rejects_other_assets(blue: StrategyConfig) -> None:
    eng = NDAlphaEngine(blue, ["A", "B"])
    other = NDAlphaEngine(blue, ["A", "C"])
    with pytest.raises(ValueError, match="different asset list"):
        other.restore_state(eng.get_state())


def test_bad_prices_are_skipped_per_rule(blue: StrategyConfig) -> None:
    """NaN/inf/zero/negative prices never enter a history and their asset cannot be entered on that bar."""
    m = falling_market()
    prices = m.prices.copy()
    prices[150, 0] = np.nan          # the asset IRP would pick is unpriced at the signal bar
    prices[150:, 1] = -5.0           # asset 1 turns invalid for good
    eng = _run(blue, dataclasses.replace(m, prices=prices))
    first = eng.trades[0]
    assert first.asset == "A2USDT" and first.entry_bar == 150
    assert all(t.asset != "A1USDT" for t in eng.trades)
    assert np.isfinite(eng.capital)


def test_position_is_marked_at_last_valid_price(blue: StrategyConfig) -> None:
    m = falling_market()
    prices = m.prices.copy()
    prices[151:400, 0] = np.nan      # entered asset stops printing: it can only leave by MAX_HOLD
    eng = _run(blue, dataclasses.replace(m, prices=prices))
    t = eng.trades[0]
    assert t.exit_reason == "MAX_HOLD" and t.bars_held == 120
    assert t.exit_price == pytest.approx(m.prices[150, 0] * (1 + 0.0002 * 0.5))


def test_nan_vel_div_never_enters(blue: StrategyConfig) -> None:
    m = falling_market()
    m = dataclasses.replace(m, vel_div=np.full(m.n_bars, np.nan))
    assert _run(blue, m).trades == []


def test_api_misuse_raises_clear_errors(blue: StrategyConfig) -> None:
    eng = NDAlphaEngine(blue, ["A", "B"])
    with pytest.raises(RuntimeError, match="begin_day"):
        eng.step_bar(0, -0.03, np.array([1.0, 1.0]), 0.0, 0.0, True)
    eng.begin_day("2026-01-05")
    with pytest.raises(ValueError, match="one value per engine asset"):
        eng.step_bar(0, -0.03, np.array([1.0]), 0.0, 0.0, True)
    with pytest.raises(ValueError, match="invalid ACB update"):
        eng.update_acb_boost(math.nan, 0.2)
    with pytest.raises(ValueError, match="unknown posture"):
        eng.set_posture("SLEEPY")
    with pytest.raises(ValueError, match="unique"):
        NDAlphaEngine(blue, ["A", "A"])
    result = eng.step_bar(0, -0.03, {"A": 1.0, "ZZZ": 2.0}, 0.0, 0.0, True)  # unknown symbols ignored
    assert result.entries == [] and result.capital == 25_000.0


def test_empty_day_is_a_clean_noop(blue: StrategyConfig) -> None:
    m = falling_market()
    eng = NDAlphaEngine(blue, m.assets)
    day = eng.process_day("2026-01-05", *m.day(0, 0))
    assert day.trades == 0 and day.pnl == 0.0 and day.bars == 0


def test_long_direction_trades_rising_market(blue: StrategyConfig) -> None:
    green = load_config("green")
    m = falling_market(drop=-2e-4, vd=0.03)   # rising prices, vel_div above the long threshold
    eng = _run(green, m)
    assert eng.trades and eng.trades[0].side == "LONG" and eng.trades[0].exit_reason == "FIXED_TP"
    assert _run(blue, m).trades == []


def test_recorded_ob_provider_changes_exits(blue: StrategyConfig) -> None:
    m = falling_market()
    n = len(m.assets)
    values = np.tile([0.0, 0.0, 0.0, 1.2, 0.9], (1, n, 1)).astype(float)
    cascade = RecordedOBProvider(tuple(m.assets), np.array([0]), values, np.array([0]), np.array([[3.0, 0.0, 0.0]]))
    eng = _run(blue, m, ob_provider=cascade)
    t = eng.trades[0]
    # cascade: TP widened ×1.4 (1.33 % would need 67 bars at 2 bp/bar) but max hold halved to 60
    assert t.exit_reason == "MAX_HOLD" and t.bars_held == 60
    # the OB fill edge (depth 1.2 > 0.5): fill probability 0.9 × 5 bp replaces the Monte-Carlo edge
    raw_move = (t.entry_price - t.exit_price) / t.entry_price
    assert t.pnl_pct == pytest.approx(raw_move + 0.9 * 5e-4)
