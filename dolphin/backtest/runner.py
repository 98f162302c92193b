"""Replay a scan table through the alpha engine, day by day (bible §13.1, §17.3).

The runner is the backtest's only wiring: it derives the volatility gate from the scan
table's own prices (the same trailing definition the live trader uses), splits the bars
into UTC days and hands each day to `NDAlphaEngine.process_day`. Everything the engine
needs arrives as arrays; it never touches a file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

from dolphin.backtest.metrics import Metrics, compute_metrics
from dolphin.backtest.session import SessionInputs, StepFlags, VenueFill
from dolphin.config.champion import champion_hash
from dolphin.engine.acb import AdaptiveCircuitBreaker, ExternalFactorsSource
from dolphin.engine.engine import NDAlphaEngine, compile_kernel
from dolphin.engine.mc_gate import Forewarner, MCReport
from dolphin.engine.ob import OBProvider
from dolphin.engine.params import StrategyConfig
from dolphin.engine.trades import ClosedTrade, DayResult, OpenPosition
from dolphin.errors import DataError, UsageError
from dolphin.execution.manual import ALL
from dolphin.execution.ob_inputs import recorded_provider
from dolphin.scan.table import ScanTable
from dolphin.scan.volatility import vol_regime_ok

MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True)
class DaySpan:
    date: str
    start: int
    stop: int


def split_days(ts_ms: np.ndarray) -> list[DaySpan]:
    """Contiguous runs of bars sharing a UTC date (ts sorted)."""
    if len(ts_ms) == 0:
        return []
    day_no = ts_ms // MS_PER_DAY
    cuts = np.flatnonzero(np.diff(day_no)) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [len(ts_ms)]])
    return [DaySpan(datetime.fromtimestamp(int(day_no[s]) * 86_400, UTC).strftime("%Y-%m-%d"), int(s), int(e))
            for s, e in zip(starts, stops)]


def _parse_date(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag}: expected a date like 2026-01-31, got {text!r}") from None


@dataclass(slots=True)
class BacktestResult:
    config: StrategyConfig
    assets: list[str]
    days: list[DayResult]
    trades: list[ClosedTrade]
    metrics: Metrics
    span_start_ms: int
    span_end_ms: int
    bars: int
    open_position: OpenPosition | None
    engine_seconds: float
    compile_seconds: float = 0.0
    source: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """The JSON summary: config name and hash, data span, metrics, per-day rows."""
        cfg = self.config
        return {
            "config": {"name": cfg.name, "hash": champion_hash(cfg.frozen_params()), "direction": cfg.direction},
            "source": self.source,
            "span": {
                "start": datetime.fromtimestamp(self.span_start_ms / 1000, UTC).isoformat(),
                "end": datetime.fromtimestamp(self.span_end_ms / 1000, UTC).isoformat(),
                "days": len(self.days), "bars": self.bars, "assets": len(self.assets),
            },
            "metrics": self.metrics,
            "engine_seconds": self.engine_seconds,
            "compile_seconds": self.compile_seconds,
            "open_position_at_end": self.open_position,
            "days": self.days,
            **self.extra,
        }


def select_span(data: ScanTable, date_from: str | None, date_to: str | None) -> tuple[int, int]:
    """Bar range [start, stop) covering the inclusive UTC date range."""
    start_d, stop_d = _parse_date(date_from, "--from"), _parse_date(date_to, "--to")
    if start_d and stop_d and stop_d < start_d:
        raise UsageError(f"--to {date_to} is before --from {date_from}")
    start, stop = 0, len(data.ts)
    if start_d:
        start = int(np.searchsorted(data.ts, datetime(start_d.year, start_d.month, start_d.day,
                                                          tzinfo=UTC).timestamp() * 1000))
    if stop_d:
        end_ms = (datetime(stop_d.year, stop_d.month, stop_d.day, tzinfo=UTC).timestamp() + 86_400) * 1000
        stop = int(np.searchsorted(data.ts, end_ms))
    if stop <= start:
        raise DataError(f"no bars between {date_from or 'the start'} and {date_to or 'the end'}")
    return start, stop


Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _rows(columns: Columns, start: int, stop: int) -> Columns:
    """Rows [start, stop) of the engine's input columns (bar_idx, ts, vel_div, v750, vol_ok, prices)."""
    bar_idx, ts, vel_div, v750, vol_ok, prices = columns
    return (bar_idx[start:stop], ts[start:stop], vel_div[start:stop], v750[start:stop], vol_ok[start:stop],
            prices[start:stop])


def _replay_steps(engine: NDAlphaEngine, session: SessionInputs, scan_numbers: np.ndarray,
                  columns: Columns, start: int, stop: int) -> None:
    """Rows [start, stop) with each step's journaled flags, in blocks of identical flags."""
    missing = StepFlags(trade=False, acb=None, posture=engine.posture, kill_switch=False)
    i = start
    while i < stop:
        flags = session.steps.get(int(scan_numbers[i]), missing)
        j = i + 1
        while (j < stop and int(scan_numbers[j - 1]) not in session.fills
               and flags.same_regime(session.steps.get(int(scan_numbers[j]), missing))):
            j += 1
        if flags.acb is not None:
            engine.update_acb_boost(*flags.acb)
        if flags.mc is not None:
            engine.update_mc(MCReport(*flags.mc))
        if flags.manual_exit is not None:
            engine.request_exit(None if flags.manual_exit == ALL else flags.manual_exit)
        engine.set_posture(flags.posture)
        engine.set_kill_switch(flags.kill_switch)
        engine.run_block(*_rows(columns, i, j), trade=flags.trade)
        if session.venue_truth:
            _apply_fills(engine, session.fills.get(int(scan_numbers[j - 1]), ()))
        missing = StepFlags(trade=False, acb=None, posture=flags.posture, kill_switch=flags.kill_switch)
        i = j


