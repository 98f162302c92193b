"""Replay a scan table through the alpha engine, day by day (bible §13.1, §17.3).

The runner is the backtest's only wiring: it derives the volatility gate from the scan
table's own prices (the same trailing definition the live trader uses), splits the bars
into UTC days and hands each day to `NDAlphaEngine.process_day`. Everything the engine
needs arrives as arrays; it never touches a file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

import numpy as np

from dolphin.backtest.compile_clock import CompileClock
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
from dolphin.scan.volatility import VolGate

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
    compile_in_run_seconds: float = 0.0   # numba compiles the warm-up missed, taken out of engine_seconds
    source: str = ""
    stages: dict[str, float] = field(default_factory=dict)   # seconds per stage outside the engine
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
            "compile_in_run_seconds": self.compile_in_run_seconds,
            "stage_seconds": self.stages,
            "open_position_at_end": self.open_position,
            "days": self.days,
            **self.extra,
        }


def _day_bounds_ms(date_from: str | None, date_to: str | None) -> tuple[float | None, float | None]:
    """The inclusive UTC date range as [from_ms, end_ms) (None = open), checked."""
    start_d, stop_d = _parse_date(date_from, "--from"), _parse_date(date_to, "--to")
    if start_d and stop_d and stop_d < start_d:
        raise UsageError(f"--to {date_to} is before --from {date_from}")
    lo = datetime(start_d.year, start_d.month, start_d.day, tzinfo=UTC).timestamp() * 1000 if start_d else None
    hi = ((datetime(stop_d.year, stop_d.month, stop_d.day, tzinfo=UTC).timestamp() + 86_400) * 1000
          if stop_d else None)
    return lo, hi


def select_span(data: ScanTable, date_from: str | None, date_to: str | None) -> tuple[int, int]:
    """Bar range [start, stop) covering the inclusive UTC date range."""
    plan = SpanPlan.scan([(data.ts, data.scan_number)], date_from=date_from, date_to=date_to)
    return plan.start, plan.stop


@dataclass(frozen=True, slots=True)
class SpanPlan:
    """Which rows of a scan stream a replay reads, warms on and trades, from the ts and scan-number columns only.

    Why a plan: a streamed replay must know its span before it reads the data (to stop
    early, to size the progress bars, to fail on an empty range before any work), and a
    whole-table replay must pick exactly the same rows. Row positions are global (0 =
    the stream's first row). On sorted columns (ts always is; scan numbers are in every
    built table and archive) the counts below equal ``np.searchsorted`` on the whole
    columns.
    """

    rows: int          # rows in the stream
    start: int         # first row of the date range
    stop: int          # one past its last row (and at most the last scan ≤ until_scan)
    trade_from: int    # first traded row (earlier rows of the span only warm the engine)
    numbered: bool     # strictly increasing scan numbers: they are the engine's bar indices
    days: int          # UTC days in [start, stop)

    @classmethod
    def scan(cls, columns: Iterable[tuple[np.ndarray, np.ndarray]], *, date_from: str | None = None,
             date_to: str | None = None, trade_from_scan: int | None = None,
             until_scan: int | None = None) -> SpanPlan:
        """Count the rows of ``columns`` ((ts, scan_number) pieces, in order) against the range."""
        lo, hi = _day_bounds_ms(date_from, date_to)
        rows = before_lo = before_hi = upto_until = before_trade = days = 0
        numbered = True
        last_scan: int | None = None
        last_day: int | None = None
        for ts, scan_number in columns:
            n = int(ts.shape[0])
            if n == 0:
                continue
            if lo is not None:
                before_lo += int(np.count_nonzero(ts < lo))
            if hi is not None:
                before_hi += int(np.count_nonzero(ts < hi))
            if until_scan is not None:
                upto_until += int(np.count_nonzero(scan_number <= until_scan))
            if trade_from_scan is not None:
                before_trade += int(np.count_nonzero(scan_number < trade_from_scan))
            if numbered:
                numbered = bool(np.all(np.diff(scan_number) > 0)) and (last_scan is None
                                                                        or int(scan_number[0]) > last_scan)
            last_scan = int(scan_number[-1])
            in_range = np.ones(n, dtype=bool)
            if lo is not None:
                in_range &= ts >= lo
            if hi is not None:
                in_range &= ts < hi
            day_no = ts[in_range] // MS_PER_DAY
            if day_no.shape[0]:
                days += int(np.count_nonzero(np.diff(day_no))) + int(last_day is None or int(day_no[0]) != last_day)
                last_day = int(day_no[-1])
            rows += n
        if rows == 0:
            raise DataError("scan data has no bars")
        start = before_lo if lo is not None else 0
        stop = before_hi if hi is not None else rows
        if stop <= start:
            raise DataError(f"no bars between {date_from or 'the start'} and {date_to or 'the end'}")
        if until_scan is not None:
            stop = min(stop, upto_until)
        trade_from = start if trade_from_scan is None else before_trade
        if stop <= start or (trade_from_scan is not None and trade_from >= stop):
            raise DataError(f"no scans to trade between scan {trade_from_scan or 'the start'} "
                            f"and {until_scan or 'the end'}")
        return cls(rows=rows, start=start, stop=stop, trade_from=trade_from, numbered=rows > 1 and numbered,
                   days=days)


class ScanSource(Protocol):
    """Scan rows in order, in pieces of any size: a table in memory, a Parquet file, a generated market.

    ``stages`` holds the seconds the source has spent per stage of its own (read,
    generate, scan), for the report.
    """

    stages: dict[str, float]

    @property
    def assets(self) -> tuple[str, ...]: ...

    def keys(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ts, scan_number) of every row, in pieces (for the span plan)."""
        ...

    def pieces(self, stop: int) -> Iterator[ScanTable]:
        """The rows in order, in pieces, at least up to row ``stop`` (later rows may be left unread)."""
        ...


