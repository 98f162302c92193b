"""The report's series against hand-computed values: equity, drawdown, reconstruction, marks, daily PnL."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.backtest.metrics import compute_metrics, max_drawdown, pnl_groups
from dolphin.backtest.report_data import (
    ReportData,
    VelDivSeries,
    calendar,
    curve,
    drawdowns,
    equity_curve,
    equity_from_recent,
    merge_points,
    trade_marks,
)
from dolphin.engine.trades import ClosedTrade

pytestmark = [pytest.mark.finance_fuzz]

H = 3_600_000
DAY = 86_400_000
T0 = 1_775_347_200_000   # 2026-04-05 00:00 UTC


def _trade(tid: int, pnl: float, capital_after: float, exit_ts: int, *, asset: str = "BTCUSDT",
           reason: str = "FIXED_TP", vd: float = -0.03) -> ClosedTrade:
    return ClosedTrade(trade_id=tid, asset=asset, side="SHORT", entry_bar=tid * 10, entry_ts=exit_ts - H,
                       entry_price=100.0, exit_bar=tid * 10 + 5, exit_ts=exit_ts, exit_price=99.0, notional=1000.0,
                       leverage=1.0, fraction=0.1, pnl=pnl, pnl_pct=0.01, entry_fee=0.5, exit_fee=0.5,
                       exit_reason=reason, bars_held=5, bucket=2, vel_div_entry=vd, confidence=0.6,
                       capital_after=capital_after)


TRADES = [_trade(1, 100.0, 1100.0, T0 + 2 * H), _trade(2, -50.0, 1050.0, T0 + 5 * H, reason="MAX_HOLD"),
          _trade(3, -150.0, 900.0, T0 + DAY + H, asset="ETHUSDT", reason="MAX_HOLD"),
          _trade(4, 200.0, 1100.0, T0 + DAY + 3 * H, asset="ETHUSDT")]


def test_equity_curve_and_drawdown_match_the_metrics() -> None:
    c = equity_curve(1000.0, TRADES, T0)
    assert c.ts_ms == [T0, T0 + 2 * H, T0 + 5 * H, T0 + DAY + H, T0 + DAY + 3 * H]
    assert c.equity == [1000.0, 1100.0, 1050.0, 900.0, 1100.0]
    assert c.drawdown == pytest.approx([0.0, 0.0, 50 / 1100, 200 / 1100, 0.0])
    assert c.max_drawdown == max_drawdown(1000.0, TRADES) == compute_metrics(1000.0, 1100.0, TRADES, []).max_drawdown


def test_curve_drops_repeats_and_non_finite_values() -> None:
    c = curve([(1, 10.0), (2, 10.0), (3, float("nan")), (4, 8.0), (5, 8.0), (6, 12.0)])
    assert (c.ts_ms, c.equity) == ([1, 4, 6], [10.0, 8.0, 12.0])
    assert c.drawdown == pytest.approx([0.0, 0.2, 0.0])
    assert drawdowns([]) == [] and drawdowns([-5.0, -1.0]) == [0.0, 0.0]


def test_backward_reconstruction_from_the_capital_now() -> None:
    points = equity_from_recent(1100.0, list(reversed(TRADES)))   # order of the list does not matter
    assert points == [(T0 + 2 * H - 1, 1000.0), (T0 + 2 * H, 1100.0), (T0 + 5 * H, 1050.0),
                      (T0 + DAY + H, 900.0), (T0 + DAY + 3 * H, 1100.0)]
    assert equity_from_recent(500.0, []) == []
    live = [(T0 + 6 * H, 1050.0), (T0 + DAY + 3 * H, 1100.0)]
    assert merge_points(points, live) == points[:3] + live       # the reconstruction only before live samples
    assert merge_points(points, []) == points


def test_vel_div_lookup_decimation_and_marks() -> None:
    ts = T0 + np.arange(10_000, dtype=np.int64) * 5000
    vd = np.sin(np.arange(10_000) / 50.0) * 0.02
    vd[1234] = -0.5                                              # a spike the decimation must keep
    series = VelDivSeries.of(ts, np.where(np.arange(10_000) == 7, np.nan, vd))
    assert len(series) == 9_999                                  # NaN dropped
    assert series.at(int(ts[100]) + 4999) == vd[100] and series.at(T0 - 1) is None
    x, y = series.decimated(500)
    assert len(x) <= 1000 and y.min() == -0.5 and bool(np.all(np.diff(x) > 0))
    trades = [_trade(1, 1.0, 1.0, int(ts[600]), vd=-0.031), _trade(2, 1.0, 1.0, int(ts[900]) + 1, vd=float("nan"))]
    marks = trade_marks(trades, series)
    assert marks.entry_ts == [int(ts[600]) - H] and marks.entry_vd == [-0.031]
    assert marks.exit_ts == [int(ts[600]), int(ts[900]) + 1] and marks.exit_vd == [vd[600], vd[900]]
    assert trade_marks(trades, None).exit_ts == []


def test_daily_pnl_covers_every_day_of_the_span() -> None:
    assert calendar(T0 + H, T0 + 2 * DAY) == ["2026-04-05", "2026-04-06", "2026-04-07"]
    data = ReportData(title="t", source="s", strategy="blue", initial_capital=1000.0, final_capital=1100.0,
                      metrics=compute_metrics(1000.0, 1100.0, TRADES, []), trades=TRADES,
                      equity=equity_curve(1000.0, TRADES, T0), days=calendar(T0, T0 + 2 * DAY), vel_div=None)
    assert data.daily_pnl() == [("2026-04-05", 50.0, 2), ("2026-04-06", 50.0, 2), ("2026-04-07", 0.0, 0)]
    assert data.per_pair == pnl_groups(TRADES, "asset") and data.per_exit_reason == pnl_groups(TRADES, "exit_reason")
