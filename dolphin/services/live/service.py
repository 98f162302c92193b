"""`dolphin live`: the trader service with the live executor (docs/live.md).

The same `TraderService` and `TraderCore` as paper — bus listeners, gate, journal,
kill switch, force exits, publication — with the `LiveExecutor` instead of the paper
one, so live and paper run the same engine on the same inputs (parity by construction).
Around the core it wires:

* the **user-data stream** into the venue's books (fills, positions, wallet, funding);
* **reconciliation** at start (positions, open orders, fills since the journal's last
  venue event), every ``reconcile_every_s``, and after each reconnect (open orders
  resynchronised from REST first) — never while a step is running (one lock);
* the **kill switch**: halt cancels every open order on the venue; automatic escalation
  (temporary pause, persistent halt) through the same switch;
* **alerts** into the journal (between steps), on the bus (``StrategyState.live``) and in
  the TUI; counters for `dolphin live status`.

Its book is its own journal (``journal/<strategy>-live-<network>.jsonl``, venue
``live-<network>``): a paper book and a live book never share a file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dolphin.config.services import ServicesConfig, load_services_config, override
from dolphin.enums import KillLevel, PositionSide
from dolphin.execution.executor import Executor
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.live.alerts import AlertBook
from dolphin.execution.live.books import VenueBooks
from dolphin.execution.live.escalation import Escalator
from dolphin.execution.live.executor import LiveExecutor
from dolphin.execution.live.history import VenueHistory, venue_history
from dolphin.execution.live.kinds import AlertAction, AlertKind
from dolphin.execution.live.marks import MarkCache
from dolphin.execution.live.reconcile import LiveReconciler
from dolphin.execution.live.risk import Exposure
from dolphin.execution.live.status import build_status
from dolphin.execution.live.userstream import UserStream
from dolphin.execution.live.venue import install_redactor, keys_file, live_journal_path, load_keys, resolve_venue
from dolphin.execution.orders import CashFlow, slippage_bps
from dolphin.execution.trader import StepResult, TraderCore
from dolphin.market.errors import MarketError
from dolphin.market.rest import BinanceRest
from dolphin.services.runtime import ServiceContext
from dolphin.services.trader.service import TraderService

log = logging.getLogger("dolphin.live")

KILL_POLL_S = 0.5
STREAM_CONNECT_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class LiveOptions:
    mainnet: bool = False     # only the command line sets it (after its typed confirmation or --yes-mainnet)


def live_services_config(scfg: ServicesConfig) -> ServicesConfig:
    """The services config with ``live.strategy`` (when set) as the trader's strategy."""
    return override(scfg, "trader", strategy=scfg.live.strategy) if scfg.live.strategy else scfg


