"""The trader daemon (bible §14, §24.3): bus listeners in, journaled engine steps, results out.

Listeners only hand events over: scans go into a FIFO queue (every scan, in order),
ACB updates and posture into pending-flag holders (§14.2). The trading loop — not a
listener — drains them and calls the engine. Publication to the bus happens after the
journal has recorded the step, so the bus never shows what the books do not hold.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from dolphin.bus import (
    AsyncQueue,
    DailyResult,
    OpenPositionView,
    StrategyState,
    TradeView,
    schema,
    subscribe_async,
)
from dolphin.bus.codec import default_codec
from dolphin.bus.listeners import BusEvent
from dolphin.bus.ob_feed import ObFeed, ObView
from dolphin.bus.posture import AsyncPostureStore
from dolphin.bus.scan_codec import bar_from_record, bars_from_table, record_from_payload
from dolphin.config import load_config
from dolphin.config.champion import champion_hash
from dolphin.config.services import ServicesConfig, load_services_config
from dolphin.engine.engine import encode_state
from dolphin.enums import Posture, ScanRejection
from dolphin.execution.controls import journal_path
from dolphin.execution.executor import Executor, PaperExecutor
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.manual import ExitRequests
from dolphin.execution.orders import OrderUnresolved
from dolphin.execution.reconcile import RECENT_TRADES, reconcile_positions
from dolphin.execution.scan_gate import ScanGate
from dolphin.execution.trader import PendingUpdate, StepResult, TraderCore
from dolphin.market.clock import MarketClock
from dolphin.market.errors import MarketError
from dolphin.market.rest import BinanceRest
from dolphin.market.symbols import universe
from dolphin.market.urls import market_rest_url
from dolphin.scan.record import ScanBar, ScanRecord
from dolphin.services.runtime import ServiceContext
from dolphin.services.trader.session_log import SessionLog
from dolphin.store.arrow_scans import ScanFileError, read_scan, scan_path
from dolphin.store.journal import Journal
from dolphin.store.ob_cache import FallbackReader
from dolphin.store.scan_archive import ScanIndex

log = logging.getLogger("dolphin.trader")

HALT_RETRY_S = 5.0   # while the journal's disk refuses writes, probe it this often


class _AcbSink:
    """Listener sink for `acb_boost`: parse outside the lock, swap under it (§14.2)."""

    def __init__(self, inbox: PendingUpdate) -> None:
        self.inbox = inbox

    def deliver(self, event: BusEvent) -> None:
        payload = event.payload
        if payload is None:
            return
        update = (float(payload.boost), float(payload.beta))  # CPU work outside the lock
        self.inbox.offer(update)


class _McSink:
    """Listener sink for `mc_forewarner_latest`: the report's numbers, applied at the next step (§12)."""

    def __init__(self, inbox: PendingUpdate) -> None:
        self.inbox = inbox

    def deliver(self, event: BusEvent) -> None:
        payload = event.payload
        if payload is None:
            return
        self.inbox.offer((float(payload.catastrophic_prob), float(payload.envelope_score)))


class _PostureSink:
    def __init__(self, initial: Posture) -> None:
        self.posture = initial

    def deliver(self, event: BusEvent) -> None:
        if event.payload is not None:
            self.posture = Posture(event.payload.posture)  # one reference assignment: atomic


def archive_bars(home: Path, after: int, before: int | None = None) -> list[ScanBar]:
    """Archived scans with after < scan_number < before, in order: the fresh book's warm-up.

    Read in one batch (`load_arrow_scans`), so warming on thousands of scans is quick; gap
    fills read only the missing files through the archive index instead.
    """
    from dolphin.store.scan_archive import load_arrow_scans, resolve_archive
    root = home / "arrow_scans"
    if not root.exists():
        return []
    try:
        table = load_arrow_scans(resolve_archive(root), skip_corrupt=True)
    except Exception as exc:
        log.warning("scan archive %s unreadable (%s): nothing to warm on", root, exc)
        return []
    keep = table.scan_number > after
    if before is not None:
        keep &= table.scan_number < before
    return bars_from_table(table, keep)


def make_executor(scfg: ServicesConfig) -> Executor:
    if scfg.trader_venue == "sim":
        from dolphin.execution.venue import VenueExecutor

        return VenueExecutor.from_environment()
    return PaperExecutor()


