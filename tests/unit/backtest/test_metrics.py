"""Backtest metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dolphin.backtest.metrics import compute_metrics, max_drawdown, sharpe_ratio
from dolphin.backtest.runner import split_days
from dolphin.engine.trades import ClosedTrade, DayResult

pytestmark = [pytest.mark.finance_fuzz]


def _trade(pnl: float, capital_after: float, fees: float = 1.0, reason: str = "FIXED_TP") -> ClosedTrade:
    return ClosedTrade(trade_id=1, asset="BTCUSDT", side="SHORT", entry_bar=0, entry_ts=0, entry_price=100.0,
                       exit_bar=10, exit_ts=50_000, exit_price=99.0, notional=1000.0, leverage=1.0, fraction=0.1,
                       pnl=pnl, pnl_pct=0.01, entry_fee=fees / 2, exit_fee=fees / 2, exit_reason=reason, bars_held=10,
                       bucket=2, vel_div_entry=-0.03, confidence=0.6, capital_after=capital_after)


def _day(date: str, pnl: float, capital: float) -> DayResult:
    return DayResult(date=date, pnl=pnl, capital=capital, trades=1, boost=1.0, beta=0.2, mc_status="OK",
                     posture="APEX", bars=10)


def test_metrics_hand_computed() -> None:
    trades = [_trade(100, 1100), _trade(-50, 1050, reason="MAX_HOLD"), _trade(-150, 900, reason="MAX_HOLD"),
              _trade(200, 1100)]
    days = [_day("2026-01-05", 50, 1050), _day("2026-01-06", 50, 1100)]
    m = compute_metrics(1000.0, 1100.0, trades, days)
    assert m.roi == pytest.approx(0.10)
    assert m.profit_factor == pytest.approx(300 / 200)
    assert m.win_rate == 0.5 and (m.wins, m.losses, m.trades) == (2, 2, 4)
    assert m.fees == pytest.approx(4.0)
    assert m.max_drawdown == pytest.approx(200 / 1100)          # 1100 → 900
    assert m.exit_reasons == {"MAX_HOLD": 2, "FIXED_TP": 2}
    r1, r2 = 50 / 1000, 50 / 1050
    mean, std = (r1 + r2) / 2, math.sqrt(((r1 - (r1 + r2) / 2) ** 2 + (r2 - (r1 + r2) / 2) ** 2) / 1)
    assert m.sharpe == pytest.approx(mean / std * math.sqrt(365))


def test_degenerate_metrics() -> None:
    m = compute_metrics(1000.0, 1000.0, [], [])
    assert m.trades == 0 and m.win_rate is None and m.profit_factor is None and m.sharpe is None
    assert m.max_drawdown == 0.0
    assert compute_metrics(1000.0, 1100.0, [_trade(100, 1100)], []).profit_factor is None  # no losses
    assert sharpe_ratio([_day("2026-01-05", 10, 1010)]) is None
    assert max_drawdown(1000.0, [_trade(-100, 900), _trade(-100, 800)]) == pytest.approx(0.2)


def test_split_days_utc() -> None:
    day = 86_400_000
    ts = np.array([day - 5000, day - 1, day, day + 5000, 3 * day], dtype=np.int64)
    spans = split_days(ts)
    assert [(s.date, s.start, s.stop) for s in spans] == [("1970-01-01", 0, 2), ("1970-01-02", 2, 4),
                                                          ("1970-01-04", 4, 5)]
    assert split_days(np.array([], dtype=np.int64)) == []
