"""Backtest performance metrics from closed trades and daily results.

Definitions (stable; docs/backtest.md):
- ROI: (final capital − initial) / initial.
- Profit factor: gross profit / gross loss of net trade PnL (None when there is no loss).
- Sharpe: mean / std (ddof 1) of daily returns (day PnL / capital at the day's start), × √365
  (crypto trades every day); None with fewer than two days or zero variance.
- Max drawdown: largest peak-to-trough fall of the equity curve sampled at each trade close.
- Win rate: share of trades with net PnL > 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import msgspec

from dolphin.engine.trades import ClosedTrade, DayResult

DAYS_PER_YEAR = 365


class Metrics(msgspec.Struct, frozen=True):
    initial_capital: float
    final_capital: float
    roi: float
    profit_factor: float | None
    sharpe: float | None
    max_drawdown: float
    win_rate: float | None
    trades: int
    wins: int
    losses: int
    gross_profit: float
    gross_loss: float
    fees: float
    avg_pnl: float | None
    avg_bars_held: float | None
    exit_reasons: dict[str, int]
    days: int


def max_drawdown(initial_capital: float, trades: Sequence[ClosedTrade]) -> float:
    peak = initial_capital
    worst = 0.0
    for t in trades:
        equity = t.capital_after
        peak = max(peak, equity)
        if peak > 0:
            worst = max(worst, (peak - equity) / peak)
    return worst


def sharpe_ratio(days: Sequence[DayResult]) -> float | None:
    returns = []
    for d in days:
        start = d.capital - d.pnl
        if start > 0:
            returns.append(d.pnl / start)
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(DAYS_PER_YEAR)


def compute_metrics(initial_capital: float, final_capital: float, trades: Sequence[ClosedTrade],
                    days: Sequence[DayResult]) -> Metrics:
    wins = [t for t in trades if t.pnl > 0]
    losses = [t for t in trades if t.pnl <= 0]
    gross_profit = sum(t.pnl for t in wins)
    gross_loss = -sum(t.pnl for t in losses)
    n = len(trades)
    return Metrics(
        initial_capital=initial_capital,
        final_capital=final_capital,
        roi=(final_capital - initial_capital) / initial_capital,
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else None,
        sharpe=sharpe_ratio(days),
        max_drawdown=max_drawdown(initial_capital, trades),
        win_rate=len(wins) / n if n else None,
        trades=n,
        wins=len(wins),
        losses=len(losses),
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        fees=sum(t.entry_fee + t.exit_fee for t in trades),
        avg_pnl=sum(t.pnl for t in trades) / n if n else None,
        avg_bars_held=sum(t.bars_held for t in trades) / n if n else None,
        exit_reasons=dict(Counter(t.exit_reason for t in trades).most_common()),
        days=len(days),
    )


# ---------------------------------------------------------------- PnL by group (per day, pair, exit reason)
class PnlGroup(msgspec.Struct, frozen=True):
    """The trades of one group: what Freqtrade's /daily and /performance answer."""

    key: str
    trades: int
    wins: int
    pnl: float
    fees: float
    win_rate: float
    avg_pnl: float
    avg_pnl_pct: float
    best: float
    worst: float


GROUPS = ("day", "asset", "exit_reason")


def _group_key(t: ClosedTrade, by: str) -> str:
    if by == "day":
        from datetime import UTC, datetime

        return datetime.fromtimestamp(t.exit_ts / 1000, UTC).strftime("%Y-%m-%d")
    if by == "asset":
        return t.asset
    if by == "exit_reason":
        return t.exit_reason
    raise ValueError(f"group by one of {', '.join(GROUPS)}, not {by!r}")


def pnl_groups(trades: Sequence[ClosedTrade], by: str) -> list[PnlGroup]:
    """Net PnL, fees, win rate and extremes per group; days in date order, the others by PnL, best first."""
    groups: dict[str, list[ClosedTrade]] = {}
    for t in trades:
        groups.setdefault(_group_key(t, by), []).append(t)
    out = []
    for key, ts in groups.items():
        pnls = [t.pnl for t in ts]
        wins = sum(1 for p in pnls if p > 0)
        out.append(PnlGroup(key=key, trades=len(ts), wins=wins, pnl=math.fsum(pnls),
                            fees=math.fsum(t.entry_fee + t.exit_fee for t in ts), win_rate=wins / len(ts),
                            avg_pnl=math.fsum(pnls) / len(ts), avg_pnl_pct=math.fsum(t.pnl_pct for t in ts) / len(ts),
                            best=max(pnls), worst=min(pnls)))
    if by == "day":
        return sorted(out, key=lambda g: g.key)
    return sorted(out, key=lambda g: (-g.pnl, g.key))
