"""Parity: live trading against its replays, trade by trade, each difference with its cause (docs/parity.md).

Three replays of the session's archived scans, each changing one class of input, so every
difference between two neighbours has one cause:

    journal ──exact──► exact replay ──execution──► model replay ──inputs──► backtest replay

* the **exact** replay steps every journaled input (traded flag, ACB, MC, OB, posture, kill
  switch, force exits) and applies the venue's fills: it must reproduce the journal bit for
  bit — any difference is a bug (`ParityCause.UNEXPLAINED`);
* the **model** replay is the same without the venue's fills (the engine's own fill and fee
  model): what differs is execution — fill-price drift, fee drift and the cascades they set
  off (a different entry price moves the take-profit). For a paper session it is the exact one;
* the **backtest** replay trades every archived scan of the span with the market's inputs
  only (ACB, MC, OB as journaled) — no staleness, no gap, no kill switch, no posture, no force
  exit: what differs is coverage (scans never stepped, or stepped stale after a restart),
  control (a kill switch, a posture, an operator's exit) and the cascades they set off.

Trades are matched by (asset, side, entry scan). A difference nothing earlier explains is
`UNEXPLAINED`. Everything here is pure: runs and the span in, a `ParityReport` out.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dolphin.backtest.session import StepFlags
from dolphin.bus.payloads import ParityDiff, ParityGap, ParityReport
from dolphin.engine.codes import EXIT_HIBERNATE, EXIT_MANUAL, EXIT_REASONS
from dolphin.engine.trades import ClosedTrade, OpenPosition
from dolphin.enums import (
    KillLevel,
    ParityCause,
    ParityDiffKind,
    ParityStage,
    ParityStatus,
    PositionSide,
    Posture,
    StepCoverage,
)

MAX_DIFFS = 100          # differences a report carries (the most recent); counts cover all of them
MAX_GAPS = 50            # runs of untraded scans a report carries (the most recent)
CONTROL_EXITS = frozenset({EXIT_REASONS[EXIT_MANUAL], EXIT_REASONS[EXIT_HIBERNATE]})
BPS = 1e4
_NEVER = 2**62           # an open trade's exit scan, for ordering


@dataclass(frozen=True, slots=True)
class Tolerances:
    """Drift a venue session may show before it counts as a difference (services config ``parity``)."""

    price_bps: float = 10.0      # adverse fill-price drift per leg
    fee_bps: float = 1.0         # fee rate drift per round trip, of notional


# ---------------------------------------------------------------- runs
@dataclass(frozen=True, slots=True)
class Row:
    """One trade of a run as parity compares it; an open position has no exit."""

    asset: str
    side: str
    entry_scan: int
    entry_ts: int
    entry_price: float
    notional: float
    fees: float
    trade_id: int
    exit_scan: int | None = None
    exit_ts: int | None = None
    exit_price: float | None = None
    exit_reason: str | None = None
    pnl: float | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.asset, self.side, self.entry_scan)

    @property
    def exit_order(self) -> int:
        return _NEVER if self.exit_scan is None else self.exit_scan


@dataclass(frozen=True)
class Run:
    """What a replay (or the journal) ended with: closed trades, a position still open, capital."""

    trades: Sequence[ClosedTrade]
    open_position: OpenPosition | None = None
    final_capital: float | None = None

    @property
    def rows(self) -> list[Row]:
        out = [Row(t.asset, str(t.side), t.entry_bar, t.entry_ts, t.entry_price, t.notional, t.entry_fee + t.exit_fee,
                   t.trade_id, t.exit_bar, t.exit_ts, t.exit_price, t.exit_reason, t.pnl) for t in self.trades]
        p = self.open_position
        if p is not None:
            out.append(Row(p.asset, str(p.side), p.entry_bar, p.entry_ts, p.entry_price, p.notional, p.entry_fee,
                           p.trade_id))
        return out


# ---------------------------------------------------------------- the span
@dataclass
class Span:
    """The archived scans of the session span (ascending) and what the trader did with each."""

    scans: np.ndarray
    ts: np.ndarray
    steps: Mapping[int, StepFlags]
    coverage: np.ndarray = field(init=False)   # StepCoverage per scan, as codes into COVERAGE

    COVERAGE = (StepCoverage.TRADED, StepCoverage.UNSTEPPED, StepCoverage.UNTRADED, StepCoverage.HALTED)

    def __post_init__(self) -> None:
        self.scans = np.asarray(self.scans, dtype=np.int64)
        self.ts = np.asarray(self.ts, dtype=np.int64)
        codes = np.ones(self.scans.size, dtype=np.int8)            # unstepped unless the journal has the step
        for i, n in enumerate(self.scans.tolist()):
            flags = self.steps.get(n)
            if flags is not None:
                codes[i] = 0 if flags.trade else 3 if flags.kill_level == KillLevel.HALT else 2
        self.coverage = codes

    def index(self, scan: int) -> int | None:
        i = int(np.searchsorted(self.scans, scan))
        return i if i < self.scans.size and int(self.scans[i]) == scan else None

    def ts_of(self, scan: int) -> int | None:
        i = self.index(scan)
        return None if i is None else int(self.ts[i])

    def status(self, scan: int) -> StepCoverage:
        flags = self.steps.get(scan)
        if flags is None:
            return StepCoverage.UNSTEPPED
        if flags.trade:
            return StepCoverage.TRADED
        return StepCoverage.HALTED if flags.kill_level == KillLevel.HALT else StepCoverage.UNTRADED

    def _window(self, first: int, last: int) -> slice:
        lo = int(np.searchsorted(self.scans, first))
        hi = int(np.searchsorted(self.scans, last, side="right"))
        return slice(lo, hi)

    def first_uncovered(self, first: int, last: int) -> tuple[int, StepCoverage] | None:
        """The first scan in [first, last] the trader did not trade for want of coverage (not a halt)."""
        w = self._window(first, last)
        hits = np.flatnonzero((self.coverage[w] == 1) | (self.coverage[w] == 2))
        if not hits.size:
            return None
        i = w.start + int(hits[0])
        return int(self.scans[i]), self.COVERAGE[int(self.coverage[i])]

    def first_control(self, first: int, last: int) -> tuple[int, str] | None:
        """The first scan in [first, last] where a control acted on exits: a halt, a force exit, HIBERNATE."""
        w = self._window(first, last)
        for n in self.scans[w].tolist():
            flags = self.steps.get(n)
            if flags is None:
                continue
            if not flags.trade and flags.kill_level == KillLevel.HALT:
                return n, "the kill switch was at halt (no orders)"
            if flags.manual_exit is not None:
                return n, f"an operator's force exit ({flags.manual_exit})"
            if flags.posture == Posture.HIBERNATE:
                return n, "the posture was HIBERNATE"
        return None

    def entry_block(self, scan: int) -> str | None:
        """Why the step of `scan` could take no entry (kill switch, posture), or None."""
        flags = self.steps.get(scan)
        if flags is None:
            return None
        if flags.kill_switch:
            return f"the kill switch was at {flags.kill_level or 'pause'} (no entries)"
        if not Posture(flags.posture).allows_entries:
            return f"the posture was {flags.posture} (no entries)"
        return None

    def counts(self, since_ms: int | None = None) -> Counter[StepCoverage]:
        codes = self.coverage if since_ms is None else self.coverage[self.ts >= since_ms]
        return Counter({self.COVERAGE[c]: int(n) for c, n in zip(*np.unique(codes, return_counts=True))})

    def gaps(self, since_ms: int | None = None) -> list[ParityGap]:
        """Maximal runs of untraded scans (one kind per run), oldest first."""
        keep = np.ones(self.scans.size, dtype=bool) if since_ms is None else self.ts >= since_ms
        codes = np.where(keep, self.coverage, 0)
        out: list[ParityGap] = []
        if not codes.any():
            return out
        change = np.flatnonzero(np.diff(codes)) + 1
        starts = np.concatenate([[0], change])
        stops = np.concatenate([change, [codes.size]])
        for s, e in zip(starts.tolist(), stops.tolist()):
            code = int(codes[s])
            if code == 0:
                continue
            out.append(ParityGap(kind=self.COVERAGE[code], first_scan=int(self.scans[s]), last_scan=int(self.scans[e - 1]),
                                 scans=e - s, first_ts=int(self.ts[s]), last_ts=int(self.ts[e - 1])))
        return out


# ---------------------------------------------------------------- matching
@dataclass(frozen=True, slots=True)
class _Event:
    """A difference to classify, at the scan where it starts."""

    at: int
    order: int          # changed before missed before extra at one scan
    kind: ParityDiffKind
    left: Row | None    # the live-side run's trade
    right: Row | None   # the replay-side run's trade


def _events(left: Sequence[Row], right: Sequence[Row],
            same: Callable[[Row, Row], bool]) -> tuple[list[_Event], list[tuple[Row, Row]]]:
    by_key = {r.key: r for r in right}
    matched: list[tuple[Row, Row]] = []
    events: list[_Event] = []
    seen: set[tuple[str, str, int]] = set()
    for row in left:
        other = by_key.get(row.key)
        if other is None:
            events.append(_Event(row.entry_scan, 2, ParityDiffKind.EXTRA, row, None))
            continue
        seen.add(row.key)
        matched.append((row, other))
        if not same(row, other):
            at = min(row.exit_order, other.exit_order, _NEVER - 1)
            events.append(_Event(at, 0, ParityDiffKind.CHANGED, row, other))
    for row in right:
        if row.key not in seen:
            events.append(_Event(row.entry_scan, 1, ParityDiffKind.MISSED, None, row))
    events.sort(key=lambda e: (e.at, e.order))
    return events, matched


def _same_exit(a: Row, b: Row) -> bool:
    return a.exit_scan == b.exit_scan and a.exit_reason == b.exit_reason


def _diff(stage: ParityStage, cause: ParityCause, ev: _Event, span: Span, detail: str) -> ParityDiff:
    row = ev.left or ev.right
    assert row is not None
    left, right = ev.left, ev.right
    delta = (left.pnl if left is not None and left.pnl is not None else 0.0) - \
        (right.pnl if right is not None and right.pnl is not None else 0.0)
    return ParityDiff(stage=stage, cause=cause, kind=ev.kind, at_scan=ev.at, at_ts=span.ts_of(ev.at),
                      asset=row.asset, side=row.side, entry_scan=row.entry_scan,
                      live_exit_scan=left.exit_scan if left is not None else None,
                      replay_exit_scan=right.exit_scan if right is not None else None,
                      trade_id=left.trade_id if left is not None else None, pnl_delta=delta, detail=detail)


def _label(row: Row) -> str:
    return f"{row.side} {row.asset} entered at scan {row.entry_scan}"


def _exits(ev: _Event) -> str:
    def one(row: Row | None) -> str:
        if row is None or row.exit_scan is None:
            return "still open"
        return f"scan {row.exit_scan} ({row.exit_reason})"

    return f"live-side exit {one(ev.left)}, replay exit {one(ev.right)}"


# ---------------------------------------------------------------- stage 1: the journal vs its exact replay
def compare_exact(journal: Sequence[ClosedTrade], journal_capital: float | None, exact: Run | None,
                  exact_error: str | None, span: Span) -> list[ParityDiff]:
    """Every field of every trade, and the capital: the exact replay must reproduce the books."""
    if exact is None:
        first = journal[0].entry_bar if journal else (int(span.scans[0]) if span.scans.size else 0)
        return [ParityDiff(stage=ParityStage.EXACT, cause=ParityCause.UNEXPLAINED, kind=ParityDiffKind.CHANGED,
                           at_scan=first, at_ts=span.ts_of(first),
                           detail=f"the journal-exact replay failed: {exact_error or 'no result'}")]
    out: list[ParityDiff] = []
    replayed = list(exact.trades)
    for i in range(max(len(journal), len(replayed))):
        live = journal[i] if i < len(journal) else None
        again = replayed[i] if i < len(replayed) else None
        if live == again:
            continue
        if live is None or again is None:
            t = live or again
            assert t is not None
            kind = ParityDiffKind.EXTRA if again is None else ParityDiffKind.MISSED
            where = "the journal holds it, the exact replay does not" if again is None else \
                "the exact replay closed it, the journal does not hold it"
            out.append(ParityDiff(stage=ParityStage.EXACT, cause=ParityCause.UNEXPLAINED, kind=kind,
                                  at_scan=t.entry_bar, at_ts=t.entry_ts, asset=t.asset, side=str(t.side),
                                  entry_scan=t.entry_bar, trade_id=t.trade_id, pnl_delta=t.pnl if again is None
                                  else -t.pnl, detail=f"trade {t.trade_id}: {where}"))
            continue
        fields = [f for f in ClosedTrade.__struct_fields__ if getattr(live, f) != getattr(again, f)]
        shown = ", ".join(f"{f} {getattr(live, f)!r} vs {getattr(again, f)!r}" for f in fields[:4])
        out.append(ParityDiff(stage=ParityStage.EXACT, cause=ParityCause.UNEXPLAINED, kind=ParityDiffKind.CHANGED,
                              at_scan=min(live.entry_bar, again.entry_bar), at_ts=live.entry_ts, asset=live.asset,
                              side=str(live.side), entry_scan=live.entry_bar, live_exit_scan=live.exit_bar,
                              replay_exit_scan=again.exit_bar, trade_id=live.trade_id, pnl_delta=live.pnl - again.pnl,
                              detail=f"trade {live.trade_id} differs from its exact replay (journal vs replay): "
                                     f"{shown}"))
    if journal_capital is not None and exact.final_capital is not None and journal_capital != exact.final_capital:
        last = int(span.scans[-1]) if span.scans.size else 0
        out.append(ParityDiff(stage=ParityStage.EXACT, cause=ParityCause.UNEXPLAINED, kind=ParityDiffKind.CAPITAL,
                              at_scan=last, at_ts=span.ts_of(last), pnl_delta=journal_capital - exact.final_capital,
                              detail=f"capital {journal_capital!r} in the journal, {exact.final_capital!r} replayed"))
    return out


# ---------------------------------------------------------------- stage 2: venue fills vs the engine's fill model
@dataclass
class Drift:
    """Fill-price and fee drift of the trades both runs made (venue sessions)."""

    price_bps: list[float] = field(default_factory=list)   # adverse drift per leg
    fee_bps: list[float] = field(default_factory=list)     # fee rate drift per trade

    @staticmethod
    def _stat(values: list[float]) -> tuple[float | None, float | None]:
        if not values:
            return None, None
        return math.fsum(values) / len(values), max(values, key=abs)

    @property
    def price(self) -> tuple[float | None, float | None]:
        return self._stat(self.price_bps)

    @property
    def fee(self) -> tuple[float | None, float | None]:
        return self._stat(self.fee_bps)


def _leg_drift(side: str, venue: float, model: float, entry: bool) -> float:
    """Adverse drift in bps: paying more to open a long (or to close a short) is positive."""
    sign = PositionSide(side).sign if entry else -PositionSide(side).sign
    return sign * (venue - model) / model * BPS if model else 0.0


def compare_execution(live: Sequence[Row], model: Sequence[Row], span: Span,
                      tol: Tolerances) -> tuple[list[ParityDiff], Drift]:
    """The venue's fills against the engine's model of them, with the cascades drift sets off."""
    events, matched = _events(live, model, lambda a, b: _same_exit(a, b) and a.entry_price == b.entry_price
                              and a.exit_price == b.exit_price and a.fees == b.fees)
    drift = Drift()
    marker: int | None = None         # the first scan where execution made any difference at all
    for venue_row, model_row in matched:
        first = None
        if venue_row.entry_price != model_row.entry_price:
            first = venue_row.entry_scan
        elif ((venue_row.exit_price != model_row.exit_price or venue_row.fees != model_row.fees)
              and venue_row.exit_scan is not None):
            first = venue_row.exit_scan
        if first is not None:
            marker = first if marker is None else min(marker, first)
    out: list[ParityDiff] = []
    for ev in events:
        if ev.kind is ParityDiffKind.CHANGED:
            a, b = ev.left, ev.right
            assert a is not None and b is not None
            entry = _leg_drift(a.side, a.entry_price, b.entry_price, True)
            legs = [entry]
            if a.exit_price is not None and b.exit_price is not None and a.exit_scan == b.exit_scan:
                legs.append(_leg_drift(a.side, a.exit_price, b.exit_price, False))
            drift.price_bps += legs
            fee = None
            if a.exit_scan is not None and b.exit_scan is not None and a.notional > 0 and b.notional > 0:
                fee = (a.fees / a.notional - b.fees / b.notional) * BPS
                drift.fee_bps.append(fee)
            worst = max(legs, key=abs)
            ev_at = _Event(a.entry_scan, ev.order, ev.kind, a, b)
            if abs(worst) > tol.price_bps:
                out.append(_diff(ParityStage.EXECUTION, ParityCause.FILL_PRICE, ev_at, span,
                                 f"{_label(a)}: the venue filled {worst:+.2f} bps adverse to the engine's model "
                                 f"(tolerance {tol.price_bps:g} bps)"))
            if fee is not None and abs(fee) > tol.fee_bps:
                out.append(_diff(ParityStage.EXECUTION, ParityCause.FEE, ev_at, span,
                                 f"{_label(a)}: the venue charged {fee:+.2f} bps of notional more than the engine's "
                                 f"fee model (tolerance {tol.fee_bps:g} bps)"))
            if not _same_exit(a, b):
                if a.entry_price != b.entry_price or (marker is not None and marker < ev.at):
                    out.append(_diff(ParityStage.EXECUTION, ParityCause.TIMING, ev, span,
                                     f"{_label(a)}: {_exits(ev)} — the venue's fill moved the exit"))
                else:
                    out.append(_diff(ParityStage.EXECUTION, ParityCause.UNEXPLAINED, ev, span,
                                     f"{_label(a)}: {_exits(ev)} with identical fills"))
                marker = ev.at if marker is None else min(marker, ev.at)
            continue
        row = ev.left or ev.right
        assert row is not None
        if marker is not None and marker < ev.at:
            out.append(_diff(ParityStage.EXECUTION, ParityCause.TIMING, ev, span,
                             f"{_label(row)}: {'only the venue run' if ev.left else 'only the fill model'} traded it, "
                             f"after execution drift from scan {marker} on"))
        else:
            out.append(_diff(ParityStage.EXECUTION, ParityCause.UNEXPLAINED, ev, span,
                             f"{_label(row)}: {'only the venue run' if ev.left else 'only the fill model'} traded it, "
                             "with no execution difference before it"))
            marker = ev.at if marker is None else min(marker, ev.at)
    return out, drift


# ---------------------------------------------------------------- stage 3: the live-only inputs vs the backtest
def compare_inputs(model: Sequence[Row], backtest: Sequence[Row], span: Span) -> list[ParityDiff]:
    """What coverage gaps and controls changed, and the cascades they set off."""
    events, _ = _events(model, backtest, _same_exit)
    out: list[ParityDiff] = []
    marker: int | None = None
    for ev in events:
        cause, detail = _inputs_cause(ev, span, marker)
        out.append(_diff(ParityStage.INPUTS, cause, ev, span, detail))
        marker = ev.at if marker is None else min(marker, ev.at)
    return out


def _inputs_cause(ev: _Event, span: Span, marker: int | None) -> tuple[ParityCause, str]:
    row = ev.left or ev.right
    assert row is not None
    earlier = marker is not None and marker <= ev.at
    cascade = f"an earlier difference (scan {marker}) changed the engine's state: position held or cooldown"
    if ev.kind is ParityDiffKind.MISSED:
        status = span.status(row.entry_scan)
        if status is StepCoverage.UNSTEPPED:
            return ParityCause.COVERAGE_GAP, f"{_label(row)} in the backtest: the trader never stepped that scan"
        if status is StepCoverage.UNTRADED:
            return ParityCause.COVERAGE_GAP, (f"{_label(row)} in the backtest: the trader stepped that scan stale "
                                              "(histories only)")
        if status is StepCoverage.HALTED:
            return ParityCause.CONTROL, f"{_label(row)} in the backtest: the kill switch was at halt"
        block = span.entry_block(row.entry_scan)
        if block is not None:
            return ParityCause.CONTROL, f"{_label(row)} in the backtest: {block}"
        if earlier:
            return ParityCause.TIMING, f"{_label(row)} in the backtest, not live: {cascade}"
        return ParityCause.UNEXPLAINED, f"{_label(row)} in the backtest, not live, on a traded scan with no earlier " \
                                        "difference"
    if ev.kind is ParityDiffKind.EXTRA:
        if earlier:
            return ParityCause.TIMING, f"{_label(row)} live, not in the backtest: {cascade}"
        return ParityCause.UNEXPLAINED, f"{_label(row)} live, not in the backtest, with no earlier difference"
    a, b = ev.left, ev.right
    assert a is not None and b is not None
    last = min(a.exit_order, b.exit_order)
    gap = span.first_uncovered(a.entry_scan + 1, last)
    if gap is not None:
        return ParityCause.COVERAGE_GAP, f"{_label(a)}: {_exits(ev)} — scan {gap[0]} was {gap[1]} live"
    control = span.first_control(a.entry_scan + 1, last)
    if a.exit_reason in CONTROL_EXITS or control is not None:
        why = control[1] if control is not None else f"exit reason {a.exit_reason}"
        return ParityCause.CONTROL, f"{_label(a)}: {_exits(ev)} — {why}"
    if earlier:
        return ParityCause.TIMING, f"{_label(a)}: {_exits(ev)} — {cascade}"
    return ParityCause.UNEXPLAINED, f"{_label(a)}: {_exits(ev)}, every scan traded, no earlier difference"


# ---------------------------------------------------------------- the report
@dataclass(frozen=True)
class ParityRuns:
    """Everything one report compares (what `dolphin.backtest.parity_run` gathers)."""

    strategy: str
    journal_path: str
    venue: str
    venue_truth: bool
    journal: Sequence[ClosedTrade]          # the books: closed trades, in order
    journal_open: OpenPosition | None       # the exact replay's open position (the journal does not list it)
    journal_capital: float | None
    exact: Run | None
    exact_error: str | None
    model: Run
    backtest: Run
    span: Span
    first_scan: int
    last_scan: int
    behind_scans: int = 0
    archive_missing: int = 0


def _in_since(ts: int | None, since_ms: int | None) -> bool:
    return since_ms is None or (ts is not None and ts >= since_ms)


def _pnl(rows: Sequence[Row], since_ms: int | None) -> float:
    return math.fsum(r.pnl for r in rows if r.pnl is not None and _in_since(r.exit_ts, since_ms))


def build_report(runs: ParityRuns, *, tol: Tolerances, now: float, since_ms: int | None = None,
                 max_diffs: int | None = MAX_DIFFS, max_gaps: int | None = MAX_GAPS, replay_seconds: float = 0.0,
                 interval_s: float | None = None) -> ParityReport:
    """Compare the runs stage by stage and summarise (differences and counts from `since_ms` on)."""
    span = runs.span
    live_rows = Run(runs.journal, runs.journal_open).rows
    exact_rows = runs.exact.rows if runs.exact is not None else live_rows
    model_rows = runs.model.rows
    backtest_rows = runs.backtest.rows
    diffs = compare_exact(runs.journal, runs.journal_capital, runs.exact, runs.exact_error, span)
    exact_match = not diffs
    drift = Drift()
    if runs.venue_truth:
        execution, drift = compare_execution(exact_rows, model_rows, span, tol)
        diffs += execution
    diffs += compare_inputs(model_rows, backtest_rows, span)
    diffs = [d for d in diffs if _in_since(d.at_ts, since_ms)]
    diffs.sort(key=lambda d: (d.at_scan, d.stage != ParityStage.EXACT))

    live_keys = {r.key for r in live_rows if _in_since(r.entry_ts, since_ms)}
    bt = [r for r in backtest_rows if _in_since(r.entry_ts, since_ms)]
    bt_keys = {r.key for r in bt}
    seen = sum(1 for r in bt if span.status(r.entry_scan) is StepCoverage.TRADED)
    acted = len(bt_keys & live_keys)
    counts = span.counts(since_ms)
    scans = sum(counts.values())
    halted = counts.get(StepCoverage.HALTED, 0)
    traded = counts.get(StepCoverage.TRADED, 0)
    gaps = span.gaps(since_ms)
    causes = Counter(str(d.cause) for d in diffs)
    unexplained = causes.get(str(ParityCause.UNEXPLAINED), 0)
    uncovered = counts.get(StepCoverage.UNSTEPPED, 0) + counts.get(StepCoverage.UNTRADED, 0)
    if unexplained or not exact_match:
        status = ParityStatus.UNEXPLAINED
    elif diffs or uncovered or bt_keys != live_keys:
        status = ParityStatus.DIVERGENT
    else:
        status = ParityStatus.PARITY
    pnl_live, pnl_model, pnl_bt = _pnl(live_rows, since_ms), _pnl(model_rows, since_ms), _pnl(backtest_rows, since_ms)
    (p_mean, p_max), (f_mean, f_max) = drift.price, drift.fee
    shown = diffs if max_diffs is None else diffs[-max_diffs:]
    shown_gaps = gaps if max_gaps is None else gaps[-max_gaps:]
    return ParityReport(
        strategy=runs.strategy, status=status, timestamp=now, journal=runs.journal_path, venue=runs.venue,
        first_scan=runs.first_scan, last_scan=runs.last_scan,
        span_start_ts=int(span.ts[0]) if span.ts.size else None,
        span_end_ts=int(span.ts[-1]) if span.ts.size else None, since_ts=since_ms,
        scans=scans, traded_scans=traded, unstepped_scans=counts.get(StepCoverage.UNSTEPPED, 0),
        untraded_scans=counts.get(StepCoverage.UNTRADED, 0), halted_scans=halted,
        scan_coverage=traded / (scans - halted) if scans > halted else None,
        replay_entries=len(bt), seen_entries=seen, acted_entries=acted,
        signal_coverage=seen / len(bt) if bt else None, acted_share=acted / len(bt) if bt else None,
        live_trades=sum(1 for t in runs.journal if _in_since(t.entry_ts, since_ms)),
        backtest_trades=sum(1 for t in runs.backtest.trades if _in_since(t.entry_ts, since_ms)),
        matched=acted, missed=len(bt_keys - live_keys), extra=len(live_keys - bt_keys), exact_match=exact_match,
        causes=dict(sorted(causes.items())), unexplained=unexplained,
        pnl_live=pnl_live, pnl_model=pnl_model, pnl_backtest=pnl_bt, pnl_diff=pnl_live - pnl_bt,
        pnl_execution=pnl_live - pnl_model, pnl_inputs=pnl_model - pnl_bt,
        price_drift_bps_mean=p_mean, price_drift_bps_max=p_max, fee_drift_bps_mean=f_mean, fee_drift_bps_max=f_max,
        tolerance_price_bps=tol.price_bps, tolerance_fee_bps=tol.fee_bps,
        gaps=shown_gaps, gaps_total=len(gaps), diffs=shown, diffs_total=len(diffs),
        behind_scans=runs.behind_scans, archive_missing=runs.archive_missing, replay_seconds=replay_seconds,
        interval_s=interval_s)


def failed_report(strategy: str, status: ParityStatus, error: str, *, now: float, journal: str = "",
                  interval_s: float | None = None) -> ParityReport:
    """A report that says why there is no comparison (no session yet, an unreadable archive)."""
    return ParityReport(strategy=strategy, status=status, timestamp=now, journal=journal, error=error,
                        interval_s=interval_s)


__all__ = ["MAX_DIFFS", "MAX_GAPS", "Drift", "ParityRuns", "Row", "Run", "Span", "Tolerances", "build_report",
           "compare_exact", "compare_execution", "compare_inputs", "failed_report"]
