"""Strategy health and decay: live rolling metrics as ratios of a backtest baseline (seed forex-crypto KB §02).

Pure: closed trades and a baseline in, metrics, gauges and a state out. The thresholds are
the KB's, in one place (docs/parity.md, "Strategy health"):

* probation until 20 closed trades (no evaluation);
* expectancy ratio (rolling 30 trades / baseline): < 0.7 watch, < 0.5 degrading, < 0.3 disabled;
* drawdown stress (live max drawdown / baseline max drawdown): > 1.2 watch, > 1.5 degrading,
  > 2.0 disabled; without a baseline drawdown the absolute fallback: > 10 % watch, > 20 % degrading;
* Sharpe ratio (rolling 30 days / baseline): < 0.7 watch — a warning only, never worse;
* decay gauges: ratio ≥ 0.8 good, 0.5–0.8 warn, < 0.5 bad.

Expectancy is the mean net return per trade on the capital it was taken with
(pnl / capital before the trade), not dollars: the backtest compounds from its own start
capital, so a dollar expectancy would compare position sizes, not edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from dolphin.backtest.metrics import DAYS_PER_YEAR, max_drawdown
from dolphin.config.champion import champion_hash
from dolphin.engine.trades import ClosedTrade
from dolphin.enums import GaugeLevel, HealthState

if TYPE_CHECKING:
    from dolphin.backtest.runner import BacktestResult

PROBATION_TRADES = 20
ROLLING_TRADES = 30
ROLLING_DAYS = 30
MIN_EXPECTANCY_TRADES = 15
MIN_SHARPE_DAYS = 10            # days with a non-zero result in the rolling window
EXPECTANCY_WATCH, EXPECTANCY_DEGRADING, EXPECTANCY_DISABLED = 0.7, 0.5, 0.3
DD_WATCH, DD_DEGRADING, DD_DISABLED = 1.2, 1.5, 2.0
DD_ABS_WATCH, DD_ABS_DEGRADING = 0.10, 0.20
SHARPE_WATCH = 0.7
GAUGE_GOOD, GAUGE_WARN = 0.8, 0.5
MS_PER_DAY = 86_400_000
MIN_SPAN_DAYS = 1.0 / 24        # a frequency over less than an hour says nothing
DD_GAUGE_CAP = 10.0             # a drawdown far below the baseline's: the gauge is full anyway


class Baseline(msgspec.Struct, frozen=True, kw_only=True):
    """A strategy's reference metrics from a backtest of the same config (the baseline registry's record)."""

    strategy: str
    config_hash: str
    registered_at: float               # wall clock
    source: str                        # what was replayed (scan archive, synthetic seed, …)
    span_start_ms: int
    span_end_ms: int
    trades: int
    days: float
    expectancy: float | None           # mean net return per trade on its capital
    sharpe: float | None               # daily, × √365 (dolphin.backtest.metrics)
    max_drawdown: float                # fraction of peak equity
    win_rate: float | None
    trades_per_day: float | None


def baseline_from_result(result: BacktestResult, *, registered_at: float) -> Baseline:
    """The baseline a backtest registers (`dolphin backtest … --register-baseline`)."""
    cfg = result.config
    m = result.metrics
    return baseline_of(cfg.name, champion_hash(cfg.frozen_params()), result.trades, m.sharpe, m.max_drawdown,
                       result.span_start_ms, result.span_end_ms, source=result.source or "backtest",
                       registered_at=registered_at)


def trade_return(t: ClosedTrade) -> float:
    """Net return of a trade on the capital it was taken with."""
    before = t.capital_after - t.pnl
    return t.pnl / before if before > 0 else 0.0


def expectancy(trades: Sequence[ClosedTrade]) -> float | None:
    return math.fsum(trade_return(t) for t in trades) / len(trades) if trades else None


def win_rate(trades: Sequence[ClosedTrade]) -> float | None:
    return sum(1 for t in trades if t.pnl > 0) / len(trades) if trades else None


def baseline_of(strategy: str, config_hash: str, trades: Sequence[ClosedTrade], sharpe: float | None,
                max_dd: float, span_start_ms: int, span_end_ms: int, *, source: str,
                registered_at: float) -> Baseline:
    """The baseline of one backtest's trades and metrics."""
    days = max((span_end_ms - span_start_ms) / MS_PER_DAY, MIN_SPAN_DAYS)
    return Baseline(strategy=strategy, config_hash=config_hash, registered_at=registered_at, source=source,
                    span_start_ms=span_start_ms, span_end_ms=span_end_ms, trades=len(trades), days=days,
                    expectancy=expectancy(trades), sharpe=sharpe, max_drawdown=max_dd, win_rate=win_rate(trades),
                    trades_per_day=len(trades) / days)