class TraderService:
    """Wires a `TraderCore` to the bus: listeners, the trading loop, publication, session files."""

    def __init__(self, ctx: ServiceContext, scfg: ServicesConfig,
                 on_step: Callable[[TraderCore, StepResult], None] | None = None) -> None:
        self.ctx = ctx
        self.scfg = scfg
        self.cfg = load_config(scfg.trader.strategy)
        self.on_step = on_step
        self.assets = universe(scfg.scanner.symbols)
        self.scans = AsyncQueue(maxsize=100_000)
        self.posture = _PostureSink(Posture.APEX)
        self.core: TraderCore | None = None
        self.session: SessionLog | None = None
        self.needs_warmup = False
        self._last_snapshot_published = -1
        self.index = ScanIndex(ctx.home)
        self.ob_feed = ObFeed()
        self.ob_fallback = FallbackReader(ctx.home)   # OBF's file while its circuit is open (§15.6)
        self.market_clock = MarketClock(BinanceRest(market_rest_url(scfg)))
        self.gate = ScanGate(self.assets, scfg.scanner.bar_seconds * 1000, market_now=self.market_clock.now_ms,
                             archived=self._archived)
        self.venue_name = scfg.trader_venue     # the book's venue (`dolphin live`: live-<network>)
        self.journal_file = journal_path(ctx.home, self.cfg.name)
        self.session_dir = "paper_trading"
        self.errors = 0
        self.halted: str | None = None          # why the books cannot be written (the trader waits, then resumes)
        self.halts = 0
        self.dropped_while_halted = 0

    def _ob_view(self, close_ms: int) -> tuple[ObView, bool]:
        """The bus's OB for a bar close, or OBF's fallback file's during a bus outage (the flag: the file's)."""
        return self.ob_feed.at_or_fallback(close_ms, self.ob_fallback)

    def rejected_scans(self) -> dict[str, int]:
        """Bus scans refused so far, by reason: the codec's (not a scan at all) and the gate's."""
        counts = default_codec.rejections.by_reason(f"{schema.FEATURES}[{schema.LATEST_EIGEN_SCAN}]")
        for reason, n in self.gate.counts.items():
            counts[str(reason)] = counts.get(str(reason), 0) + n
        return counts

    def _archived(self, record: ScanRecord) -> ScanRecord | None:
        """The archived file of this scan number and bar time, if it is there (the gate's source of truth).

        The file name follows from the number and the bar time, so this is one stat() on the
        hot path; the scanner writes the file just after its bus put, so a live scan's file
        is usually not there yet — a mismatch is caught when the trader lags or replays.
        """
        path = scan_path(self.ctx.home, record)
        if not path.is_file():
            return None
        try:
            return read_scan(path)
        except ScanFileError:
            return None

    async def start(self) -> TraderCore:
        ctx = self.ctx
        client = ctx.client
        reading = await AsyncPostureStore(client).read()
        self.posture.posture = reading.posture
        if not await self.market_clock.sync():
            log.warning("the market's clock is not reachable yet: scans are fed, not traded, until it is")
        ctx.spawn(self.market_clock.run(ctx.stop), "market-clock")
        try:
            await self.ob_feed.start(client, ctx.bus)
        except Exception as exc:  # OB is an input among others: no OBF yet must not stop the trader
            log.warning("OB features not readable yet (%s): steps use neutral OB until OBF publishes", exc)
        core = self._new_core(self.make_executor(), PendingUpdate())
        self.core = core
        recovered = await core.start()
        await subscribe_async(client, schema.FEATURES, self.scans, key=schema.LATEST_EIGEN_SCAN,
                              kinds=frozenset({"ADDED", "UPDATED"}))
        await subscribe_async(client, schema.FEATURES, _AcbSink(core.acb_inbox), key=schema.ACB_BOOST,
                              kinds=frozenset({"ADDED", "UPDATED"}))
        await subscribe_async(client, schema.FEATURES, _McSink(core.mc_inbox), key=schema.MC_FOREWARNER_LATEST,
                              kinds=frozenset({"ADDED", "UPDATED"}))
        await subscribe_async(client, schema.SAFETY, self.posture, key=schema.LATEST,
                              kinds=frozenset({"ADDED", "UPDATED"}))
        self.needs_warmup = not recovered
        await self._offer_standing_risk(core)
        await reconcile_positions(core)
        self.session = SessionLog(ctx.home / self.session_dir, {
            "strategy": self.cfg.to_dict(), "champion_hash": champion_hash(self.cfg.frozen_params()),
            "services": msgspec.to_builtins(self.scfg), "venue": self.venue_name, "book_id": core.book_id,
            "journal": str(core.journal.path), "recovered": recovered, "started_at": time.time()})
        log.info("trader %s on %s: capital %.2f, last scan %d (%s)", self.cfg.name, self.venue_name,
                 core.engine.capital, core.last_scan, "recovered" if recovered else "fresh book")
        await self.publish(core, None)
        return core

    def make_executor(self) -> Executor:
        return make_executor(self.scfg)

    def _new_core(self, executor: Executor, acb_inbox: PendingUpdate,
                  mc_inbox: PendingUpdate | None = None) -> TraderCore:
        core = TraderCore(self.cfg, self.assets, Journal(self.journal_file),
                          executor, kill_switch=KillSwitch.under(self.ctx.home, self.scfg.trader.kill_switch),
                          stale_after_s=self.scfg.trader.stale_after_s, venue=self.venue_name,
                          bar_ms=self.scfg.scanner.bar_seconds * 1000, market_now=self.market_clock.now_ms,
                          ob_view=self._ob_view, posture_now=lambda: self.posture.posture,
                          exit_requests=ExitRequests.under(self.ctx.home))
        core.acb_inbox = acb_inbox   # the listener keeps delivering into the same inbox across a rebuild
        if mc_inbox is not None:
            core.mc_inbox = mc_inbox
        return core

    async def _offer_standing_risk(self, core: TraderCore) -> None:
        """The ACB boost and MC report on the bus now: the listeners only see later changes (applied next step)."""
        bus = self.ctx.bus
        acb = await bus.get(schema.FEATURES, schema.ACB_BOOST)
        if acb is not None:
            core.acb_inbox.offer((float(acb.boost), float(acb.beta)))
        mc = await bus.get(schema.FEATURES, schema.MC_FOREWARNER_LATEST)
        if mc is not None:
            core.mc_inbox.offer((float(mc.catastrophic_prob), float(mc.envelope_score)))

    async def _halt(self, core: TraderCore, exc: OSError | OrderUnresolved) -> None:
        """The books cannot be written: stop stepping, say so everywhere, retry until the disk takes writes.

        The engine in memory may be one step ahead of the journal, so it is dropped; `_resume`
        rebuilds the books from the journal — the same recovery as after a kill -9.
        """
        self.halted = (f"journal not writable: {exc.strerror or exc}" if isinstance(exc, OSError)
                       else f"an order's fate is unknown: {exc}")
        self.halts += 1
        core.journal.close()
        log.critical("HALTED: %s — no scan is traded until the books are rebuilt from the journal (retry every "
                     "%.0f s)", self.halted, HALT_RETRY_S)
        await self._publish_quietly(core)
        self.ctx.spawn(self._retry_resume(), "resume")

    async def _publish_quietly(self, core: TraderCore) -> None:
        try:
            await self.publish(core, None)
        except Exception as exc:  # the bus may be what is failing too
            log.warning("could not publish the trader's state: %s", exc)

    async def _retry_resume(self) -> None:
        """Until the books are rebuilt (or the service stops): probe every `HALT_RETRY_S`."""
        while self.halted is not None:
            if await self.ctx.sleep(HALT_RETRY_S):
                return
            if await self._resume():
                assert self.core is not None
                await self._publish_quietly(self.core)
                return

    async def _resume(self) -> bool:
        """Probe the journal's disk; when it takes a write again, rebuild the books from the journal."""
        if self.halted is None:
            return True
        old = self.core
        assert old is not None
        try:
            await asyncio.to_thread(_probe_writable, old.journal.path.parent)
            core = self._new_core(old.executor, old.acb_inbox, old.mc_inbox)
        except OSError as exc:
            log.info("journal still not writable (%s); next try in %.0f s", exc.strerror or exc, HALT_RETRY_S)
            return False
        try:
            recovered = await core.start()
        except (OSError, OrderUnresolved, MarketError) as exc:
            core.journal.close()
            log.info("books not rebuilt yet (%s); next try in %.0f s",
                     exc.strerror if isinstance(exc, OSError) and exc.strerror else exc, HALT_RETRY_S)
            return False
        self.core = core
        self.needs_warmup = not recovered
        log.warning("RESUMED after %s: books rebuilt from the journal (capital %.2f, last scan %d); "
                    "%d scan(s) arrived meanwhile and are filled from the archive", self.halted,
                    core.engine.capital, core.last_scan, self.dropped_while_halted)
        self.halted = None
        self.dropped_while_halted = 0
        return True

    async def _warm_up(self, core: TraderCore, first_live: ScanBar) -> None:
        """A fresh book warms at its first live scan: by then the scanner's backfill is archived.

        Everything archived before that scan feeds the engine and the volatility gate
        without trading — what `dolphin backtest --scans … --trade-from-scan N` replays.
        """
        self.needs_warmup = False
        bars = await asyncio.to_thread(archive_bars, self.ctx.home, 0, first_live.scan_number)
        core.warm(bars)

    async def _fill_gap(self, core: TraderCore, bar: ScanBar) -> None:
        """Step the archived scans between the last step and `bar` (fed, never traded: they are old).

        Only the missing files are read, through the archive index — never the whole archive.
        A gap the archive cannot fill (or a bus scan numbered far ahead) is left to the gate.
        """
        if self.needs_warmup:
            await self._warm_up(core, bar)
        if core.last_scan == 0 or bar.scan_number <= core.last_scan + 1:
            return
        before = min(bar.scan_number, core.last_scan + 1 + self.gate.max_jump_bars)
        records = await asyncio.to_thread(self._archived_between, core.last_scan, before)
        for record in records:
            await self._handle(core, bar_from_record(record))
            core.stats.gaps_filled += 1

    def _archived_between(self, after: int, before: int) -> list[ScanRecord]:
        self.index.refresh()
        return self.index.records(after, before)

    async def _handle(self, core: TraderCore, bar: ScanBar) -> StepResult:
        result = await core.process(bar)
        if result.duplicate:
            return result
        if self.on_step is not None:   # the step is journaled here (fills included); publication follows
            self.on_step(core, result)
        for intent, fill in result.orders:
            closed = next((t for t in result.exits if t.trade_id == intent.trade_id), None)
            if closed is None:
                log.info("scan %d: %s %s %.6g %s @ %.6g (fee %.4f, %s)", bar.scan_number, intent.leg, intent.side,
                         fill.quantity, intent.symbol, fill.price, fill.fee, intent.client_order_id)
            else:
                log.info("scan %d: %s %s %.6g %s @ %.6g (fee %.4f, %s): %s, pnl %+.2f", bar.scan_number, intent.leg,
                         intent.side, fill.quantity, intent.symbol, fill.price, fill.fee, intent.client_order_id,
                         closed.exit_reason, closed.pnl)
            if self.session is not None:
                self.session.fill(bar.scan_number, intent, fill, pnl=closed.pnl if closed else None,
                                  exit_reason=closed.exit_reason if closed else "")
        await self.publish(core, result)
        return result

    async def publish(self, core: TraderCore, result: StepResult | None) -> None:
        """STATE_BLUE and PNL_BLUE after the journal holds the step (never before)."""
        bus = self.ctx.bus
        eng = core.engine
        now = time.time()
        date = eng.current_date or time.strftime("%Y-%m-%d", time.gmtime(now))
        if result is not None and result.closed_day is not None:
            await bus.put(schema.PNL_BLUE, result.closed_day.date, _daily(result.closed_day, now))
        day = eng.end_day() if eng.current_date is not None else None
        pos = eng.open_position
        attach_state = core.journal.seq != self._last_snapshot_published and core.scans_since_snapshot == 0
        kill = core.kill_state   # what the trader applied at its last step
        state = StrategyState(
            strategy=self.cfg.name, capital=eng.capital, date=date, pnl=day.pnl if day else 0.0,
            trades=len(core.trades), peak_capital=eng.peak_capital, drawdown=min(1.0, eng.drawdown), updated_at=now,
            engine_state=msgspec.Raw(encode_state(eng.get_state())) if attach_state else msgspec.Raw(b"null"),
            open_position=None if pos is None else OpenPositionView(
                trade_id=pos.trade_id, asset=pos.asset, side=pos.side, entry_price=pos.entry_price,
                notional=pos.notional, leverage=pos.leverage, entry_ts=pos.entry_ts, entry_scan=pos.entry_bar),
            posture=eng.posture, last_scan_number=core.last_scan or None,
            last_scan_ts=core.stats.last_scan_ts_ms or None,
            recent_trades=[TradeView(trade_id=t.trade_id, asset=t.asset, side=t.side, entry_price=t.entry_price,
                                     exit_price=t.exit_price, pnl=t.pnl, exit_reason=t.exit_reason, exit_ts=t.exit_ts)
                           for t in core.trades[-RECENT_TRADES:]],
            venue=core.venue, stale_scans=core.stats.stale, stale_state_events=core.stats.stale_state_events,
            rejected_scans=self.rejected_scans(), errors=self.errors, halted=self.halted,
            duplicates=core.stats.duplicates, ob_source=str(core.ob_source), kill_level=str(kill.level),
            kill_reason=kill.reason, kill_by=kill.by, kill_at=kill.at or None, **self.state_extras(core))
        if attach_state:
            self._last_snapshot_published = core.journal.seq
        await bus.put(schema.STATE_BLUE, schema.LATEST, state)
        if day is not None:
            await bus.put(schema.PNL_BLUE, day.date, _daily(day, now, stale=bool(result and result.stale_state)))

    def state_extras(self, core: TraderCore) -> dict[str, Any]:
        """More fields of the published state (`dolphin live`: its counters and alerts)."""
        return {}

    async def loop(self) -> None:
        assert self.core is not None
        stop = asyncio.ensure_future(self.ctx.stop.wait())
        try:
            while not self.ctx.stop.is_set():
                get = asyncio.ensure_future(self.scans.get())
                done, _ = await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    break
                event = get.result()
                if event.payload is None:
                    continue
                if self.halted is not None:
                    self.dropped_while_halted += 1   # in the archive: the gap fill feeds it after the resume
                    continue
                core = self.core
                t0 = time.perf_counter()
                try:
                    await self._offer(core, event.payload)
                except (OSError, OrderUnresolved) as exc:   # the journal cannot be written / an order is lost
                    await self._halt(core, exc)
                    continue
                except Exception:   # nothing a bus writer sends may stop the trader
                    self.errors += 1
                    log.exception("scan event %s could not be processed; the trader goes on",
                                  getattr(event.payload, "scan_number", "?"))
                core.stats.last_latency_ms = (time.perf_counter() - t0) * 1000
        finally:
            stop.cancel()

    async def _offer(self, core: TraderCore, payload: Any) -> StepResult | None:
        """One bus scan through the trust boundary: plausibility, gap fill, sequence, archive, then a step."""
        try:
            record = record_from_payload(payload)
        except ValueError as exc:
            self.gate.refuse(ScanRejection.IMPLAUSIBLE, getattr(payload, "scan_number", 0), str(exc))
            return None
        if self.gate.screen(record).reason is not None:   # implausible or in the future: no gap fill on it
            return None
        bar = bar_from_record(record, published_s=payload.published_s())
        await self._fill_gap(core, bar)
        verdict = self.gate.check(record, core.last_scan, core.stats.last_scan_ts_ms or None)
        if verdict.duplicate:
            core.stats.duplicates += 1
            return None
        if not verdict.admitted:
            return None
        return await self._handle(core, bar)

    async def close(self) -> None:
        await self.market_clock.rest.close()
        if self.core is not None:
            if self.halted is None:
                try:
                    self.core.close()   # a final snapshot
                except OSError as exc:
                    log.error("could not write the final snapshot (%s); recovery replays the journal instead", exc)
            else:
                self.core.journal.close()
            await self.core.executor.close()
        if self.session is not None:
            self.session.close()


def _probe_writable(directory: Path) -> None:
    """Raise OSError unless `directory` takes a small fsynced write (a full disk refuses it)."""
    probe = directory / ".write-probe"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0" * 65_536)
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        probe.unlink(missing_ok=True)


def _daily(day: Any, now: float, stale: bool = False) -> DailyResult:
    return DailyResult(date=day.date, pnl=day.pnl, capital=day.capital, trades=day.trades, boost=day.boost,
                       beta=day.beta, mc_status=day.mc_status, posture=day.posture, stale_state=stale, updated_at=now)


async def run(ctx: ServiceContext, on_step: Callable[[TraderCore, StepResult], None] | None = None) -> None:
    scfg = load_services_config()
    service = TraderService(ctx, scfg, on_step)
    if await ctx.connect_bus() is None:
        return
    try:
        await service.start()
        ctx.phase = "running"
        await service.loop()
    finally:
        await service.close()
