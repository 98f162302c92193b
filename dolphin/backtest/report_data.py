"""What a report shows, as numbers: equity and drawdown, vel_div with the trades marked, daily PnL.

One model (`ReportData`) built two ways — from a backtest result and its scan table
(`backtest_report_data`), or from a trader's journal (`journal_report_data`: the books are
`read_books`, the equity curve the committed capital, vel_div the journaled scan inputs or
an archive) — so the HTML/PNG writer and the TUI charts never compute a series themselves.

Definitions (docs/backtest.md, "HTML report"):

- equity: capital after each trade close (a backtest: `ClosedTrade.capital_after`), or the
  capital of each committed step where it changed (a journal: funding and venue fills
  included); the first point is the capital before the first trade;
- drawdown: (running peak − equity) / running peak, the peak starting at the first point
  — its maximum over a backtest's curve is `Metrics.max_drawdown`;
- daily PnL: `pnl_groups(trades, "day")` (closed trades by their exit's UTC date), zero on
  the span's days without a close;
- entry markers: the entry bar's time and `vel_div_entry`; exit markers: the exit bar's time
  and the series' vel_div at (or just before) it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import msgspec
import numpy as np

from dolphin.backtest.metrics import Metrics, PnlGroup, compute_metrics, pnl_groups
from dolphin.engine.trades import ClosedTrade

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dolphin.backtest.runner import BacktestResult, ScanSource
    from dolphin.engine.params import StrategyConfig
    from dolphin.scan.table import ScanTable

Progress = Callable[[str, int, int], None]   # (stage, done, total); total 0 = unknown


class ClosedPnl(Protocol):
    """What a backward equity reconstruction needs of a closed trade (a ClosedTrade or a bus TradeView)."""

    @property
    def exit_ts(self) -> int: ...

    @property
    def pnl(self) -> float: ...


# ---------------------------------------------------------------- equity and drawdown
class EquityCurve(msgspec.Struct, frozen=True):
    """Equity over time (ms, market time) and its drawdown from the running peak (fractions ≥ 0)."""

    ts_ms: list[int]
    equity: list[float]
    drawdown: list[float]

    @property
    def max_drawdown(self) -> float:
        return max(self.drawdown, default=0.0)

    def __len__(self) -> int:
        return len(self.ts_ms)


def drawdowns(equity: Sequence[float]) -> list[float]:
    """(peak − equity) / peak with the peak running from the first value (0 where the peak is not positive)."""
    out: list[float] = []
    peak = -math.inf
    for value in equity:
        peak = max(peak, value)
        out.append((peak - value) / peak if peak > 0 else 0.0)
    return out


def curve(points: Iterable[tuple[int, float]]) -> EquityCurve:
    """An equity curve from (ts ms, capital) points in time order; a repeated capital adds no point."""
    ts: list[int] = []
    equity: list[float] = []
    for t, value in points:
        if not math.isfinite(value):
            continue
        if equity and value == equity[-1]:
            continue
        ts.append(int(t))
        equity.append(float(value))
    return EquityCurve(ts_ms=ts, equity=equity, drawdown=drawdowns(equity))


def equity_curve(initial_capital: float, trades: Sequence[ClosedTrade], start_ms: int | None = None) -> EquityCurve:
    """Capital before the first trade (at ``start_ms``, else the first entry), then after each close.

    Every close is a point, even one that left capital unchanged, so the curve has one
    point per trade plus the start — its drawdowns are exactly those `max_drawdown` walks.
    """
    start = start_ms if start_ms is not None else (trades[0].entry_ts if trades else 0)
    ts = [int(start), *(int(t.exit_ts) for t in trades)]
    equity = [float(initial_capital), *(float(t.capital_after) for t in trades)]
    return EquityCurve(ts_ms=ts, equity=equity, drawdown=drawdowns(equity))


def equity_from_recent(capital: float, trades: Sequence[ClosedPnl]) -> list[tuple[int, float]]:
    """Capital after each of the given closes (oldest first), reconstructed back from the capital now.

    What a screen can draw from a trader's published state alone (its capital and its last
    closed trades): the capital after trade k is today's capital minus the PnL of every
    later trade. The first point is the capital before the oldest trade, at its close time.
    """
    ordered = sorted(trades, key=lambda t: t.exit_ts)
    points: list[tuple[int, float]] = []
    level = float(capital)
    for t in reversed(ordered):
        points.append((int(t.exit_ts), level))
        level -= float(t.pnl)
    if ordered:
        points.append((int(ordered[0].exit_ts) - 1, level))
    points.reverse()
    return points


def merge_points(older: Sequence[tuple[int, float]], newer: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """``older`` up to the first of ``newer``, then ``newer``: a reconstruction seeded before live samples."""
    if not newer:
        return list(older)
    first = newer[0][0]
    return [p for p in older if p[0] < first] + list(newer)


# ---------------------------------------------------------------- vel_div and the trades on it
@dataclass(frozen=True)
class VelDivSeries:
    """vel_div per scan (ms, market time; sorted), NaN-free."""

    ts_ms: np.ndarray
    vel_div: np.ndarray
    source: str = ""

    @classmethod
    def of(cls, ts_ms: Sequence[int] | np.ndarray, vel_div: Sequence[float | None] | np.ndarray,
           source: str = "") -> VelDivSeries:
        ts = np.asarray(ts_ms, dtype=np.int64)
        vd = np.array([np.nan if v is None else v for v in vel_div], dtype=np.float64) \
            if not isinstance(vel_div, np.ndarray) else vel_div.astype(np.float64, copy=False)
        keep = np.isfinite(vd)
        ts, vd = ts[keep], vd[keep]
        order = np.argsort(ts, kind="stable")
        return cls(ts_ms=ts[order], vel_div=vd[order], source=source)

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])

    def at(self, ts_ms: int) -> float | None:
        """vel_div of the last scan at or before ``ts_ms`` (None before the first)."""
        i = int(np.searchsorted(self.ts_ms, ts_ms, side="right")) - 1
        return float(self.vel_div[i]) if i >= 0 else None

    def decimated(self, buckets: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """At most 2 × ``buckets`` points keeping each bucket's min and max (spikes survive a long span)."""
        n = len(self)
        if n <= 2 * buckets:
            return self.ts_ms, self.vel_div
        edges = np.linspace(0, n, buckets + 1).astype(np.int64)
        keep: list[int] = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            if hi <= lo:
                continue
            chunk = self.vel_div[lo:hi]
            a, b = lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk))
            keep.extend(sorted({a, b}))
        index = np.asarray(keep, dtype=np.int64)
        return self.ts_ms[index], self.vel_div[index]