class TableSource:
    """A scan table already in memory: one piece, every row."""

    def __init__(self, table: ScanTable, stages: dict[str, float] | None = None) -> None:
        self.table = table
        self.stages = dict(stages or {})

    @property
    def assets(self) -> tuple[str, ...]:
        return self.table.assets

    def keys(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield self.table.ts, self.table.scan_number

    def pieces(self, stop: int) -> Iterator[ScanTable]:
        yield self.table


#: progress(stage, done, total, seconds): stage is "engine" (days) or a source's stage (its own units);
#: seconds is the time spent in that stage so far
ProgressFn = Callable[[str, int, int, float], None]


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


def _writable(a: np.ndarray, dtype: type) -> np.ndarray:
    """A C-contiguous, writable array: the kernel signature the warm-up compiled (read-only Arrow buffers
    would make numba compile a second one inside the engine timer)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


class _DayBuffer:
    """The rows of the UTC day being gathered (a day may span pieces of the stream)."""

    def __init__(self) -> None:
        self.date: str | None = None
        self.first_row = 0
        self.parts: list[tuple[ScanTable, np.ndarray, np.ndarray]] = []   # (rows, vol_ok, bar_idx)

    def take(self) -> tuple[str, int, ScanTable, np.ndarray, np.ndarray]:
        assert self.date is not None
        rows = ScanTable.concat([p[0] for p in self.parts])
        vol_ok = np.concatenate([p[1] for p in self.parts]) if len(self.parts) > 1 else self.parts[0][1]
        bar_idx = np.concatenate([p[2] for p in self.parts]) if len(self.parts) > 1 else self.parts[0][2]
        out = (self.date, self.first_row, rows, vol_ok, bar_idx)
        self.date, self.parts = None, []
        return out


def run_backtest(data: ScanTable, cfg: StrategyConfig, *, date_from: str | None = None, date_to: str | None = None,
                 acb_source: ExternalFactorsSource | None = None, ob_provider: OBProvider | None = None,
                 forewarner: Forewarner | None = None, on_day: Callable[[DayResult], None] | None = None,
                 source: str = "", trade_from_scan: int | None = None,
                 until_scan: int | None = None, session: SessionInputs | None = None) -> BacktestResult:
    """Replay ``data`` (optionally a date range of it) and compute the metrics (see `replay`)."""
    return replay(TableSource(data), cfg, date_from=date_from, date_to=date_to, acb_source=acb_source,
                  ob_provider=ob_provider, forewarner=forewarner, on_day=on_day, source=source,
                  trade_from_scan=trade_from_scan, until_scan=until_scan, session=session)


def replay(scans: ScanSource, cfg: StrategyConfig, *, date_from: str | None = None, date_to: str | None = None,
           acb_source: ExternalFactorsSource | None = None, ob_provider: OBProvider | None = None,
           forewarner: Forewarner | None = None, on_day: Callable[[DayResult], None] | None = None,
           source: str = "", trade_from_scan: int | None = None, until_scan: int | None = None,
           session: SessionInputs | None = None, progress: ProgressFn | None = None,
           plan: SpanPlan | None = None) -> BacktestResult:
    """Replay the rows of ``scans`` (optionally a date range of them) day by day and compute the metrics.

    The stream is read piece by piece and each UTC day is run as soon as it is complete:
    what is carried from day to day is the engine's state and the volatility gate's (and,
    inside a generating source, the scan windows) — never the market. The days, blocks
    and engine calls are the same whatever the pieces are, so a streamed replay equals
    the replay of the whole table in memory bit for bit.

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
    if plan is None:
        plan = SpanPlan.scan(scans.keys(), date_from=date_from, date_to=date_to, trade_from_scan=trade_from_scan,
                             until_scan=until_scan)
    assets = list(scans.assets)
    ref_col = assets.index(cfg.extras.vol_reference if cfg.extras.vol_reference in assets else assets[0])
    gate = VolGate(cfg.extras.vol_window, cfg.extras.vol_percentile, cfg.extras.vol_calib_bars)
    clock = CompileClock()
    with clock:
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
        timing = {"engine": 0.0, "compile_in_run": 0.0}

        def run_day(date: str, first_row: int, rows: ScanTable, vol_ok: np.ndarray, bar_idx: np.ndarray) -> None:
            columns: Columns = (_writable(bar_idx, np.int64), _writable(rows.ts, np.int64),
                                _writable(rows.vel_div, np.float64),
                                _writable(rows.v750_lambda_max_velocity, np.float64), _writable(vol_ok, np.bool_),
                                _writable(rows.prices, np.float64))
            n = rows.rows
            compiled = clock.seconds
            t0 = time.perf_counter()
            engine.begin_day(date)
            cut = min(max(plan.trade_from - first_row, 0), n)
            if cut > 0:
                engine.run_block(*_rows(columns, 0, cut), trade=False)
            if n > cut and session is None:
                engine.run_block(*_rows(columns, cut, n))
            elif n > cut and session is not None:
                _replay_steps(engine, session, rows.scan_number, columns, cut, n)
            day = engine.end_day()
            in_run = clock.seconds - compiled
            timing["engine"] += time.perf_counter() - t0 - in_run
            timing["compile_in_run"] += in_run
            days.append(day)
            if progress is not None:
                progress("engine", len(days), plan.days, timing["engine"])
            if on_day is not None:
                on_day(day)

        pending = _DayBuffer()
        row = 0
        span_start_ms = span_end_ms = 0
        for piece in scans.pieces(plan.stop):
            n = piece.rows
            _, vol_ok = gate.update_block(piece.prices[:, ref_col])
            if row <= plan.trade_from < row + n:
                span_start_ms = int(piece.ts[plan.trade_from - row])
            if row < plan.stop <= row + n:
                span_end_ms = int(piece.ts[plan.stop - 1 - row])
            lo, hi = min(max(plan.start - row, 0), n), min(max(plan.stop - row, 0), n)
            if lo < hi:
                part = piece.rows_between(lo, hi)
                bar_idx = (part.scan_number.astype(np.int64) if plan.numbered
                           else np.arange(row + lo, row + hi, dtype=np.int64))
                for span in split_days(part.ts):
                    if pending.date is not None and pending.date != span.date:
                        run_day(*pending.take())
                    if pending.date is None:
                        pending.date, pending.first_row = span.date, row + lo + span.start
                    pending.parts.append((part.rows_between(span.start, span.stop), vol_ok[lo + span.start:lo + span.stop],
                                          bar_idx[span.start:span.stop]))
            row += n
            if row >= plan.stop:
                break
        if pending.date is not None:
            run_day(*pending.take())
    if row < plan.stop:
        raise DataError(f"the scan data ended at row {row}, before the planned span's end (row {plan.stop})")
    metrics = compute_metrics(cfg.initial_capital, engine.capital, engine.trades, days)
    return BacktestResult(config=cfg, assets=assets, days=days, trades=list(engine.trades),
                          metrics=metrics, span_start_ms=span_start_ms, span_end_ms=span_end_ms,
                          bars=plan.stop - plan.trade_from, open_position=engine.open_position,
                          engine_seconds=timing["engine"], compile_seconds=compile_seconds,
                          compile_in_run_seconds=timing["compile_in_run"], source=source,
                          stages={**scans.stages, "engine": timing["engine"]})