def _apply_fills(engine: NDAlphaEngine, fills: Sequence[VenueFill]) -> None:
    """The venue's fills of one step, in journal order, as the live trader applied them."""
    for fill in fills:
        if fill.kind == "cash":
            engine.apply_cash(fill.amount)
        elif fill.kind == "void":
            engine.void_entry(fill.trade_id)
        elif fill.kind == "exit":
            last = engine.trades[-1] if engine.trades else None
            if last is None or last.trade_id != fill.trade_id:
                raise DataError(f"journal replay diverged: an exit fill of trade {fill.trade_id}, but the replay's "
                                f"last trade is {last.trade_id if last else 'none'}")
            engine.apply_exit_fill(last, fill.price, fill.fee)
        else:
            pos = engine.open_position
            if pos is None or pos.trade_id != fill.trade_id:
                raise DataError(f"journal replay diverged: an entry fill of trade {fill.trade_id}, but the replay "
                                f"holds {pos.trade_id if pos else 'no position'}")
            engine.apply_entry_fill(fill.trade_id, fill.price, fill.quantity, fill.fee)


def run_backtest(data: ScanTable, cfg: StrategyConfig, *, date_from: str | None = None, date_to: str | None = None,
                 acb_source: ExternalFactorsSource | None = None, ob_provider: OBProvider | None = None,
                 forewarner: Forewarner | None = None, on_day: Callable[[DayResult], None] | None = None,
                 source: str = "", trade_from_scan: int | None = None,
                 until_scan: int | None = None, session: SessionInputs | None = None) -> BacktestResult:
    """Replay ``data`` (optionally a date range of it) and compute the metrics.

    ``trade_from_scan`` replays a live trader's session: scans before it only warm the
    engine (no trading), as a fresh trader warms on the archive before its first live
    scan; ``until_scan`` stops after that scan. ``session`` (from the trader's journal)
    also replays what the archive does not hold: which scans were traded, the ACB
    updates, the posture and the kill switch of each step; it sets the scan range unless
    one is given.
    """
    if session is not None:
        trade_from_scan = session.first_scan if trade_from_scan is None else trade_from_scan
        until_scan = session.last_scan if until_scan is None else until_scan
    if data.rows == 0:
        raise DataError("scan data has no bars")
    assets = list(data.assets)
    ref = cfg.extras.vol_reference if cfg.extras.vol_reference in assets else assets[0]
    _, vol_ok = vol_regime_ok(data.prices[:, assets.index(ref)], cfg.extras.vol_window,
                              cfg.extras.vol_percentile, cfg.extras.vol_calib_bars)
    start, stop = select_span(data, date_from, date_to)
    if until_scan is not None:
        stop = min(stop, int(np.searchsorted(data.scan_number, until_scan, side="right")))
    trade_from = start if trade_from_scan is None else int(np.searchsorted(data.scan_number, trade_from_scan))
    if stop <= start or (trade_from_scan is not None and trade_from >= stop):
        raise DataError(f"no scans to trade between scan {trade_from_scan or 'the start'} and {until_scan or 'the end'}")
    t0 = time.perf_counter()
    compile_kernel()
    compile_seconds = time.perf_counter() - t0
    engine_cfg = cfg.with_venue_friction() if session is not None and session.venue_truth else cfg
    if session is not None and ob_provider is None:
        # a trader's engine always runs with OB (journaled per step, neutral where it had none)
        ob_provider = recorded_provider(session.ob_steps, assets)
    engine = NDAlphaEngine(engine_cfg, assets, acb=AdaptiveCircuitBreaker(cfg.acb, acb_source),
                           ob_provider=ob_provider, forewarner=forewarner)
    days: list[DayResult] = []
    engine_seconds = 0.0
    numbered = data.rows > 1 and bool(np.all(np.diff(data.scan_number) > 0))
    bar_idx = data.scan_number.astype(np.int64) if numbered else np.arange(data.rows, dtype=np.int64)
    columns: Columns = (bar_idx, data.ts, data.vel_div, data.v750_lambda_max_velocity, vol_ok, data.prices)
    for span in split_days(data.ts[start:stop]):
        s, e = start + span.start, start + span.stop
        t0 = time.perf_counter()
        engine.begin_day(span.date)
        cut = min(max(trade_from, s), e)
        if cut > s:
            engine.run_block(*_rows(columns, s, cut), trade=False)
        if e > cut and session is None:
            engine.run_block(*_rows(columns, cut, e))
        elif e > cut and session is not None:
            _replay_steps(engine, session, data.scan_number, columns, cut, e)
        day = engine.end_day()
        engine_seconds += time.perf_counter() - t0
        days.append(day)
        if on_day is not None:
            on_day(day)
    metrics = compute_metrics(cfg.initial_capital, engine.capital, engine.trades, days)
    return BacktestResult(config=cfg, assets=assets, days=days, trades=list(engine.trades),
                          metrics=metrics, span_start_ms=int(data.ts[trade_from]), span_end_ms=int(data.ts[stop - 1]),
                          bars=stop - trade_from, open_position=engine.open_position, engine_seconds=engine_seconds,
                          compile_seconds=compile_seconds, source=source)
