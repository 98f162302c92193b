"""Strategy health and decay: states from synthetic trade series at each threshold (worked by hand),
monotonicity and bounds (hypothesis), and the guard: disabled is sticky and pauses entries."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolphin.backtest.strategy_health import (
    Baseline,
    LiveMetrics,
    evaluate,
    gauge_level,
    live_metrics,
    rolling_sharpe,
)
from dolphin.engine.trades import ClosedTrade
from dolphin.enums import GaugeLevel, HealthState, KillLevel
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.strategy_guard import GuardState, StrategyGuard, assess
from dolphin.store.baselines import load_baseline, register_baseline
from dolphin.store.journal import Commit, Journal, ScanInput, SessionStart, TradeRecord

pytestmark = [pytest.mark.finance_fuzz]

DAY = 86_400_000
T0 = 1_775_347_200_000          # 2026-04-05 00:00 UTC


def series(returns: list[float], *, capital: float = 25_000.0, every_ms: int = 3_600_000) -> list[ClosedTrade]:
    """Closed trades returning `returns` (net, on the capital before each), one every `every_ms`."""
    out = []
    for i, r in enumerate(returns):
        pnl = r * capital
        capital += pnl
        out.append(ClosedTrade(trade_id=i + 1, asset="BTCUSDT", side="SHORT", entry_bar=10 * i, entry_ts=T0 + i * every_ms,
                               entry_price=100.0, exit_bar=10 * i + 5, exit_ts=T0 + i * every_ms + 60_000,
                               exit_price=99.0, notional=1000.0, leverage=1.0, fraction=0.1, pnl=pnl, pnl_pct=0.0,
                               entry_fee=0.0, exit_fee=0.0, exit_reason="FIXED_TP", bars_held=5, bucket=0,
                               vel_div_entry=-0.03, confidence=0.5, capital_after=capital))
    return out


def baseline(expectancy: float | None = 0.001, max_dd: float = 0.05, sharpe: float | None = None,
             win_rate: float | None = 0.6, per_day: float | None = 10.0, config_hash: str = "h") -> Baseline:
    return Baseline(strategy="blue", config_hash=config_hash, registered_at=0.0, source="test", span_start_ms=T0,
                    span_end_ms=T0 + 10 * DAY, trades=100, days=10.0, expectancy=expectancy, sharpe=sharpe,
                    max_drawdown=max_dd, win_rate=win_rate, trades_per_day=per_day)


def state_of(trades: list[ClosedTrade], base: Baseline | None) -> HealthState:
    return evaluate(live_metrics(trades, T0, trades[-1].exit_ts), base).state


# ---------------------------------------------------------------- thresholds, from trade series
@pytest.mark.parametrize(("r", "state"), [
    (0.00071, HealthState.HEALTHY),      # ratio 0.71
    (0.00069, HealthState.WATCH),        # 0.69 < 0.7
    (0.00051, HealthState.WATCH),
    (0.00049, HealthState.DEGRADING),    # 0.49 < 0.5
    (0.00031, HealthState.DEGRADING),
    (0.00029, HealthState.DISABLED),     # 0.29 < 0.3
    (-0.0005, HealthState.DISABLED),     # losing: a negative ratio
])
def test_expectancy_ratio_thresholds(r: float, state: HealthState) -> None:
    trades = series([r] * 30)
    verdict = evaluate(live_metrics(trades, T0, trades[-1].exit_ts), baseline())
    assert verdict.expectancy_ratio == pytest.approx(r / 0.001)
    assert verdict.state is state


@pytest.mark.parametrize(("loss", "state"), [
    (-0.059, HealthState.HEALTHY),       # drawdown 5.9 % / 5 % = stress 1.18
    (-0.061, HealthState.WATCH),         # 1.22 > 1.2
    (-0.076, HealthState.DEGRADING),     # 1.52 > 1.5
    (-0.101, HealthState.DISABLED),      # 2.02 > 2.0
])
def test_drawdown_stress_thresholds(loss: float, state: HealthState) -> None:
    trades = series([0.01] * 25 + [loss])
    live = live_metrics(trades, T0, trades[-1].exit_ts)
    assert live.max_drawdown == pytest.approx(-loss)
    verdict = evaluate(live, baseline(expectancy=None))
    assert verdict.dd_stress == pytest.approx(-loss / 0.05) and verdict.state is state


@pytest.mark.parametrize(("loss", "state"), [(-0.09, HealthState.HEALTHY), (-0.11, HealthState.WATCH),
                                             (-0.21, HealthState.DEGRADING), (-0.60, HealthState.DEGRADING)])
def test_without_a_baseline_drawdown_falls_back_to_absolute_limits(loss: float, state: HealthState) -> None:
    assert state_of(series([0.01] * 25 + [loss]), None) is state     # never disabled without a baseline


def test_probation_until_twenty_trades() -> None:
    assert state_of(series([-0.01] * 19), baseline()) is HealthState.PROBATION
    assert state_of(series([-0.01] * 20), baseline()) is HealthState.DISABLED


def test_exact_boundaries_are_not_crossed() -> None:
    """Thresholds are strict (< and >): a ratio of exactly 0.7, 0.5, 0.3 or a stress of exactly 1.2, 1.5, 2.0
    stays in the better state (0.5 baselines make the ratios exact in binary)."""
    def at(expectancy: float | None = None, dd: float = 0.0) -> HealthState:
        live = LiveMetrics(trades=30, expectancy=expectancy, win_rate=None, sharpe=None, max_drawdown=dd,
                           trades_per_day=None)
        return evaluate(live, baseline(expectancy=0.5, max_dd=0.5)).state

    assert [at(0.35), at(0.25), at(0.15)] == [HealthState.HEALTHY, HealthState.WATCH, HealthState.DEGRADING]
    assert [at(dd=0.6), at(dd=0.75), at(dd=1.0)] == [HealthState.HEALTHY, HealthState.WATCH, HealthState.DEGRADING]


def test_a_low_sharpe_ratio_only_warns() -> None:
    live = LiveMetrics(trades=30, expectancy=0.001, win_rate=0.6, sharpe=0.1, max_drawdown=0.01, trades_per_day=10.0)
    verdict = evaluate(live, baseline(sharpe=2.0))
    assert verdict.sharpe_ratio == pytest.approx(0.05) and verdict.state is HealthState.WATCH
    assert any("warning only" in r for r in verdict.reasons)


def test_rolling_sharpe_by_hand() -> None:
    """Three days: +1 %, −0.5 %, no trade (0). Mean 0.001667, sd (ddof 1) 0.007638, × √365."""
    day = [series([0.01])[0], series([0.01, -0.005])[1]]
    day[1] = msgspec.structs.replace(day[1], exit_ts=T0 + DAY + 60_000)
    returns = [0.01, -0.005, 0.0]
    mean = sum(returns) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in returns) / 2)
    got = rolling_sharpe(day, T0 + 2 * DAY + 1, days=3, min_days=2)
    assert got == pytest.approx(mean / sd * math.sqrt(365))
    assert rolling_sharpe(day, T0 + 2 * DAY + 1, days=3, min_days=3) is None   # too few days with a result


def test_gauges_and_their_colours() -> None:
    trades = series([0.0009] * 30, every_ms=DAY // 10)    # ten trades a day, like the baseline
    verdict = evaluate(live_metrics(trades, T0, trades[-1].exit_ts), baseline(win_rate=1.0, per_day=10.0))
    gauges = {g.metric: g for g in verdict.gauges}
    assert gauges["expectancy"].ratio == pytest.approx(0.9) and gauges["expectancy"].level is GaugeLevel.GOOD
    assert gauges["win_rate"].ratio == 1.0 and gauges["drawdown"].ratio == 10.0    # no drawdown: a full gauge
    assert gauges["frequency"].ratio == pytest.approx(10.0 / 10.0, rel=0.05)
    assert gauges["sharpe"].level is GaugeLevel.NONE                                 # no baseline Sharpe
    assert [gauge_level(x) for x in (0.8, 0.79, 0.5, 0.49, None)] == [
        GaugeLevel.GOOD, GaugeLevel.WARN, GaugeLevel.WARN, GaugeLevel.BAD, GaugeLevel.NONE]


# ---------------------------------------------------------------- monotonicity and bounds
finite = st.floats(-1.0, 1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(base=st.floats(1e-6, 1.0), e1=finite, e2=finite, dd=st.floats(0.0, 0.5))
def test_worse_expectancy_never_gives_a_better_state(base: float, e1: float, e2: float, dd: float) -> None:
    lo, hi = sorted((e1, e2))

    def state(e: float) -> HealthState:
        live = LiveMetrics(trades=30, expectancy=e, win_rate=None, sharpe=None, max_drawdown=dd, trades_per_day=None)
        return evaluate(live, baseline(expectancy=base, max_dd=0.5)).state

    assert state(lo).rank >= state(hi).rank
    assert state(lo) is not HealthState.PROBATION


@settings(max_examples=200, deadline=None)
@given(base=st.floats(1e-4, 0.9), d1=st.floats(0.0, 1.0), d2=st.floats(0.0, 1.0), sharpe=st.floats(-5.0, 5.0))
def test_deeper_drawdown_never_gives_a_better_state_and_sharpe_only_warns(base: float, d1: float, d2: float,
                                                                          sharpe: float) -> None:
    lo, hi = sorted((d1, d2))

    def verdict(dd: float, s: float | None):  # noqa: ANN202
        live = LiveMetrics(trades=25, expectancy=None, win_rate=None, sharpe=s, max_drawdown=dd, trades_per_day=None)
        return evaluate(live, baseline(expectancy=None, max_dd=base, sharpe=1.0))

    assert verdict(hi, None).state.rank >= verdict(lo, None).state.rank
    with_sharpe, without = verdict(lo, sharpe), verdict(lo, None)
    assert with_sharpe.state.rank <= max(without.state.rank, HealthState.WATCH.rank)
    for g in with_sharpe.gauges:
        assert g.ratio is None or math.isfinite(g.ratio)
        assert g.level is gauge_level(g.ratio)


# ---------------------------------------------------------------- the guard: sticky, through the kill switch
def _guard(home: Path) -> tuple[StrategyGuard, KillSwitch]:
    switch = KillSwitch.under(home, "KILL")
    return StrategyGuard(home, "blue", switch, clock=lambda: 1_780_000_000.0), switch


def _verdict(state: HealthState):  # noqa: ANN202
    trades = {HealthState.DISABLED: series([-0.001] * 30), HealthState.HEALTHY: series([0.002] * 30)}[state]
    return evaluate(live_metrics(trades, T0, trades[-1].exit_ts), baseline())


def test_disabled_is_sticky_and_pauses_entries(tmp_path: Path) -> None:
    guard, switch = _guard(tmp_path)
    assert guard.apply(_verdict(HealthState.HEALTHY)).state is HealthState.HEALTHY
    assert switch.level() is KillLevel.CLEAR
    disabled = guard.apply(_verdict(HealthState.DISABLED))
    assert disabled.state is HealthState.DISABLED and disabled.kill_engaged
    kill = switch.state()
    assert kill.level is KillLevel.PAUSE and kill.by == "strategy health"
    assert kill.reason.startswith("strategy disabled: expectancy ratio -1.00 < 0.3")
    again = StrategyGuard(tmp_path, "blue", switch).apply(_verdict(HealthState.HEALTHY))   # a restart, then recovery
    assert again.state is HealthState.DISABLED and again.disabled_at == disabled.disabled_at
    switch.engage(KillLevel.CLEAR, by="operator")
    assert guard.apply(_verdict(HealthState.HEALTHY)).state is HealthState.DISABLED
    assert switch.level() is KillLevel.CLEAR          # engaged once: the operator's clear is not fought
    reset = guard.reset(last_trade_id=30, at_ms=T0 + DAY, by="tester")
    assert reset.state is HealthState.PROBATION and reset.reset_after_trade == 30
    assert guard.apply(_verdict(HealthState.HEALTHY)).state is HealthState.HEALTHY


def test_the_guard_never_lowers_a_stricter_level_and_finishes_a_torn_disable(tmp_path: Path) -> None:
    guard, switch = _guard(tmp_path)
    switch.engage(KillLevel.HALT, reason="operator", by="op")
    assert guard.apply(_verdict(HealthState.DISABLED)).kill_engaged
    assert switch.state().level is KillLevel.HALT and switch.state().by == "op"
    # a crash after the disabled state was written, before the switch was engaged
    other = tmp_path / "torn"
    guard, switch = _guard(other)
    guard._save(GuardState(strategy="blue", state=HealthState.DISABLED, disabled_reason="x", kill_engaged=False))
    assert guard.apply(_verdict(HealthState.HEALTHY)).kill_engaged and switch.level() is KillLevel.PAUSE


def _journal(home: Path, trades: list[ClosedTrade]) -> None:
    journal = Journal(home / "journal" / "blue.jsonl", fsync=False)
    journal.append(SessionStart(seq=journal.next_seq(), wall_ts=0.0, strategy="blue", config_hash="h", venue="paper",
                                book_id="b", pid=0))
    for t in trades:
        journal.append(ScanInput(seq=journal.next_seq(), scan_number=t.exit_bar, ts_ms=t.exit_ts, vel_div=-0.01,
                                 v50=None, v750=None, vol_ok=True, prices={"BTCUSDT": 99.0}, trade=True),
                       TradeRecord(seq=journal.next_seq(), scan_number=t.exit_bar, trade=msgspec.to_builtins(t)),
                       Commit(seq=journal.next_seq(), scan_number=t.exit_bar, capital=t.capital_after))
    journal.close()


def test_assess_reads_the_books_and_the_registry(tmp_path: Path) -> None:
    from dolphin.config import load_config

    blue = load_config("blue")
    guard, switch = _guard(tmp_path)
    _journal(tmp_path, series([-0.001] * 25))
    report = assess(tmp_path, blue, guard, act=False, now=1.0)
    assert report.state is HealthState.HEALTHY and not report.baseline_registered   # 2.5 % drawdown < 10 %
    assert report.trades == 25 and switch.level() is KillLevel.CLEAR
    register_baseline(tmp_path, baseline(config_hash="other"))
    assert load_baseline(tmp_path, "blue") == baseline(config_hash="other")
    preview = assess(tmp_path, blue, guard, act=False, now=1.0)
    assert preview.state is HealthState.DISABLED and not preview.kill_engaged and not guard.path.exists()
    assert preview.baseline_matches_config is False and any("another config" in r for r in preview.reasons)
    acted = assess(tmp_path, blue, guard, act=True, now=1.0)
    assert acted.state is HealthState.DISABLED and acted.kill_engaged and switch.level() is KillLevel.PAUSE
    guard.reset(last_trade_id=25, at_ms=T0 + DAY, by="tester")
    after = assess(tmp_path, blue, guard, act=True, now=2.0)
    assert after.state is HealthState.PROBATION and after.trades == 0