def rolling_sharpe(trades: Sequence[ClosedTrade], end_ms: int, days: int = ROLLING_DAYS,
                   min_days: int = MIN_SHARPE_DAYS) -> float | None:
    """Annualised Sharpe of the daily returns of the last `days` UTC days up to `end_ms` (days without a
    trade count as 0); None with fewer than `min_days` days with a result, or no variance."""
    if not trades:
        return None
    last_day = end_ms // MS_PER_DAY
    first_day = last_day - days + 1
    pnl = [0.0] * days
    start_capital = [math.nan] * days
    capital = trades[0].capital_after - trades[0].pnl
    for t in trades:                       # in close order: capital before each day is the last close before it
        day = t.exit_ts // MS_PER_DAY
        if day > last_day:
            break
        if day >= first_day:
            i = day - first_day
            if math.isnan(start_capital[i]):
                start_capital[i] = capital
            pnl[i] += t.pnl
        capital = t.capital_after
    returns = [p / c if not math.isnan(c) and c > 0 else 0.0 for p, c in zip(pnl, start_capital)]
    if sum(1 for r in returns if r != 0.0) < min_days:
        return None
    mean = math.fsum(returns) / days
    var = math.fsum((r - mean) ** 2 for r in returns) / (days - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(DAYS_PER_YEAR)


@dataclass(frozen=True, slots=True)
class LiveMetrics:
    """The live side of the gauges, from the closed trades evaluated (since the last reset)."""

    trades: int
    expectancy: float | None        # last 30 trades (None below 15)
    win_rate: float | None          # last 30 trades
    sharpe: float | None            # last 30 days
    max_drawdown: float             # all trades evaluated
    trades_per_day: float | None    # last 30 days (or since the start, if shorter)


def live_metrics(trades: Sequence[ClosedTrade], start_ms: int, end_ms: int) -> LiveMetrics:
    """Rolling metrics of `trades` (in close order) as of market time `end_ms`; `start_ms` is when evaluation began."""
    recent = list(trades[-ROLLING_TRADES:])
    window_start = max(start_ms, end_ms - ROLLING_DAYS * MS_PER_DAY)
    days = (end_ms - window_start) / MS_PER_DAY
    in_window = sum(1 for t in trades if t.exit_ts >= window_start)
    initial = trades[0].capital_after - trades[0].pnl if trades else 0.0
    return LiveMetrics(
        trades=len(trades),
        expectancy=expectancy(recent) if len(recent) >= MIN_EXPECTANCY_TRADES else None,
        win_rate=win_rate(recent),
        sharpe=rolling_sharpe(trades, end_ms),
        max_drawdown=max_drawdown(initial, trades) if trades else 0.0,
        trades_per_day=in_window / days if days >= MIN_SPAN_DAYS else None)


def _ratio(live: float | None, base: float | None) -> float | None:
    """live / base, None unless both are known and the baseline is positive (a non-positive baseline has no scale)."""
    if live is None or base is None or not base > 0 or not math.isfinite(live):
        return None
    return live / base


def gauge_level(ratio: float | None) -> GaugeLevel:
    """The KB's colour bands: ≥ 0.8 good, 0.5–0.8 warn, < 0.5 bad."""
    if ratio is None or math.isnan(ratio):
        return GaugeLevel.NONE
    return GaugeLevel.GOOD if ratio >= GAUGE_GOOD else GaugeLevel.WARN if ratio >= GAUGE_WARN else GaugeLevel.BAD


@dataclass(frozen=True, slots=True)
class Gauge:
    metric: str
    live: float | None
    baseline: float | None
    ratio: float | None

    @property
    def level(self) -> GaugeLevel:
        return gauge_level(self.ratio)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the metrics say now: a state, why, the ratios the state rests on, and the gauges."""

    state: HealthState
    reasons: tuple[str, ...]
    expectancy_ratio: float | None
    sharpe_ratio: float | None
    dd_stress: float | None
    gauges: tuple[Gauge, ...]


def _worse(a: HealthState, b: HealthState) -> HealthState:
    return a if a.rank >= b.rank else b


def evaluate(live: LiveMetrics, baseline: Baseline | None) -> Verdict:
    """The KB's state machine on one evaluation (stickiness is the guard's: see `dolphin.execution.strategy_guard`)."""
    base = baseline
    exp_ratio = _ratio(live.expectancy, base.expectancy if base else None)
    sharpe_ratio = _ratio(live.sharpe, base.sharpe if base else None)
    dd_stress = _ratio(live.max_drawdown, base.max_drawdown if base else None)
    dd_gauge = None
    if dd_stress is not None:   # inverted so that 1 is at baseline and lower is worse, like the others
        dd_gauge = DD_GAUGE_CAP if dd_stress == 0 else min(1.0 / dd_stress, DD_GAUGE_CAP)
    gauges = (
        Gauge("expectancy", live.expectancy, base.expectancy if base else None, exp_ratio),
        Gauge("sharpe", live.sharpe, base.sharpe if base else None, sharpe_ratio),
        Gauge("drawdown", live.max_drawdown, base.max_drawdown if base else None,
              dd_gauge),
        Gauge("win_rate", live.win_rate, base.win_rate if base else None,
              _ratio(live.win_rate, base.win_rate if base else None)),
        Gauge("frequency", live.trades_per_day, base.trades_per_day if base else None,
              _ratio(live.trades_per_day, base.trades_per_day if base else None)),
    )
    if live.trades < PROBATION_TRADES:
        return Verdict(HealthState.PROBATION, (f"{live.trades} of {PROBATION_TRADES} closed trades: on probation",),
                       exp_ratio, sharpe_ratio, dd_stress, gauges)
    state = HealthState.HEALTHY
    reasons: list[str] = []
    if exp_ratio is not None:
        level = (HealthState.DISABLED if exp_ratio < EXPECTANCY_DISABLED else
                 HealthState.DEGRADING if exp_ratio < EXPECTANCY_DEGRADING else
                 HealthState.WATCH if exp_ratio < EXPECTANCY_WATCH else HealthState.HEALTHY)
        if level is not HealthState.HEALTHY:
            reasons.append(f"expectancy ratio {exp_ratio:.2f} < {_threshold(level, 'expectancy')}")
        state = _worse(state, level)
    if dd_stress is not None:
        level = (HealthState.DISABLED if dd_stress > DD_DISABLED else
                 HealthState.DEGRADING if dd_stress > DD_DEGRADING else
                 HealthState.WATCH if dd_stress > DD_WATCH else HealthState.HEALTHY)
        if level is not HealthState.HEALTHY:
            reasons.append(f"drawdown stress {dd_stress:.2f} > {_threshold(level, 'drawdown')}")
        state = _worse(state, level)
    else:   # no baseline drawdown: the KB's absolute fallback
        dd = live.max_drawdown
        level = (HealthState.DEGRADING if dd > DD_ABS_DEGRADING else
                 HealthState.WATCH if dd > DD_ABS_WATCH else HealthState.HEALTHY)
        if level is not HealthState.HEALTHY:
            limit = DD_ABS_DEGRADING if level is HealthState.DEGRADING else DD_ABS_WATCH
            reasons.append(f"drawdown {dd * 100:.1f} % > {limit * 100:.0f} % (no baseline drawdown)")
        state = _worse(state, level)
    if sharpe_ratio is not None and sharpe_ratio < SHARPE_WATCH:
        reasons.append(f"Sharpe ratio {sharpe_ratio:.2f} < {SHARPE_WATCH} (a warning only)")
        state = _worse(state, HealthState.WATCH)
    return Verdict(state, tuple(reasons), exp_ratio, sharpe_ratio, dd_stress, gauges)


def _threshold(level: HealthState, metric: str) -> float:
    if metric == "expectancy":
        return {HealthState.WATCH: EXPECTANCY_WATCH, HealthState.DEGRADING: EXPECTANCY_DEGRADING,
                HealthState.DISABLED: EXPECTANCY_DISABLED}[level]
    return {HealthState.WATCH: DD_WATCH, HealthState.DEGRADING: DD_DEGRADING, HealthState.DISABLED: DD_DISABLED}[level]


__all__ = ["Baseline", "baseline_from_result", "Gauge", "LiveMetrics", "Verdict", "baseline_of", "evaluate", "expectancy", "gauge_level",
           "live_metrics", "rolling_sharpe", "trade_return", "win_rate"]
