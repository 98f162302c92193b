"""Pre-trade checks, the order throttle and the kill switch's automatic escalation (pure parts of `dolphin live`).

The escalation writes the real kill-switch file, read back through `KillSwitch.state()`
as the trader reads it at each step.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.config.services import LiveSection
from dolphin.enums import KillLevel
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.live.alerts import AlertBook
from dolphin.execution.live.escalation import BY, Escalator
from dolphin.execution.live.kinds import RiskCheck
from dolphin.execution.live.risk import Exposure, OrderThrottle, RiskLimits, check_entry

LIMITS = RiskLimits(max_notional_usdt=30_000.0, leverage_ceiling=3.0, max_open_positions=1, price_band_pct=2.0)
OPEN = Exposure(wallet=25_000.0, notional={}, unknown=frozenset())


def _check(qty: float = 1.0, ref: float = 20_000.0, mark: float | None = 20_000.0, exposure: Exposure = OPEN,
           symbol: str = "BTCUSDT") -> RiskCheck | None:
    verdict = check_entry(symbol, qty, ref, mark, 5.0, LIMITS, exposure)
    return None if verdict is None else verdict[0]


def test_each_pre_trade_check_refuses_with_its_name() -> None:
    assert _check() is None
    assert _check(exposure=Exposure(25_000.0, {}, None)) is RiskCheck.UNKNOWN_POSITION      # unknown is never flat
    assert _check(exposure=Exposure(25_000.0, {}, frozenset({"BTCUSDT"}))) is RiskCheck.UNKNOWN_POSITION
    assert _check(exposure=Exposure(25_000.0, {}, frozenset(), frozenset({"BTCUSDT"}))) is RiskCheck.DISPUTED
    assert _check(mark=None) is RiskCheck.NO_MARK
    assert _check(qty=0.0001) is RiskCheck.MIN_NOTIONAL
    assert _check(ref=20_500.0) is RiskCheck.PRICE_BAND                                      # 2.5 % off the mark
    assert _check(ref=20_300.0) is None                                                      # 1.5 %: inside
    assert _check(qty=1.6) is RiskCheck.MAX_NOTIONAL                                         # 32 k > 30 k
    assert _check(exposure=Exposure(25_000.0, {"ETHUSDT": 1_000.0}, frozenset())) is RiskCheck.MAX_OPEN_POSITIONS
    assert _check(exposure=Exposure(5_000.0, {}, frozenset())) is RiskCheck.LEVERAGE_CEILING  # 20 k / 5 k = 4x
    assert _check(exposure=Exposure(None, {}, frozenset())) is RiskCheck.LEVERAGE_CEILING
    detail = check_entry("BTCUSDT", 1.0, 20_500.0, 20_000.0, 5.0, LIMITS, OPEN)
    assert detail is not None and "2.50 %" in detail[1] and "band 2 %" in detail[1]


def test_the_throttle_allows_its_burst_then_its_rate() -> None:
    now = [100.0]
    throttle = OrderThrottle(rate=10.0, burst=10, clock=lambda: now[0])
    assert all(throttle.try_take() for _ in range(10))
    assert not throttle.try_take() and throttle.refused == 1
    now[0] += 0.125                                   # a token back after 1/rate seconds (1.25 here)
    assert throttle.try_take() and not throttle.try_take()
    now[0] += 60.0                                    # never more than the burst
    assert sum(throttle.try_take() for _ in range(20)) == 10


def _escalator(tmp_path: Path, **settings: float) -> tuple[Escalator, KillSwitch, AlertBook]:
    live = LiveSection(**{"rejects_in_a_row": 3, "spikes_in_a_row": 2, "latency_spike_ms": 500.0,
                          "reconcile_failures_halt": 3, "balance_collapse_pct": 25.0, **settings})
    switch = KillSwitch.under(tmp_path, "KILL")
    alerts = AlertBook()
    return Escalator(switch, live, alerts), switch, alerts


def test_rejects_and_latency_spikes_in_a_row_pause_for_five_minutes(tmp_path: Path) -> None:
    esc, switch, alerts = _escalator(tmp_path)
    esc.order_rejected("-2019")
    esc.order_rejected("-2019")
    esc.order_accepted(10.0)                          # an accepted order breaks the run
    esc.order_rejected("-2019")
    esc.order_rejected("-2019")
    assert switch.state().level is KillLevel.CLEAR
    esc.order_rejected("-2019")
    state = switch.state()
    assert state.level is KillLevel.PAUSE and state.by == BY and "3 orders in a row rejected" in state.reason
    assert state.until - state.at == pytest.approx(300.0, abs=1.0)
    assert esc.pauses == 1 and alerts.counts.get("escalation") == 1

    esc2, switch2, _ = _escalator(tmp_path / "b")
    esc2.order_accepted(900.0)
    esc2.order_accepted(20.0)                         # a fast ack breaks the run
    esc2.order_accepted(900.0)
    assert switch2.state().level is KillLevel.CLEAR
    esc2.order_accepted(900.0)
    assert switch2.state().level is KillLevel.PAUSE and "slower than 500 ms" in switch2.state().reason


def test_reconciliation_failures_and_balance_collapse_halt_persistently(tmp_path: Path) -> None:
    esc, switch, alerts = _escalator(tmp_path)
    for ok in (False, False, True, False, False):
        esc.reconciled(ok, "positionRisk: 503")
    assert switch.state().level is KillLevel.CLEAR
    esc.reconciled(False, "positionRisk: 503")
    state = switch.state()
    assert state.level is KillLevel.HALT and state.until == 0.0 and "3 reconciliations in a row" in state.reason
    esc.order_rejected("x")
    esc.order_rejected("x")
    esc.order_rejected("x")                           # never lowered to a pause
    assert switch.state().level is KillLevel.HALT and esc.pauses == 0

    esc2, switch2, _ = _escalator(tmp_path / "b")
    esc2.wallet(10_000.0)                             # the session's start
    esc2.wallet(7_600.0)
    assert switch2.state().level is KillLevel.CLEAR
    esc2.wallet(7_400.0)                              # 26 % below
    assert switch2.state().level is KillLevel.HALT and "balance collapse" in switch2.state().reason
    assert esc2.halts == 1