class Marks(msgspec.Struct, frozen=True):
    """Entries and exits placed on the vel_div chart: times (ms) and vel_div values."""

    entry_ts: list[int]
    entry_vd: list[float]
    exit_ts: list[int]
    exit_vd: list[float]


def trade_marks(trades: Sequence[ClosedTrade], series: VelDivSeries | None) -> Marks:
    """Entries at their bar with the vel_div they were taken on; exits at the series' value at their bar."""
    entries = [(int(t.entry_ts), float(t.vel_div_entry)) for t in trades if math.isfinite(t.vel_div_entry)]
    exits: list[tuple[int, float]] = []
    if series is not None and len(series):
        for t in trades:
            vd = series.at(int(t.exit_ts))
            if vd is not None:
                exits.append((int(t.exit_ts), vd))
    return Marks(entry_ts=[e[0] for e in entries], entry_vd=[e[1] for e in entries],
                 exit_ts=[e[0] for e in exits], exit_vd=[e[1] for e in exits])


# ---------------------------------------------------------------- the report model
def day_of(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")


def calendar(start_ms: int, end_ms: int) -> list[str]:
    """Every UTC date from ``start_ms``'s to ``end_ms``'s, inclusive."""
    first = datetime.fromtimestamp(start_ms / 1000, UTC).date()
    last = datetime.fromtimestamp(end_ms / 1000, UTC).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


@dataclass
class ReportData:
    """Everything one report shows (built once, drawn by `report_charts`, laid out by `report_html`)."""

    title: str
    source: str
    strategy: str
    initial_capital: float
    final_capital: float
    metrics: Metrics
    trades: list[ClosedTrade]
    equity: EquityCurve
    days: list[str]                       # the span's UTC dates (daily bars, in order)
    vel_div: VelDivSeries | None
    threshold: float | None = None        # the strategy's entry gate (from its config)
    extreme: float | None = None
    direction: str = ""
    span_start_ms: int = 0
    span_end_ms: int = 0
    open_position: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def per_pair(self) -> list[PnlGroup]:
        return pnl_groups(self.trades, "asset")

    @property
    def per_exit_reason(self) -> list[PnlGroup]:
        return pnl_groups(self.trades, "exit_reason")

    def daily_pnl(self) -> list[tuple[str, float, int]]:
        """(date, net PnL, trades) for every day of the span, from `pnl_groups(trades, "day")`."""
        by_day = {g.key: g for g in pnl_groups(self.trades, "day")}
        dates = sorted(set(self.days) | set(by_day))
        return [(d, by_day[d].pnl if d in by_day else 0.0, by_day[d].trades if d in by_day else 0) for d in dates]

    def marks(self) -> Marks:
        return trade_marks(self.trades, self.vel_div)


def _gate(cfg: StrategyConfig | None) -> tuple[float | None, float | None, str]:
    if cfg is None:
        return None, None, ""
    return cfg.signal_threshold, cfg.signal_extreme, cfg.direction


def _position_text(result: BacktestResult) -> str | None:
    p = result.open_position
    return None if p is None else f"{p.side} {p.asset} @ {p.entry_price:g} (not counted)"


class VelDivTap:
    """A scan source that keeps the time and vel_div of each row it hands to the replay (16 bytes a scan).

    A streamed replay keeps no table (issue 19: memory flat with the span), yet a report's
    vel_div chart needs those two columns of the replayed span; this keeps only them.
    """

    def __init__(self, source: ScanSource) -> None:
        self.source = source
        self.stages = source.stages          # the same dict: the source's own stages show through
        self._ts: list[np.ndarray] = []
        self._vel_div: list[np.ndarray] = []

    @property
    def assets(self) -> tuple[str, ...]:
        return self.source.assets

    def keys(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self.source.keys()

    def pieces(self, stop: int) -> Iterator[ScanTable]:
        for piece in self.source.pieces(stop):
            self._ts.append(np.array(piece.ts, dtype=np.int64))
            self._vel_div.append(np.array(piece.vel_div, dtype=np.float64))
            yield piece

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(ts, vel_div) of every row handed out so far, in order."""
        if not self._ts:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        return np.concatenate(self._ts), np.concatenate(self._vel_div)


def backtest_report_data(result: BacktestResult, table: ScanTable | VelDivTap | None = None) -> ReportData:
    """A backtest's report: its trades and metrics; vel_div from the replayed span of ``table``
    (the scan table, or the tap the streamed replay read through)."""
    series = None
    ts, vel_div = table.columns() if isinstance(table, VelDivTap) else (
        (table.ts, table.vel_div) if table is not None else (np.empty(0, np.int64), np.empty(0, np.float64)))
    if len(ts):
        lo = int(np.searchsorted(ts, result.span_start_ms, side="left"))
        hi = int(np.searchsorted(ts, result.span_end_ms, side="right"))
        series = VelDivSeries.of(ts[lo:hi], vel_div[lo:hi], source=result.source)
    m = result.metrics
    threshold, extreme, direction = _gate(result.config)
    days = [d.date for d in result.days] or calendar(result.span_start_ms, result.span_end_ms)
    return ReportData(
        title=f"backtest — {result.config.name}", source=result.source, strategy=result.config.name,
        initial_capital=m.initial_capital, final_capital=m.final_capital, metrics=m, trades=list(result.trades),
        equity=equity_curve(m.initial_capital, result.trades, result.span_start_ms), days=days, vel_div=series,
        threshold=threshold, extreme=extreme, direction=direction, span_start_ms=result.span_start_ms,
        span_end_ms=result.span_end_ms, open_position=_position_text(result))


# ---------------------------------------------------------------- a trader's session from its journal
@dataclass
class SessionSeries:
    """The per-step series of a journal: each scan's time and vel_div, the committed capital where it changed."""

    scan_ts: dict[int, int] = field(default_factory=dict)           # scan number → ts ms
    vel_div: list[tuple[int, float | None]] = field(default_factory=list)
    commits: list[tuple[int, float]] = field(default_factory=list)  # (scan number, capital): first and changes
    records: int = 0

    def capital_points(self) -> list[tuple[int, float]]:
        """(ts ms, capital) of each kept commit whose scan time is known, in time order."""
        return sorted((self.scan_ts[s], c) for s, c in self.commits if s in self.scan_ts)


def read_session_series(path: str | Path, progress: Progress | None = None) -> SessionSeries:
    """One streaming pass over a journal for its scan times, vel_div and committed capital.

    A recovery re-journals the inputs after its snapshot: the first input of a scan is the
    step. A commit repeating the last capital adds nothing to the curve and is not kept,
    so a month of steps keeps one point per trade close (and funding), not per scan.
    """
    from dolphin.store.journal import Commit, Journal, ScanInput

    out = SessionSeries()
    for out.records, r in enumerate(Journal(path).iter_records(), 1):
        if isinstance(r, ScanInput):
            if r.scan_number not in out.scan_ts:
                out.scan_ts[r.scan_number] = r.ts_ms
                out.vel_div.append((r.ts_ms, r.vel_div))
        elif isinstance(r, Commit) and (not out.commits or r.capital != out.commits[-1][1]):
            out.commits.append((r.scan_number, r.capital))
        if progress is not None and out.records % 20_000 == 0:
            progress("journal", out.records, 0)
    if progress is not None:
        progress("journal", out.records, out.records)
    return out


def journal_strategy(path: str | Path) -> str | None:
    """The strategy named by the journal's first session record (read from the head of the file only)."""
    from dolphin.store.journal import Journal, SessionStart

    for r in Journal(path).iter_records():
        return r.strategy if isinstance(r, SessionStart) else None
    return None


def load_vel_div(scans: str | Path, start_ms: int | None, end_ms: int | None) -> VelDivSeries:
    """vel_div of a scan table (.parquet) or an Arrow scan archive, within [start_ms, end_ms]."""
    from dolphin.errors import DataError

    p = Path(scans)
    date_from = day_of(start_ms) if start_ms is not None else None
    date_to = day_of(end_ms) if end_ms is not None else None
    if p.is_file():
        from dolphin.store.scan_table import read_scan_table

        table = read_scan_table(p, date_from, date_to)
        ts, vd = table.ts, table.vel_div
    else:
        from dolphin.store.scan_archive import read_archive, report_read

        try:
            read = read_archive(p, date_from, date_to, skip_corrupt=True)
        except DataError:
            return VelDivSeries.of([], [], source=str(p))
        report_read(read)
        ts = read.table.column("timestamp_ns").to_numpy() // 1_000_000
        vd = read.table.column("vel_div").to_numpy().astype(np.float64, copy=False)
    mask = np.ones(len(ts), dtype=bool)
    if start_ms is not None:
        mask &= ts >= start_ms
    if end_ms is not None:
        mask &= ts <= end_ms
    return VelDivSeries.of(ts[mask], vd[mask], source=str(p))


def journal_report_data(path: str | Path, cfg: StrategyConfig | None, *, scans: str | Path | None = None,
                        progress: Progress | None = None) -> ReportData:
    """A trader session's report: the books (`read_books`), the committed capital, vel_div.

    vel_div comes from ``scans`` when given (a scan table or an archive), else from the
    journal's own scan inputs (what the trader acted on), else from the runtime home's
    Arrow archive; without any, the report says so and draws no vel_div chart.
    """
    from dolphin.errors import DataError
    from dolphin.paths import runtime_root
    from dolphin.store.arrow_scans import archive_dir
    from dolphin.store.journal import JournalCorrupt, read_books

    journal = Path(path)
    if not journal.is_file():
        raise DataError(f"trader journal not found: {journal}")
    try:
        books = read_books(journal)
        if progress is not None:
            progress("books", 1, 1)
        series = read_session_series(journal, progress)
    except JournalCorrupt as exc:
        raise DataError(str(exc)) from None
    trades: list[ClosedTrade] = sorted(books.trades, key=lambda t: (t.exit_ts, t.trade_id))
    points = series.capital_points()
    scan_times = sorted(series.scan_ts.values())
    times = scan_times + [t.entry_ts for t in trades] + [t.exit_ts for t in trades]
    if not times:
        raise DataError(f"{journal}: no scan and no closed trade to report")
    start_ms, end_ms = min(times), max(times)
    if points:
        initial = points[0][1]
    elif trades:
        initial = trades[0].capital_after - trades[0].pnl
    elif cfg is not None:
        initial = cfg.initial_capital
    else:
        raise DataError(f"{journal}: no committed capital and no trade: nothing to draw")
    final = books.capital if books.capital is not None else (trades[-1].capital_after if trades else initial)
    if points:
        equity = curve([(start_ms, initial), *points])
    else:   # a journal of trades only: their capital after each close
        equity = equity_curve(initial, trades, start_ms)
    notes: list[str] = []
    vel_div: VelDivSeries | None = None
    if scans is not None:
        vel_div = load_vel_div(scans, start_ms, end_ms)
    elif any(v is not None for _, v in series.vel_div):
        vel_div = VelDivSeries.of([t for t, _ in series.vel_div], [v for _, v in series.vel_div],
                                  source=f"{journal.name} (journaled scan inputs)")
    else:
        archive = archive_dir(runtime_root())
        if archive.is_dir():
            vel_div = load_vel_div(archive, start_ms, end_ms)
    if vel_div is None or not len(vel_div):
        vel_div = None
        notes.append("vel_div: the journal holds no scan inputs and no scan archive covers its span — "
                     "pass --scans PATH (a scan table or an arrow_scans/ archive)")
    if progress is not None:
        progress("scans", 1, 1)
    threshold, extreme, direction = _gate(cfg)
    strategy = books.strategy or (cfg.name if cfg is not None else "?")
    venue = books.venue or "paper"
    return ReportData(
        title=f"trader session — {strategy} ({venue})", source=str(journal), strategy=strategy,
        initial_capital=initial, final_capital=final, metrics=compute_metrics(initial, final, trades, []),
        trades=trades, equity=equity, days=calendar(start_ms, end_ms), vel_div=vel_div, threshold=threshold,
        extreme=extreme, direction=direction, span_start_ms=start_ms, span_end_ms=end_ms, notes=notes)
