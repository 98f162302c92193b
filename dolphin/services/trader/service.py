"""The trader daemon (bible §14, §24.3): bus listeners in, journaled engine steps, results out.

Listeners only hand events over: scans go into a FIFO queue (every scan, in order),
ACB updates and posture into pending-flag holders (§14.2). The trading loop — not a
listener — drains them and calls the engine. Publication to the bus happens after the
journal has recorded the step, so the bus never shows what the books do not hold.
"""

from __future__ import annotations

import asyncio
import logging
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
from dolphin.bus.listeners import BusEvent
from dolphin.bus.posture import AsyncPostureStore
from dolphin.bus.scan_codec import bar_from_payload, bars_from_table
from dolphin.config import load_config
from dolphin.config.champion import champion_hash
from dolphin.config.services import ServicesConfig, load_services_config
from dolphin.engine.engine import encode_state
from dolphin.enums import Posture
from dolphin.execution.executor import Executor, PaperExecutor
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.reconcile import RECENT_TRADES, reconcile_positions
from dolphin.execution.trader import PendingUpdate, StepResult, TraderCore
from dolphin.market.symbols import universe
from dolphin.scan.record import ScanBar
from dolphin.services.runtime import ServiceContext
from dolphin.services.trader.session_log import SessionLog
from dolphin.store.journal import Journal

log = logging.getLogger("dolphin.trader")


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


class _PostureSink:
    def __init__(self, initial: Posture) -> None:
        self.posture = initial

    def deliver(self, event: BusEvent) -> None:
        if event.payload is not None:
            self.posture = Posture(event.payload.posture)  # one reference assignment: atomic


def archive_bars(home: Path, after: int, before: int | None = None) -> list[ScanBar]:
    """Archived scans with after < scan_number < before, in order (warm-up and gap fill).

    Read in one batch (`load_arrow_scans`), so warming on thousands of scans is quick.
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
    if scfg.trader.venue == "sim":
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

    async def start(self) -> TraderCore:
        ctx = self.ctx
        client = ctx.client
        reading = await AsyncPostureStore(client).read()
        self.posture.posture = reading.posture
        core = TraderCore(self.cfg, self.assets, Journal(ctx.home / "journal" / f"{self.cfg.name}.jsonl"),
                          make_executor(self.scfg), kill_switch=KillSwitch.under(ctx.home, self.scfg.trader.kill_switch),
                          speed=self.scfg.market.speed if self.scfg.market.source == "sim" else 1.0,
                          stale_after_s=self.scfg.trader.stale_after_s, venue=self.scfg.trader.venue,
                          posture_now=lambda: self.posture.posture)
        self.core = core
        recovered = await core.start()
        await subscribe_async(client, schema.FEATURES, self.scans, key=schema.LATEST_EIGEN_SCAN,
                              kinds=frozenset({"ADDED", "UPDATED"}))
        await subscribe_async(client, schema.FEATURES, _AcbSink(core.acb_inbox), key=schema.ACB_BOOST,
                              kinds=frozenset({"ADDED", "UPDATED"}))
        await subscribe_async(client, schema.SAFETY, self.posture, key=schema.LATEST,
                              kinds=frozenset({"ADDED", "UPDATED"}))
        self.needs_warmup = not recovered
        await reconcile_positions(core)
        self.session = SessionLog(ctx.home / "paper_trading", {
            "strategy": self.cfg.to_dict(), "champion_hash": champion_hash(self.cfg.frozen_params()),
            "services": msgspec.to_builtins(self.scfg), "venue": self.scfg.trader.venue, "book_id": core.book_id,
            "journal": str(core.journal.path), "recovered": recovered, "started_at": time.time()})
        log.info("trader %s on %s: capital %.2f, last scan %d (%s)", self.cfg.name, self.scfg.trader.venue,
                 core.engine.capital, core.last_scan, "recovered" if recovered else "fresh book")
        await self.publish(core, None)
        return core

    async def _warm_up(self, core: TraderCore, first_live: ScanBar) -> None:
        """A fresh book warms at its first live scan: by then the scanner's backfill is archived.

        Everything archived before that scan feeds the engine and the volatility gate
        without trading — what `dolphin backtest --scans … --trade-from-scan N` replays.
        """
        self.needs_warmup = False
        bars = await asyncio.to_thread(archive_bars, self.ctx.home, 0, first_live.scan_number)
        core.warm(bars)

    async def _fill_gap(self, core: TraderCore, bar: ScanBar) -> None:
        if self.needs_warmup:
            await self._warm_up(core, bar)
        if core.last_scan == 0 or bar.scan_number <= core.last_scan + 1:
            return
        missing = await asyncio.to_thread(archive_bars, self.ctx.home, core.last_scan, bar.scan_number)
        for old in missing:
            await self._handle(core, old)
            core.stats.gaps_filled += 1
        if core.last_scan + 1 < bar.scan_number:
            log.warning("scans %d..%d are not in the archive: the engine skips them", core.last_scan + 1,
                        bar.scan_number - 1)

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
            venue=core.venue, stale_scans=core.stats.stale, stale_state_events=core.stats.stale_state_events)
        if attach_state:
            self._last_snapshot_published = core.journal.seq
        await bus.put(schema.STATE_BLUE, schema.LATEST, state)
        if day is not None:
            await bus.put(schema.PNL_BLUE, day.date, _daily(day, now, stale=bool(result and result.stale_state)))

    async def loop(self) -> None:
        core = self.core
        assert core is not None
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
                t0 = time.perf_counter()
                bar = bar_from_payload(event.payload)
                await self._fill_gap(core, bar)
                await self._handle(core, bar)
                core.stats.last_latency_ms = (time.perf_counter() - t0) * 1000
        finally:
            stop.cancel()

    async def close(self) -> None:
        if self.core is not None:
            self.core.close()
            await self.core.executor.close()
        if self.session is not None:
            self.session.close()


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
