"""Engine intents as orders on the live venue: checked, idempotent, and filled from the venue's own reports.

One leg (an entry or an exit of an engine trade) becomes:

1. **checks** — an entry passes the pre-trade risk checks (`risk.check_entry`) and takes a
   token from the throttle, or is refused (`OrderRefused`, journaled by the trader, the
   entry voided); an exit is never refused, only paced;
2. **orders** — ``market`` (default) or ``post_only``: a GTX limit at the passive best price
   that waits ``post_only_timeout_s``, then is cancelled and its remainder sent as market.
   The leg's client order id is the trade's deterministic id (``dol<book>-<trade>-e|x``);
   a post-only leg's market remainder is that id + ``.m``;
3. **a lost acknowledgement is found before anything is resent** — a network failure, a
   5xx or -1007 ("execution status unknown") leaves the order's fate unknown: the order is
   looked up by its client order id; found → followed, absent (-2013) → resent with the
   same id, unreachable → asked again with backoff. The venue refuses a reused id (-4116):
   on a resend that answer is resolved by a lookup too; on a leg's *first* send it means
   the id was taken by an order the journal does not know (a journal tail lost to an OS
   crash before its fsync, docs/trader.md) and the leg is refused, never adopted. So there
   is never a duplicate. An order
   still unknown after ``order_resolve_s`` raises `OrderUnresolved`: the trader stops
   stepping and rebuilds from its journal, whose replay looks the order up again;
4. **the fill is the venue's** — the leg completes when the venue calls its order final and
   the fills in the books (from the user-data stream's ``TRADE`` events, and from REST
   ``userTrades`` when the stream is late: by trade id, never twice) add up to what the
   venue executed. Price = the fills' average, quantity = their sum, fee = their
   commissions. Partial fills simply add up.

Why market by default: a taker fill costs 0.05 % a leg against a maker's 0.02 %, i.e.
0.03 % (3 bps) a leg, 6 bps a round trip — about 7.5 USDT on the champion's ~25 kUSDT
notional. But DOLPHIN's signal is a 5-second momentum break; a post-only order fills
mostly when the market comes back against the signal (adverse selection) and misses the
moves that run, the entry waits up to the timeout, and a missed entry is a trade the
backtest counted and the book did not take. The engine's TP is 95 bps: 6 bps of fees is
the smaller risk than unfilled or late legs, so market is the default and post-only is
there to measure the difference on testnet (docs/live.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from dolphin.enums import KillLevel
from dolphin.execution.live.alerts import AlertBook
from dolphin.execution.live.books import OrderTrack, VenueBooks
from dolphin.execution.live.filters import SymbolFilter, filters_from
from dolphin.execution.live.kinds import AlertKind, OrderType, RiskCheck
from dolphin.execution.live.marks import MarkCache
from dolphin.execution.live.risk import Exposure, OrderThrottle, RiskLimits, check_entry
from dolphin.execution.orders import Fill, OrderIntent, OrderRefused, OrderUnresolved
from dolphin.market.errors import (
    BinanceAPIError,
    DuplicateClientOrderIdError,
    MarketUnavailableError,
    RateLimitError,
    SettingRejectedError,
    UnknownOrderError,
)
from dolphin.market.rest import BinanceRest

log = logging.getLogger("dolphin.live")

UNKNOWN_OUTCOME_CODES = frozenset({-1000, -1001, -1006, -1007, -1008})
MARKET_SUFFIX = ".m"
POST_ONLY_REJECTED = -5022


def _outcome_unknown(exc: BaseException) -> bool:
    """The request may or may not have been executed: the venue must be asked before anything is resent."""
    if isinstance(exc, MarketUnavailableError):
        return True
    return isinstance(exc, BinanceAPIError) and (exc.code in UNKNOWN_OUTCOME_CODES or exc.status >= 500)


class ExecutorCounters:
    def __init__(self) -> None:
        self.orders = 0                 # orders sent (a post-only leg with its remainder counts 2)
        self.legs = 0                   # legs filled
        self.risk_rejects: dict[str, int] = {}
        self.venue_rejects = 0
        self.unfilled = 0
        self.lost_acks = 0              # orders whose fate had to be looked up (and was found or resent)
        self.resent = 0
        self.rate_limited = 0
        self.stream_late = 0            # legs completed from REST because the stream had not told yet
        self.post_only_filled = 0
        self.post_only_fallbacks = 0
        self.halt_cancels = 0
        self.last_latency_ms: float | None = None
        self.latencies: list[float] = []

    def latency(self, ms: float) -> None:
        self.last_latency_ms = ms
        self.latencies.append(ms)
        if len(self.latencies) > 200:
            del self.latencies[:100]


class LiveExecutor:
    """The `Executor` of `dolphin live` (see the module docstring)."""

    def __init__(self, rest: BinanceRest, books: VenueBooks, marks: MarkCache, alerts: AlertBook, live: Any, *,
                 venue: str, exposure: Callable[[], Exposure], kill_level: Callable[[], KillLevel],
                 on_accepted: Callable[[float], None] | None = None,
                 on_rejected: Callable[[str], None] | None = None,
                 stream_up: Callable[[], bool] = lambda: True) -> None:
        self.rest = rest
        self.books = books
        self.marks = marks
        self.alerts = alerts
        self.name = venue
        self.exposure = exposure
        self.kill_level = kill_level
        self.on_accepted = on_accepted
        self.on_rejected = on_rejected
        self.stream_up = stream_up
        self.limits = RiskLimits.from_settings(live)
        self.throttle = OrderThrottle(live.max_orders_per_s, live.order_burst)
        self.entry_order = OrderType(live.entry_order)
        self.exit_order = OrderType(live.exit_order)
        self.post_only_timeout_s = float(live.post_only_timeout_s)
        self.fill_timeout_s = float(live.fill_timeout_s)
        self.resolve_s = float(live.order_resolve_s)
        self.symbol_leverage = int(live.symbol_leverage)
        self.filters: dict[str, SymbolFilter] = {}
        self._leverage_set: set[str] = set()
        self.counters = ExecutorCounters()

    async def load_filters(self) -> dict[str, SymbolFilter]:
        self.filters = filters_from(await self.rest.exchange_info())
        return self.filters

    async def _filter(self, symbol: str) -> SymbolFilter:
        if symbol not in self.filters:
            await self.load_filters()
        f = self.filters.get(symbol)
        if f is None:
            raise OrderRefused("venue", "-1121", f"{symbol} is not traded on this venue")
        return f

    async def quantity(self, intent: OrderIntent) -> float:
        """The leg's order quantity: the engine's, floored to the symbol's step."""
        return (await self._filter(intent.symbol)).quantity(intent.quantity)

    # ------------------------------------------------------------------ the Executor protocol
    async def submit(self, intent: OrderIntent) -> Fill:
        f = await self._filter(intent.symbol)
        qty = f.quantity(intent.quantity)
        if intent.leg == "entry":
            await self._check_entry(intent, qty, f)
        else:
            if qty <= 0:
                raise OrderRefused("risk", str(RiskCheck.MIN_NOTIONAL),
                                   f"exit of {intent.quantity:g} {intent.symbol} rounds to 0 at the venue's step")
            await self.throttle.take()
        await self._ensure_leverage(intent.symbol)
        kind = self.entry_order if intent.leg == "entry" else self.exit_order
        if kind is OrderType.POST_ONLY:
            tracks = await self._post_only(intent, qty, f)
        else:
            tracks = [await self._complete(await self._place(intent, intent.client_order_id, qty, "MARKET"))]
        return self._fill(intent, tracks)

    async def lookup(self, intent: OrderIntent) -> Fill | None:
        """After a restart: the leg's orders at the venue by client order id; None when the venue has none."""
        cid = intent.client_order_id
        tracks = [t for t in [await self._find(intent.symbol, cid), await self._find(intent.symbol, cid + MARKET_SUFFIX)]
                  if t is not None]
        if not tracks:
            return None
        parent = tracks[0] if tracks[0].client_order_id == cid else None
        if parent is not None and parent.open and len(tracks) == 1:
            # a post-only leg caught resting by the crash: its timeout has long passed
            f = await self._filter(intent.symbol)
            qty = f.quantity(intent.quantity)
            tracks = await self._finish_post_only(intent, parent, qty, f)
        else:
            tracks = [await self._complete(t) for t in tracks]
        if sum(t.filled for t in tracks) <= 0:
            raise OrderRefused("unfilled", "0", f"{cid} was found at the venue without a fill")
        return self._fill(intent, tracks)

    async def close(self) -> None:
        await self.rest.close()

    # ------------------------------------------------------------------ checks
    async def _check_entry(self, intent: OrderIntent, qty: float, f: SymbolFilter) -> None:
        mark = await self.marks.mark(intent.symbol)
        verdict = check_entry(intent.symbol, qty, intent.reference_price, mark, f.min_notional, self.limits,
                              self.exposure())
        if verdict is None and not self.throttle.try_take():
            verdict = (RiskCheck.ORDER_RATE, f"more than {self.throttle.rate:g} orders/s (burst "
                                             f"{self.throttle.burst:g}): entry refused")
        if verdict is not None:
            check, detail = verdict
            self.counters.risk_rejects[str(check)] = self.counters.risk_rejects.get(str(check), 0) + 1
            self.alerts.raise_(AlertKind.RISK_REJECT, intent.symbol, f"{intent.client_order_id}: {check}: {detail}")
            raise OrderRefused("risk", str(check), detail)

    async def _ensure_leverage(self, symbol: str) -> None:
        """The symbol's venue leverage, set once per run before its first order (a refusal is only logged)."""
        if symbol in self._leverage_set:
            return
        try:
            await self.rest.change_leverage(symbol, self.symbol_leverage)
        except (SettingRejectedError, BinanceAPIError) as exc:
            log.warning("could not set %s leverage to %d: %s", symbol, self.symbol_leverage, exc)
        self._leverage_set.add(symbol)

    # ------------------------------------------------------------------ placing, idempotently
    async def _place(self, intent: OrderIntent, cid: str, qty: float, kind: str, price: float | None = None,
                     tif: str | None = None) -> OrderTrack:
        """Send one order; its fate is known when this returns (placed, or `OrderRefused`), or `OrderUnresolved`."""
        self.books.expect(cid, intent.symbol, intent.side)
        deadline = time.monotonic() + self.resolve_s
        attempt = 0
        while True:
            t0 = time.perf_counter()
            try:
                order = await self.rest.new_order(intent.symbol, intent.side, kind, qty, price, time_in_force=tif,
                                                  reduce_only=intent.reduce_only, new_client_order_id=cid)
                self.counters.orders += 1
                latency = (time.perf_counter() - t0) * 1000
                self.counters.latency(latency)
                if self.on_accepted is not None:
                    self.on_accepted(latency)
                return self.books.apply_order(order)
            except DuplicateClientOrderIdError:
                found = await self._taken_id(intent, cid, first=attempt == 0)
                if found is not None:
                    return found
            except RateLimitError as exc:
                self.counters.rate_limited += 1
                log.warning("%s: rate limited by the venue (%s); the limiter waits out Retry-After", cid, exc)
            except BinanceAPIError as exc:
                if not _outcome_unknown(exc):
                    self.books.forget(cid)
                    self.counters.venue_rejects += 1
                    if self.on_rejected is not None:
                        self.on_rejected(f"{exc.code} {exc.msg}")
                    self.alerts.raise_(AlertKind.VENUE_REJECT, intent.symbol,
                                       f"{cid}: {kind} {intent.side} {qty:g} refused: {exc.code} {exc.msg}")
                    raise OrderRefused("venue", str(exc.code), exc.msg) from None
                found = await self._after_unknown(intent, cid, exc)
                if found is not None:
                    return found
            except MarketUnavailableError as exc:
                found = await self._after_unknown(intent, cid, exc)
                if found is not None:
                    return found
            if time.monotonic() > deadline:
                raise OrderUnresolved(f"{cid}: the venue neither confirmed nor refused the order within "
                                      f"{self.resolve_s:g} s")
            attempt += 1
            self.counters.resent += 1
            await asyncio.sleep(random.uniform(0.0, min(5.0, 0.2 * 2 ** attempt)))

    async def _taken_id(self, intent: OrderIntent, cid: str, *, first: bool) -> OrderTrack | None:
        """The venue says the id is taken (-4116): follow our own order, or refuse the leg (`OrderRefused`).

        On a resend, an earlier attempt of this call landed (a lost ack): it is followed. On a
        leg's first send, the id was taken before this order was ever sent — by an order the
        journal does not know: its tail (the write-ahead record) was lost to an OS crash before
        its fsync (docs/trader.md). An *exit* found on its own symbol is the exit of this very
        position (the engine's trade id and symbol are the same) and is followed; an entry is
        refused, never adopted — the position may since have been closed by hand, and the
        phantom alert already stands for it. None: not found, send again.
        """
        found = await self._find(intent.symbol, cid)
        if found is not None and (not first or intent.leg == "exit"):
            self.counters.lost_acks += 1
            log.warning("%s was already at the venue (%s): following it", cid,
                        "an earlier attempt landed" if not first else "an exit the journal lost to a crash")
            return found
        if not first and found is None:
            return None
        self.books.forget(cid)
        self.counters.venue_rejects += 1
        self.alerts.raise_(AlertKind.VENUE_REJECT, intent.symbol,
                           f"{cid}: the venue already holds this client order id on an order the journal does not "
                           "know (a lost journal tail?): leg refused, not adopted — see the phantom/orphan alerts")
        raise OrderRefused("venue", "-4116", f"{cid} was taken at the venue before this order was sent")

    async def _after_unknown(self, intent: OrderIntent, cid: str, exc: BaseException) -> OrderTrack | None:
        """The order's fate is unknown: find it by its id before anything is resent."""
        self.counters.lost_acks += 1
        log.warning("%s: outcome unknown (%s): looking it up by its client order id before resending", cid, exc)
        deadline = time.monotonic() + self.resolve_s
        attempt = 0
        while True:
            try:
                order = await self.rest.query_order(intent.symbol, orig_client_order_id=cid)
                log.info("%s found at the venue (%s): following it, not resending", cid, order.status)
                return self.books.apply_order(order)
            except UnknownOrderError:
                return None        # the venue never took it: safe to send with the same id
            except (MarketUnavailableError, BinanceAPIError) as again:
                if time.monotonic() > deadline:
                    raise OrderUnresolved(f"{cid}: its fate is unknown and the venue does not answer ({again})") \
                        from None
            attempt += 1
            await asyncio.sleep(random.uniform(0.0, min(5.0, 0.2 * 2 ** attempt)))

    async def _find(self, symbol: str, cid: str) -> OrderTrack | None:
        try:
            order = await self.rest.query_order(symbol, orig_client_order_id=cid)
        except UnknownOrderError:
            return None
        return self.books.apply_order(order)

    # ------------------------------------------------------------------ fills, from the venue's reports
    async def _complete(self, track: OrderTrack, timeout_s: float | None = None) -> OrderTrack:
        """Wait until the books hold the order complete: the stream first, REST when it is late."""
        deadline = time.monotonic() + (self.resolve_s if timeout_s is None else timeout_s)
        stream_wait = self.fill_timeout_s if self.stream_up() else 0.05   # a stream that is down tells nothing
        while not track.complete:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if timeout_s is not None:
                    return track
                raise OrderUnresolved(f"{track.client_order_id}: the venue did not report the order complete within "
                                      f"{self.resolve_s:g} s")
            track.changed.clear()
            if track.complete:
                break
            try:
                await asyncio.wait_for(track.changed.wait(), min(stream_wait, remaining))
                continue
            except TimeoutError:
                pass
            if timeout_s is not None and time.monotonic() >= deadline:
                return track
            try:
                await self.resync(track)
                if track.complete:
                    self.counters.stream_late += 1
            except (MarketUnavailableError, BinanceAPIError) as exc:
                log.warning("%s: could not ask the venue (%s); waiting", track.client_order_id, exc)
            stream_wait = min(stream_wait * 2, 30.0)
        return track

    async def resync(self, track: OrderTrack) -> None:
        """The order and its fills from REST, merged into the books (by trade id: nothing counts twice)."""
        order = await self.rest.query_order(track.symbol, orig_client_order_id=track.client_order_id)
        self.books.apply_order(order)
        if track.executed_qty > track.filled and track.order_id is not None:
            self.books.apply_trades(track, await self.rest.user_trades(track.symbol, order_id=track.order_id))

    async def resync_all(self) -> int:
        """After a reconnect: every order of ours not yet complete in the books, from REST."""
        n = 0
        for track in self.books.unfinished():
            try:
                await self.resync(track)
                n += 1
            except UnknownOrderError:
                continue
        return n

    def _fill(self, intent: OrderIntent, tracks: list[OrderTrack]) -> Fill:
        qty = sum(t.filled for t in tracks)
        if qty <= 0:
            self.counters.unfilled += 1
            self.alerts.raise_(AlertKind.VENUE_REJECT, intent.symbol, f"{intent.client_order_id}: not filled")
            raise OrderRefused("unfilled", "0", f"{intent.client_order_id} ended without a fill")
        self.counters.legs += 1
        price = sum(t.avg_price * t.filled for t in tracks) / qty
        ids = "+".join(str(t.order_id) for t in tracks if t.order_id is not None)
        last = max((t.last_fill_ms or 0 for t in tracks), default=0) or None
        return Fill(client_order_id=intent.client_order_id, price=price, quantity=qty,
                    fee=sum(t.commission for t in tracks), venue=self.name, venue_order_id=ids or None, venue_ts=last)

    # ------------------------------------------------------------------ post-only with a timeout, then market
    async def _post_only(self, intent: OrderIntent, qty: float, f: SymbolFilter) -> list[OrderTrack]:
        book = await self.rest.depth(intent.symbol, 5)
        best = (book.bids[0][0] if book.bids else 0.0) if intent.side == "BUY" else \
            (book.asks[0][0] if book.asks else 0.0)
        if best <= 0:
            return [await self._complete(await self._place(intent, intent.client_order_id + MARKET_SUFFIX, qty,
                                                           "MARKET"))]
        try:
            parent = await self._place(intent, intent.client_order_id, qty, "LIMIT", f.price(best), "GTX")
        except OrderRefused as exc:
            if exc.reason != str(POST_ONLY_REJECTED):
                raise
            self.counters.post_only_fallbacks += 1
            return [await self._complete(await self._place(intent, intent.client_order_id + MARKET_SUFFIX, qty,
                                                           "MARKET"))]
        return await self._finish_post_only(intent, parent, qty, f)

    async def _finish_post_only(self, intent: OrderIntent, parent: OrderTrack, qty: float,
                                f: SymbolFilter) -> list[OrderTrack]:
        await self._complete(parent, timeout_s=self.post_only_timeout_s)
        if not parent.final:
            parent.cancel_requested = True
            try:
                self.books.apply_order(await self.rest.cancel_order(intent.symbol,
                                                                    orig_client_order_id=parent.client_order_id))
            except UnknownOrderError:
                pass            # it filled meanwhile
        await self._complete(parent)
        if parent.filled >= qty - 1e-12:
            self.counters.post_only_filled += 1
            return [parent]
        rest_qty = f.quantity(qty - parent.filled)
        if rest_qty <= 0 or self.kill_level().blocks_exits:
            return [parent]
        self.counters.post_only_fallbacks += 1
        child = await self._place(intent, intent.client_order_id + MARKET_SUFFIX, rest_qty, "MARKET")
        return [parent, await self._complete(child)]

    # ------------------------------------------------------------------ halt
    async def cancel_all(self) -> int:
        """The kill switch's halt: every open order on the venue is cancelled. Returns how many."""
        open_orders = await self.rest.open_orders()
        for order in open_orders:
            track = self.books.apply_order(order)
            track.cancel_requested = True
        for symbol in sorted({o.symbol for o in open_orders}):
            await self.rest.cancel_all_open_orders(symbol)
        if open_orders:
            self.counters.halt_cancels += len(open_orders)
            self.alerts.raise_(AlertKind.HALT_CANCEL, "", f"halt: cancelled {len(open_orders)} open order(s) on "
                               f"{', '.join(sorted({o.symbol for o in open_orders}))}")
        return len(open_orders)


__all__ = ["LiveExecutor", "MARKET_SUFFIX"]
