"""The trader without its wiring: one engine step per scan, journaled before anything is published.

Per scan (bible §14.1, with DOLPHIN's journal):
① duplicates (scan_number already processed) are ignored; a scan older than
  `stale_after_s` of market time is stale — it still feeds the histories (so the engine
  stays continuous) but is not traded; ② a new UTC date (from the scan's own time) closes
  the day and opens the next; ③ the pending ACB update is applied (§14.2 pattern), then
  posture (HIBERNATE is enforced by the engine: no entries, open position force-exited)
  and the kill switch; ④ the input is journaled (write-ahead: written before any order
  leaves, fsynced beside it — docs/trader.md); ⑤ `_GateSnap` before,
  `step_bar`, `_GateSnap` after (§14.3); ⑥ every order goes through the executor by its
  deterministic client order id and each fill is journaled; ⑦ a commit closes the step.

Recovery replays the journal's inputs after the last snapshot through the same code
path; fills already journaled are reused, missing ones are looked up at the venue by
client order id before anything is resubmitted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec

from dolphin.bus.ob_feed import ObView
from dolphin.bus.scan_codec import bar_from_input, input_from_bar
from dolphin.config.champion import champion_hash
from dolphin.engine.acb import AdaptiveCircuitBreaker
from dolphin.engine.engine import NDAlphaEngine, compile_kernel, decode_state, encode_state
from dolphin.engine.mc_gate import MCReport
from dolphin.engine.params import StrategyConfig
from dolphin.engine.trades import BarResult, ClosedTrade, DayResult, OpenPosition
from dolphin.enums import KillLevel, ObSource, Posture
from dolphin.execution.executor import Executor, PaperExecutor
from dolphin.execution.kill_switch import CLEAR, KillState, KillSwitch
from dolphin.execution.manual import ALL, ExitRequest, ExitRequests
from dolphin.execution.ob_inputs import StepOBProvider, block_from_flat, flat_from_view, source_of
from dolphin.execution.orders import (
    CashFlow,
    Fill,
    OrderIntent,
    OrderRefused,
    entry_intent,
    exit_intent,
    new_book_id,
    slippage_bps,
)
from dolphin.scan.record import ScanBar
from dolphin.scan.volatility import VolGate
from dolphin.store.journal import (
    CashRecord,
    Commit,
    FillRecord,
    Journal,
    KillRecord,
    ManualExitRecord,
    Recovery,
    RejectRecord,
    ScanInput,
    SessionStart,
    Snapshot,
    TradeRecord,
    encode_raw,
)

log = logging.getLogger("dolphin.trader")

STALE_AFTER_S = 10.0          # of market time (§14.4)
STALE_LOG_EVERY_S = 60.0      # stale scans come in runs (a stall, a backlog): one line per minute, with the count
SNAPSHOT_EVERY_SCANS = 720    # one hour of 5 s bars


class GateSnap(NamedTuple):
    """§14.3: the gates a step depends on; a difference before/after flags the result stale."""

    acb_boost: float
    acb_beta: float
    posture: str
    mc_gate_open: bool


class PendingUpdate:
    """§14.2 pending flag: producers parse outside the lock and swap under it; the step drains it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: Any = None
        self.offers = 0

    def offer(self, value: Any) -> None:
        with self._lock:
            self._value = value
            self.offers += 1

    def take(self) -> Any:
        with self._lock:
            value, self._value = self._value, None
        return value

    @property
    def pending(self) -> bool:
        with self._lock:
            return self._value is not None


@dataclass
class StepResult:
    scan_number: int
    entries: list[OpenPosition] = field(default_factory=list)
    exits: list[ClosedTrade] = field(default_factory=list)
    orders: list[tuple[OrderIntent, Fill]] = field(default_factory=list)
    refused: list[tuple[OrderIntent, OrderRefused]] = field(default_factory=list)
    cash: list[CashFlow] = field(default_factory=list)
    closed_day: DayResult | None = None
    stale: bool = False
    duplicate: bool = False
    stale_state: bool = False
    changed_fields: tuple[str, ...] = ()