class LiveTraderService(TraderService):
    def __init__(self, ctx: ServiceContext, scfg: ServicesConfig, options: LiveOptions = LiveOptions(),
                 on_step: Callable[[TraderCore, StepResult], None] | None = None) -> None:
        scfg = live_services_config(scfg)
        super().__init__(ctx, scfg, on_step)
        live = scfg.live
        self.options = options
        self.venue = resolve_venue(mainnet=options.mainnet)
        self.keys = load_keys(self.venue, keys_file(ctx.home, live.keys_file))
        self.redactor = install_redactor(list(self.keys.secrets()))
        self.venue_name = self.venue.book_venue
        self.journal_file = live_journal_path(ctx.home, self.cfg.name, self.venue.network)
        self.session_dir = "live_trading"
        self.lock = asyncio.Lock()
        self.rest = BinanceRest(self.venue.rest_url, *self.keys.secrets(), allow_mainnet=self.venue.is_mainnet)
        policy = {AlertKind.PHANTOM_POSITION: AlertAction(live.on_phantom_position),
                  AlertKind.ORPHAN_ORDER: AlertAction(live.on_orphan_order),
                  AlertKind.SIDE_MISMATCH: AlertAction(live.on_side_mismatch),
                  AlertKind.SIZE_MISMATCH: AlertAction(live.on_size_mismatch)}
        self.alerts = AlertBook(policy)
        self.kill = KillSwitch.under(ctx.home, scfg.trader.kill_switch)
        self.escalator = Escalator(self.kill, live, self.alerts)
        self.alerts.on_escalate = self.escalator.escalate
        self.books = VenueBooks("dol", self.alerts)
        self.books.on_wallet = self.escalator.wallet
        self.marks = MarkCache(self.rest, self.venue.ws_url, self.assets)
        self.stream = UserStream(self.rest, self.venue.ws_url, self.books.on_event,
                                 keepalive_every_s=live.keepalive_every_s, backoff_max_s=live.backoff_max_s,
                                 reconnects_per_min=live.reconnects_per_min, on_reconnect=self._after_reconnect,
                                 on_key=self.redactor.add, on_storm=self._storm)
        self.executor = LiveExecutor(self.rest, self.books, self.marks, self.alerts, live, venue=self.venue_name,
                                     exposure=self._exposure, kill_level=lambda: self.kill.state().level,
                                     on_accepted=self.escalator.order_accepted,
                                     on_rejected=self.escalator.order_rejected,
                                     stream_up=lambda: self.stream.stats.connected)
        self.reconciler = LiveReconciler(self.rest, self.books, self.executor, self.alerts, self.escalator,
                                         self._expected)
        self.history = VenueHistory()
        self._funding = asyncio.Event()
        self.books.on_funding = self._funding_event
        self.venue_start_ms: int | None = None   # the venue's clock at this session's start: where funding is read from
        self._kill_level: KillLevel | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.last_slippage_bps: float | None = None
        self.started = False

    # ------------------------------------------------------------------ the core's executor and hooks
    def make_executor(self) -> Executor:
        return self.executor

    def _exposure(self) -> Exposure:
        marks = {s: m for s in self.books.positions if (m := self.marks.cached(s)) is not None}
        st = self.reconciler.state
        return Exposure(wallet=self.books.wallet, notional=self.books.open_notional(marks),
                        unknown=self.reconciler.unknown, disputed=frozenset(st.disputed))

    def _expected(self) -> dict[str, float]:
        """The books' positions on the venue: the engine's open position, in the venue's step-rounded size."""
        core = self.core
        pos = core.engine.open_position if core is not None else None
        if pos is None:
            return {}
        raw = pos.notional / pos.entry_price
        f = self.executor.filters.get(pos.asset)
        return {pos.asset: PositionSide(pos.side).sign * (f.quantity(raw) if f is not None else raw)}

    def state_extras(self, core: TraderCore) -> dict[str, Any]:
        return {"live": build_status(self.venue, self.executor, self.books, self.stream, self.reconciler,
                                     self.escalator, self.alerts, self.last_slippage_bps)}

    # ------------------------------------------------------------------ start
    async def start(self) -> TraderCore:
        log.info("live trading on %s (%s), keys from %s", self.venue.network, self.venue.rest_url, self.keys.source)
        self.history = await asyncio.to_thread(venue_history, self.journal_file)
        try:
            await self.executor.load_filters()
        except MarketError as exc:
            log.warning("the venue's symbol rules are not readable yet (%s): loaded at the first order", exc)
        try:
            self.venue_start_ms = await self.rest.server_time()
        except MarketError as exc:
            log.warning("the venue's time is not readable yet (%s): funding is read from its first event", exc)
        core = await super().start()
        self.books.prefix = f"dol{core.book_id}-"
        await self.marks.start()
        await self.stream.start()
        if not await self.stream.wait_connected(STREAM_CONNECT_WAIT_S):
            log.warning("the user-data stream is not connected yet: fills are read from REST until it is")
        async with self.lock:
            await self._start_reconcile(core)
            self.alerts.flush(core.journal)
        self.started = True
        self._tasks = [self.ctx.spawn(self._reconcile_forever(), "reconcile"),
                       self.ctx.spawn(self._watch_kill(), "kill-watch"),
                       self.ctx.spawn(self._funding_forever(), "funding")]
        await self.publish(core, None)
        return core

    async def _start_reconcile(self, core: TraderCore) -> None:
        """Before the first new order: positions, open orders and the fills since the journal's last venue event."""
        await self.reconciler.run("start")
        if self.reconciler.state.unknown_all:
            log.error("the venue did not report its positions at start: every position is UNKNOWN, no entries until "
                      "a reconciliation succeeds (every %.0f s)", self.scfg.live.reconcile_every_s)
            return
        since = self.history.last_event_ms
        if since is not None:
            symbols = self.history.symbols | {s for s, a in self.books.positions.items() if a}
            await self.reconciler.unknown_fills(since + 1, self.history.order_ids, symbols)
        await self._catch_up_funding(core)

    def _funding_event(self, venue_ms: int) -> None:
        """An ACCOUNT_UPDATE with reason FUNDING_FEE: read the income (one flow per row) between steps."""
        if self.venue_start_ms is None or 0 < venue_ms < self.venue_start_ms:
            self.venue_start_ms = venue_ms - 1
        self._funding.set()

    async def _catch_up_funding(self, core: TraderCore) -> None:
        """Funding the venue booked since the journal's last venue event (or this session's start, on the venue's
        clock, for a book without one), not yet in the journal."""
        since = self.history.last_event_ms
        if since is None:
            since = self.venue_start_ms
        if since is None:
            return
        try:
            rows = await self.rest.income("FUNDING_FEE", start_ms=since + 1)
        except MarketError as exc:
            log.warning("funding since the journal's last venue event not readable (%s); asked again later", exc)
            return
        for row in rows:
            ref = f"income:{row.tran_id}"
            if ref in self.history.cash_refs or row.asset not in ("USDT", ""):
                continue
            self.history.cash_refs.add(ref)
            self.history.last_cash_ms = max(self.history.last_cash_ms or 0, row.time)
            core.cash_inbox.append(CashFlow(amount=row.income, reason=row.income_type, ref=ref, venue_ts=row.time))
            log.info("funding %+.4f USDT (%s) booked at the next step", row.income, row.symbol)

    # ------------------------------------------------------------------ the step, one at a time
    async def _offer(self, core: TraderCore, payload: Any) -> StepResult | None:
        async with self.lock:
            result = await super()._offer(core, payload)
            self.alerts.flush(core.journal)
            return result

    # ------------------------------------------------------------------ background work, between steps
    async def _between_steps(self, what: str, work: Callable[[TraderCore], Any]) -> None:
        """Run ``work`` under the step lock when the books are live (not halted); alerts journaled, state published."""
        async with self.lock:
            core = self.core
            if core is None or self.halted is not None:
                return
            try:
                await work(core)
                self.alerts.flush(core.journal)
            except OSError as exc:
                log.error("%s: the journal refused the alerts (%s)", what, exc)
            await self._publish_quietly(core)

    async def _reconcile_forever(self) -> None:
        while not await self.ctx.sleep(self.scfg.live.reconcile_every_s):
            await self._between_steps("reconcile", lambda core: self.reconciler.run("periodic"))

    async def _after_reconnect(self) -> None:
        async def work(core: TraderCore) -> None:
            try:
                self.stream.stats.resyncs += await self.executor.resync_all()
            except MarketError as exc:
                log.warning("after the reconnect: open orders not resynchronised (%s)", exc)
            await self.reconciler.run("reconnect")
            self._funding.set()    # a funding event may have passed while the stream was down
        await self._between_steps("reconnect", work)

    async def _funding_forever(self) -> None:
        while not self.ctx.stop.is_set():
            await self._funding.wait()
            self._funding.clear()
            await self._between_steps("funding", self._catch_up_funding)

    async def _watch_kill(self) -> None:
        """Halt cancels every open order on the venue, as soon as it is set (and at start)."""
        while True:
            level = self.kill.state().level
            if level is KillLevel.HALT and self._kill_level is not KillLevel.HALT:
                log.warning("kill switch at halt: cancelling every open order on the venue")
                try:
                    async with self.lock:
                        n = await self.executor.cancel_all()
                        if self.core is not None:
                            self.alerts.flush(self.core.journal)
                    log.warning("halt: %d open order(s) cancelled", n)
                except (MarketError, OSError) as exc:
                    log.error("halt: the open orders could not be cancelled (%s); retrying", exc)
                    if await self.ctx.sleep(KILL_POLL_S * 4):
                        return
                    continue
                if self.core is not None:
                    await self._publish_quietly(self.core)
            self._kill_level = level
            if await self.ctx.sleep(KILL_POLL_S):
                return

    def _storm(self, detail: str) -> None:
        self.alerts.raise_(AlertKind.STREAM, "", detail)

    # ------------------------------------------------------------------ publication and shutdown
    async def publish(self, core: TraderCore, result: StepResult | None) -> None:
        if result is not None:
            for intent, fill in result.orders:
                self.last_slippage_bps = slippage_bps(intent, fill.price)
        await super().publish(core, result)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        await self.stream.close()
        await self.marks.close()
        await super().close()


async def run(ctx: ServiceContext, options: LiveOptions = LiveOptions(),
              on_step: Callable[[TraderCore, StepResult], None] | None = None) -> None:
    scfg = load_services_config()
    service = LiveTraderService(ctx, scfg, options, on_step)
    if await ctx.connect_bus() is None:
        await service.close()
        return
    try:
        await service.start()
        ctx.phase = "running"
        await service.loop()
    finally:
        await service.close()


__all__ = ["LiveOptions", "LiveTraderService", "live_journal_path", "run"]