@dataclass
class TraderStats:
    scans: int = 0
    traded_scans: int = 0
    duplicates: int = 0
    stale: int = 0
    stale_state_events: int = 0
    gaps_filled: int = 0
    orders: int = 0
    refused: int = 0
    replayed: int = 0
    reconciled: int = 0
    reconcile_ok: bool | None = None
    last_scan_number: int = 0
    last_scan_ts_ms: int = 0
    last_latency_ms: float | None = None


class TraderCore:
    def __init__(self, cfg: StrategyConfig, assets: list[str], journal: Journal, executor: Executor, *,
                 kill_switch: KillSwitch | None = None, speed: float = 1.0, stale_after_s: float = STALE_AFTER_S,
                 bar_ms: int = 5_000, market_now: Callable[[], int | None] | None = None,
                 ob_view: Callable[[int], tuple[ObView, bool]] | None = None,
                 snapshot_every: int = SNAPSHOT_EVERY_SCANS, venue: str = "paper",
                 posture_now: Callable[[], Posture] | None = None, exit_requests: ExitRequests | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.assets = list(assets)
        self.journal = journal
        self.executor = executor
        self.kill_switch = kill_switch
        self.kill_state: KillState = CLEAR
        self.exit_requests = exit_requests
        self.speed = speed
        self.stale_after_s = stale_after_s
        self.bar_ms = bar_ms
        self.market_now = market_now
        self._stale_logged_at: float | None = None
        self._stale_unlogged = 0
        self.snapshot_every = snapshot_every
        self.venue = venue
        self.posture_now: Callable[[], Posture] = posture_now or (lambda: self.posture)
        self.clock = clock
        # A venue's fills are the books (bible §8.1–§8.3): the engine's friction model is off and
        # every fill's price, quantity and commission are applied to the engine as they happen.
        self.venue_truth = venue != "paper"
        self.engine_cfg = cfg.with_venue_friction() if self.venue_truth else cfg
        # The engine always runs with OB on in a trader: the features come from OBF (journaled per step)
        # or are neutral — never the seeded Monte-Carlo fill edge, which is for synthetic backtests only.
        self.ob_view = ob_view
        self.ob_step = StepOBProvider()
        self.ob_source: ObSource = ObSource.NONE
        self.engine = NDAlphaEngine(self.engine_cfg, self.assets, acb=AdaptiveCircuitBreaker(cfg.acb),
                                    ob_provider=self.ob_step)
        x = cfg.extras
        self.vol_ref = x.vol_reference if x.vol_reference in self.assets else self.assets[0]
        self.vol_gate = VolGate(x.vol_window, x.vol_percentile, x.vol_calib_bars)
        self.acb_inbox = PendingUpdate()
        self.mc_inbox = PendingUpdate()   # (catastrophic_prob, envelope_score) from the MC-Forewarner
        self.posture: Posture = Posture.APEX
        self.book_id = ""
        self.last_scan = 0
        self.scans_since_snapshot = 0
        self.stats = TraderStats()
        self.trades: list[ClosedTrade] = []
        self._journal_fills: dict[str, Fill] = {}
        self._journal_rejects: dict[str, RejectRecord] = {}
        self._journal_cash: dict[int, list[CashRecord]] = {}
        self.cash_inbox: list[CashFlow] = []   # the venue's funding flows, applied (and journaled) at the next step
        self._journaled_trades: set[int] = set()
        self._replaying = False
        compile_kernel()

    # ------------------------------------------------------------------ start
    async def start(self) -> bool:
        """Open the books: recover from the journal (True) or start a fresh one (False)."""
        books = self.journal.recovery()
        self.journal.open()
        if books.empty:
            self.book_id = new_book_id()
            self.journal.append(SessionStart(seq=self.journal.next_seq(), wall_ts=self.clock(),
                                             strategy=self.cfg.name, config_hash=champion_hash(self.cfg.frozen_params()),
                                             venue=self.venue, book_id=self.book_id, pid=0))
            self._snapshot()
            return False
        if books.session is None:
            raise RuntimeError(f"{self.journal.path}: no session record; not a trader journal")
        if books.session.venue != self.venue:
            raise RuntimeError(f"{self.journal.path} holds books of venue {books.session.venue!r}, this trader runs "
                               f"on {self.venue!r}: a book keeps its venue (move the journal aside for a new book)")
        self.book_id = books.session.book_id
        if books.snapshot is None:   # a crash between the session record and the first snapshot
            self._snapshot()
            return False
        await self._recover(books)
        return True

    async def _recover(self, books: Recovery) -> None:
        snap = books.snapshot
        assert snap is not None
        after = books.tail[1:]
        self.engine.restore_state(decode_state(bytes(snap.engine_state)))
        gate = msgspec.json.decode(bytes(snap.vol_gate), type=dict[str, int | float | bytes] | None)
        if gate is not None:
            self.vol_gate.restore_state(gate)
        self.last_scan = snap.scan_number
        self.posture = Posture(snap.extra.get("posture", Posture.APEX))
        for r in after:
            if isinstance(r, FillRecord):
                self._journal_fills[r.client_order_id] = Fill(client_order_id=r.client_order_id, price=r.price,
                                                              quantity=r.quantity, fee=r.fee, venue=r.venue,
                                                              venue_order_id=r.venue_order_id, venue_ts=r.venue_ts)
            elif isinstance(r, RejectRecord):
                self._journal_rejects[r.client_order_id] = r
            elif isinstance(r, CashRecord):
                self._journal_cash.setdefault(r.scan_number, []).append(r)
        trades_after_snapshot = {r.trade["trade_id"] for r in after if isinstance(r, TradeRecord)}
        self.trades = [msgspec.convert(r.trade, ClosedTrade) for r in books.trades
                       if r.trade["trade_id"] not in trades_after_snapshot]   # the replay re-adds those
        self._journaled_trades = set(trades_after_snapshot)
        committed = {r.scan_number for r in after if isinstance(r, Commit)}
        self._replaying = True
        try:
            for r in after:
                if isinstance(r, ScanInput):
                    await self._replay_input(r, committed=r.scan_number in committed)
        finally:
            self._replaying = False
        self.stats.last_scan_number = self.last_scan
        log.info("recovered %s: capital %.2f, %d trades, last scan %d, open %s", self.journal.path,
                 self.engine.capital, len(self.trades), self.last_scan, self.engine.open_position)

    async def _replay_input(self, r: ScanInput, committed: bool) -> None:
        bar = bar_from_input(r)
        vol_ok = self.vol_gate.update(bar.prices.get(self.vol_ref, math.nan))
        if vol_ok != r.vol_ok:
            raise RuntimeError(f"journal replay diverged at scan {r.scan_number}: vol_ok {vol_ok} != {r.vol_ok}")
        self.posture = Posture(r.posture) if r.posture else self.posture
        self.ob_step.current = None if r.ob is None else block_from_flat(r.ob, len(self.assets))
        await self._step(bar, trade=r.trade, vol_ok=vol_ok, acb=r.acb, posture=self.posture,
                         kill=r.kill_switch, journal_input=False, commit=not committed,
                         mc=None if r.mc is None else (float(r.mc[0]), float(r.mc[1])), manual_exit=r.manual_exit)
        if r.kill_level is not None:
            self.kill_state = KillState(level=KillLevel(r.kill_level))
        self.stats.replayed += 1

    # ------------------------------------------------------------------ warm-up
    def warm(self, bars: list[ScanBar]) -> int:
        """Feed archived history (no trading) to the engine and the vol gate, then snapshot.

        Only a fresh book warms, before any live step; the snapshot afterwards is the
        commit point, so a crash while warming simply warms again on restart.
        """
        n = 0
        self.ob_step.current = None   # history has no OB bars: neutral, as the replay's warm-up
        for bar in bars:
            if bar.scan_number <= self.last_scan:
                continue
            vol_ok = self.vol_gate.update(bar.prices.get(self.vol_ref, math.nan))
            self._date_boundary(bar, self.posture)
            self.engine.step_bar(bar.scan_number, bar.vel_div, bar.prices, bar.v50, bar.v750, vol_ok, bar.ts_ms,
                                 trade=False)
            self.last_scan = bar.scan_number
            n += 1
        if n:
            self._snapshot()
            log.info("warmed on %d archived scans (up to scan %d)", n, self.last_scan)
        return n

    # ------------------------------------------------------------------ live steps
    def market_age_s(self, bar: ScanBar) -> float | None:
        """Market seconds since `bar` closed; None when unknown (no market clock sample, no publish time).

        With a market clock (the trader service always has one) the age is measured on the
        market's own time, so a backfilled scan published just now is as old as its bar.
        Without one (unit tests, embedded replays) it is wall seconds since publication ×
        `speed`.
        """
        if self.market_now is not None:
            now = self.market_now()
            return None if now is None else (now - (bar.ts_ms + self.bar_ms)) / 1000.0
        if bar.published_s is None:
            return None
        return (self.clock() - bar.published_s) * self.speed

    def is_stale(self, bar: ScanBar) -> bool:
        """Older than `stale_after_s` of market time — or of unknown age: what cannot be dated is not traded."""
        age = self.market_age_s(bar)
        return age is None or age > self.stale_after_s

    def _note_stale(self, bar: ScanBar) -> None:
        """Count a stale scan; log the first at once and later ones as one line a minute."""
        self.stats.stale += 1
        now = time.monotonic()
        if self._stale_logged_at is not None and now - self._stale_logged_at < STALE_LOG_EVERY_S:
            self._stale_unlogged += 1
            return
        age = self.market_age_s(bar)
        why = "of unknown age (no market clock)" if age is None else _age_words(age, bar.ts_ms)
        more = f" (+{self._stale_unlogged} more stale since the last line)" if self._stale_unlogged else ""
        log.warning("scan %d is stale (%s): feeding histories, not trading%s", bar.scan_number, why, more)
        self._stale_logged_at = now
        self._stale_unlogged = 0

    async def process(self, bar: ScanBar) -> StepResult:
        """One scan from the bus."""
        if bar.scan_number <= self.last_scan:
            self.stats.duplicates += 1
            return StepResult(bar.scan_number, duplicate=True)
        stale = self.is_stale(bar)
        if stale:
            self._note_stale(bar)
        vol_ok = self.vol_gate.update(bar.prices.get(self.vol_ref, math.nan))
        before = self._kill_change(bar)
        manual, taken = self._take_exit_requests(bar, before)
        level = self.kill_state.level
        ob = self._take_ob(bar)
        result = await self._step(bar, trade=not stale and not level.blocks_exits, vol_ok=vol_ok,
                                  acb=self.acb_inbox.take(), posture=self.posture_now(), kill=level.blocks_entries,
                                  journal_input=True, commit=True, ob=ob, mc=self.mc_inbox.take(), kill_level=level,
                                  manual_exit=manual, records_before=before)
        if self.exit_requests is not None:
            for request in taken:   # journaled with the step: only now may the request file go
                self.exit_requests.done(request)
        result.stale = stale
        return result

    def _kill_change(self, bar: ScanBar) -> list[Any]:
        """The kill switch's level for this step; a change is journaled (who, why, when) and logged."""
        state = self.kill_switch.state() if self.kill_switch is not None else CLEAR
        if state.level == self.kill_state.level:
            self.kill_state = state
            return []
        log.warning("kill switch %s → %s at scan %d (%s%s)", self.kill_state.level, state.level, bar.scan_number,
                    state.reason or "no reason given", f", by {state.by}" if state.by else "")
        self.kill_state = state
        return [KillRecord(seq=self.journal.next_seq(), scan_number=bar.scan_number, level=str(state.level),
                           reason=state.reason, by=state.by, at=state.at)]

    def _take_exit_requests(self, bar: ScanBar, records: list[Any]) -> tuple[str | None, list[ExitRequest]]:
        """Operators' force exits waiting for this step: the engine's exit path closes a matching position."""
        if self.exit_requests is None:
            return None, []
        taken = self.exit_requests.pending()
        manual: str | None = None
        for request in taken:
            pos = self.engine.open_position
            applied = pos is not None and request.matches(pos.asset)
            if applied:
                assert pos is not None
                manual = pos.asset
            log.warning("force exit %s requested by %s (%s): %s", request.asset, request.by or "?",
                        request.reason or "no reason given",
                        f"closing {pos.asset} at the next traded bar" if applied and pos else "nothing open to close")
            records.append(ManualExitRecord(seq=self.journal.next_seq(), scan_number=bar.scan_number,
                                            request_id=request.id, asset=request.asset, reason=request.reason,
                                            by=request.by, at=request.at, applied=applied))
        return manual, taken

    def _take_ob(self, bar: ScanBar) -> list[float] | None:
        """Freeze the OB features for this bar's close into the engine's block (and the journal)."""
        if self.ob_view is None:
            self.ob_step.current = None
            return None
        view, fallback = self.ob_view(bar.ts_ms + self.bar_ms)
        flat, covered = flat_from_view(view, self.assets)
        self.ob_source = source_of(view, covered, fallback)
        self.ob_step.current = block_from_flat(flat, len(self.assets))
        return flat

    def _date_boundary(self, bar: ScanBar, posture: Posture) -> DayResult | None:
        date = datetime.fromtimestamp(bar.ts_ms / 1000, UTC).strftime("%Y-%m-%d")
        if self.engine.current_date == date:
            return None
        closed = self.engine.end_day() if self.engine.current_date is not None else None
        self.engine.begin_day(date, posture=posture)
        return closed

    def _input_record(self, bar: ScanBar, *, trade: bool, vol_ok: bool, acb: tuple[float, float] | None,
                      kill: bool, ob: list[float] | None, mc: tuple[float, float] | None,
                      kill_level: KillLevel | None, manual_exit: str | None) -> ScanInput:
        return input_from_bar(bar, seq=self.journal.next_seq(), vol_ok=vol_ok, trade=trade, acb=acb,
                              posture=self.posture, kill_switch=kill, ob=ob,
                              ob_source=None if ob is None else str(self.ob_source), mc=mc,
                              kill_level=None if kill_level is None else str(kill_level), manual_exit=manual_exit)

    def gate_snap(self, posture: Posture) -> GateSnap:
        return GateSnap(self.engine.day_base_boost, self.engine.day_beta, posture, self.engine.mc_gate_open)

    async def _step(self, bar: ScanBar, *, trade: bool, vol_ok: bool, acb: tuple[float, float] | None,
                    posture: Posture, kill: bool, journal_input: bool, commit: bool,
                    ob: list[float] | None = None, mc: tuple[float, float] | None = None,
                    kill_level: KillLevel | None = None, manual_exit: str | None = None,
                    records_before: list[Any] | None = None) -> StepResult:
        """Step the engine, then journal: input + commit in one write when the step orders nothing;
        the input first (write-ahead: written before the orders leave, fsynced beside them) and the
        fills + commit after when it does."""
        result = StepResult(bar.scan_number)
        self.posture = posture
        result.closed_day = self._date_boundary(bar, posture)
        if acb is not None:
            self.engine.update_acb_boost(*acb)
        if mc is not None:
            self.engine.update_mc(MCReport(*mc))
        if manual_exit is not None:
            self.engine.request_exit(None if manual_exit == ALL else manual_exit)
        self.engine.set_posture(posture)
        self.engine.set_kill_switch(kill)
        before = self.gate_snap(posture)
        hibernating = posture == Posture.HIBERNATE and self.engine.open_position is None
        out = self.engine.step_bar(bar.scan_number, bar.vel_div, bar.prices, bar.v50, bar.v750, vol_ok, bar.ts_ms,
                                   trade=trade and not hibernating)
        if not self._replaying:
            after = self.gate_snap(self.posture_now())
            if self.acb_inbox.pending or after != before:
                changed = tuple(name for name in GateSnap._fields if getattr(before, name) != getattr(after, name))
                result.stale_state = True
                result.changed_fields = changed or ("acb_pending",)
                self.stats.stale_state_events += 1
                log.warning("[STALE_STATE] gate changed mid-eval at scan %d: %s", bar.scan_number,
                            ", ".join(result.changed_fields))
        pending: list[Any] = list(records_before or [])
        if journal_input:
            pending.append(self._input_record(bar, trade=trade, vol_ok=vol_ok, acb=acb, kill=kill, ob=ob, mc=mc,
                                              kill_level=kill_level, manual_exit=manual_exit))
        syncing: asyncio.Future[None] | None = None
        if out.exits or out.entries:
            if pending:
                # write-ahead: in the file before any order leaves (a kill -9 loses nothing), fsynced while the
                # orders travel; an OS crash before the fsync is covered by the ids and the venue (docs/trader.md)
                self.journal.append(*pending, durable=False)
                syncing = asyncio.ensure_future(asyncio.to_thread(self.journal.sync))
                pending = []
        try:
            await self._orders(bar, out, result, pending)
        finally:
            if syncing is not None:
                await syncing       # the fills are never journaled before their intent is durable
        if self.venue_truth:
            pending += self._apply_cash(bar.scan_number, result)
        if commit:
            pending.append(Commit(seq=self.journal.next_seq(), scan_number=bar.scan_number,
                                  capital=self.engine.capital))
        if pending:
            self.journal.append(*pending)
        self.last_scan = bar.scan_number
        self.stats.scans += 1
        self.stats.traded_scans += int(trade)
        self.stats.last_scan_number = bar.scan_number
        self.stats.last_scan_ts_ms = bar.ts_ms
        self.scans_since_snapshot += 1
        if result.closed_day is not None or (not self._replaying and self.scans_since_snapshot >= self.snapshot_every):
            self._snapshot()
        return result

    async def _orders(self, bar: ScanBar, out: BarResult, result: StepResult, pending: list[Any]) -> None:
        """Every exit then every entry of the engine's step through the executor; records appended to `pending`."""
        if not (out.exits or out.entries):
            return
        exits: list[ClosedTrade] = []
        for engine_trade in out.exits:
            intent = exit_intent(self.book_id, engine_trade)
            fill, record = await self._execute(intent, bar.scan_number)
            pending += record
            if fill is None:   # refused or unfilled: the engine's own exit stays; the venue's side is reconciled
                result.refused.append((intent, self._refusal(intent)))
                trade_out = engine_trade
            else:
                result.orders.append((intent, fill))
                trade_out = (self.engine.apply_exit_fill(engine_trade, fill.price, fill.fee) if self.venue_truth
                             else engine_trade)
            exits.append(trade_out)
            if trade_out.trade_id not in self._journaled_trades:
                pending.append(TradeRecord(seq=self.journal.next_seq(), scan_number=bar.scan_number,
                                           trade=msgspec.to_builtins(trade_out)))
                self._journaled_trades.add(trade_out.trade_id)
            self.trades.append(trade_out)
        entries: list[OpenPosition] = []
        for pos in out.entries:
            intent = entry_intent(self.book_id, pos)
            fill, record = await self._execute(intent, bar.scan_number)
            pending += record
            if fill is None:   # the venue never took it: the position never existed
                result.refused.append((intent, self._refusal(intent)))
                self.engine.void_entry(pos.trade_id)
                continue
            result.orders.append((intent, fill))
            entries.append(self.engine.apply_entry_fill(pos.trade_id, fill.price, fill.quantity, fill.fee)
                           if self.venue_truth else pos)
        result.exits, result.entries = exits, entries

    async def _execute(self, intent: OrderIntent,
                       scan_number: int) -> tuple[Fill | None, list[FillRecord | RejectRecord]]:
        """Idempotent by client order id: journaled fill (or refusal) → venue lookup → submit.

        Returns the fill — None when the order was refused or not filled (`OrderRefused`) —
        and the record still to journal (none when it is already there).
        """
        fill = self._journal_fills.get(intent.client_order_id)
        if fill is not None:
            if isinstance(self.executor, PaperExecutor):
                self.executor.remember(fill)
            return fill, []
        if intent.client_order_id in self._journal_rejects:   # refused before (a replayed step): not again
            return None, []
        try:
            if self._replaying:
                fill = await self.executor.lookup(intent)
                if fill is not None:
                    self.stats.reconciled += 1
                    log.info("reconciled %s from the venue after a restart", intent.client_order_id)
            if fill is None:
                fill = await self.executor.submit(intent)
                self.stats.orders += 1
        except OrderRefused as exc:
            self.stats.refused += 1
            log.warning("scan %d: %s %s %s refused — %s", scan_number, intent.leg, intent.side, intent.symbol, exc)
            reject = RejectRecord(seq=self.journal.next_seq(), scan_number=scan_number,
                                  client_order_id=intent.client_order_id, trade_id=intent.trade_id, kind=intent.leg,
                                  symbol=intent.symbol, side=intent.side, source=exc.source, reason=exc.reason,
                                  detail=exc.detail)
            self._journal_rejects[intent.client_order_id] = reject
            return None, [reject]
        slippage = slippage_bps(intent, fill.price) if self.venue_truth else None
        record = FillRecord(seq=self.journal.next_seq(), scan_number=scan_number,
                            client_order_id=intent.client_order_id, trade_id=intent.trade_id, kind=intent.leg,
                            symbol=intent.symbol, side=intent.side, quantity=fill.quantity, price=fill.price,
                            fee=fill.fee, venue=fill.venue, venue_order_id=fill.venue_order_id,
                            model_price=intent.reference_price, slippage_bps=slippage, venue_ts=fill.venue_ts)
        self._journal_fills[intent.client_order_id] = fill
        return fill, [record]

    def _refusal(self, intent: OrderIntent) -> OrderRefused:
        r = self._journal_rejects[intent.client_order_id]
        return OrderRefused(r.source, r.reason, r.detail)

    def _apply_cash(self, scan_number: int, result: StepResult) -> list[CashRecord]:
        """The venue's funding flows since the last step (or, in a replay, the ones journaled with it)."""
        records: list[CashRecord] = []
        if self._replaying:
            for r in self._journal_cash.pop(scan_number, []):
                self.engine.apply_cash(r.amount)
                result.cash.append(CashFlow(r.amount, r.reason, r.ref, r.venue_ts))
            return records
        flows, self.cash_inbox = self.cash_inbox, []
        for flow in flows:
            self.engine.apply_cash(flow.amount)
            result.cash.append(flow)
            records.append(CashRecord(seq=self.journal.next_seq(), scan_number=scan_number, amount=flow.amount,
                                      reason=flow.reason, ref=flow.ref, venue_ts=flow.venue_ts))
        return records

    def _snapshot(self) -> None:
        self.journal.append(Snapshot(seq=self.journal.next_seq(), scan_number=self.last_scan,
                                     engine_state=msgspec.Raw(encode_state(self.engine.get_state())),
                                     vol_gate=encode_raw(self.vol_gate.get_state()),
                                     extra={"posture": self.posture}))
        self.scans_since_snapshot = 0
        self._journal_fills.clear()
        self._journal_rejects.clear()
        self._journal_cash.clear()
        self._journaled_trades.clear()

    def close(self) -> None:
        self._snapshot()
        self.journal.close()



def _age_words(age_s: float, ts_ms: int) -> str:
    """A stale scan's age as an operator reads it: seconds, minutes, hours — or its date when it is days old."""
    if age_s < 120:
        return f"{age_s:.1f} s of market time old"
    if age_s < 7200:
        return f"{age_s / 60:.1f} min of market time old"
    if age_s < 172_800:
        return f"{age_s / 3600:.1f} h of market time old"
    from datetime import UTC, datetime

    closed = datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"its bar closed {closed}, {age_s / 86_400:.0f} days before market time"
