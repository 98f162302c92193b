"""The venue's truth as it arrives: orders and their fills, positions and the wallet, from the user-data stream.

Every ``ORDER_TRADE_UPDATE`` updates the order it names (keyed by client order id) and
each ``TRADE`` execution adds one fill, keyed by the venue's trade id; every
``ACCOUNT_UPDATE`` updates the wallet and the positions it lists. REST answers (an
order's reply, ``query_order``, ``userTrades``) merge into the same records by the same
keys — so a fill seen twice (stream and REST after a reconnect) counts once, and a fill
the stream missed while it was down is added when REST is asked. An order is
**complete** when the venue calls it final and its fills add up to what the venue says
it executed: only then does the executor hand the fill to the trader.

Orders this book did not place (their client order id lacks the book's prefix) and
orders of ours that the venue cancelled without being asked are alerted as orphans.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from dolphin.execution.live.alerts import AlertBook
from dolphin.execution.live.kinds import AlertKind
from dolphin.market.payloads import Order, Position, UserTrade
from dolphin.market.userdata import FINAL_ORDER_STATES, AccountUpdate, OrderTradeUpdate, OrderUpdate

log = logging.getLogger("dolphin.live")

QTY_EPS = 1e-9
QUOTE = "USDT"


@dataclass(frozen=True, slots=True)
class VenueTrade:
    trade_id: int
    price: float
    qty: float
    commission: float
    time: int


class OrderTrack:
    """One order at the venue, as far as the books know it."""

    def __init__(self, client_order_id: str, symbol: str, side: str, ours: bool) -> None:
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.ours = ours
        self.order_id: int | None = None
        self.status = "PENDING"          # before the venue acknowledged it
        self.orig_qty = 0.0
        self.executed_qty = 0.0          # the venue's cumulative filled quantity
        self.trades: dict[int, VenueTrade] = {}
        self.cancel_requested = False
        self.orphan_alerted = False
        self.changed = asyncio.Event()

    @property
    def filled(self) -> float:
        return sum(t.qty for t in self.trades.values())

    @property
    def avg_price(self) -> float:
        q = self.filled
        return sum(t.price * t.qty for t in self.trades.values()) / q if q > 0 else 0.0

    @property
    def commission(self) -> float:
        return sum(t.commission for t in self.trades.values())

    @property
    def last_fill_ms(self) -> int | None:
        return max((t.time for t in self.trades.values()), default=None)

    @property
    def final(self) -> bool:
        return self.status in FINAL_ORDER_STATES

    @property
    def complete(self) -> bool:
        """Final at the venue, and every fill the venue executed is in the books."""
        return self.final and self.filled >= self.executed_qty - QTY_EPS * max(1.0, self.executed_qty)

    @property
    def open(self) -> bool:
        return self.status in ("PENDING", "NEW", "PARTIALLY_FILLED")

    def _touch(self) -> None:
        self.changed.set()


class VenueBooks:
    """Orders, positions and wallet of the account, fed by the stream and by REST."""

    def __init__(self, book_prefix: str, alerts: AlertBook) -> None:
        self.prefix = book_prefix
        self.alerts = alerts
        self.orders: dict[str, OrderTrack] = {}
        self.positions: dict[str, float] = {}        # symbol → signed amount (one-way mode)
        self.entry_prices: dict[str, float] = {}
        self.wallet: float | None = None
        self.session_start_wallet: float | None = None
        self.funding_events = 0
        self.on_funding: Callable[[int], None] | None = None     # called with the event's venue time (ms)
        self.on_wallet: Callable[[float], None] | None = None
        self.fills = 0
        self.partial_fills = 0
        self.foreign_orders = 0
        self.non_quote_commissions = 0

    def is_ours(self, client_order_id: str) -> bool:
        return client_order_id.startswith(self.prefix)

    # ------------------------------------------------------------------ orders we place
    def expect(self, client_order_id: str, symbol: str, side: str) -> OrderTrack:
        """Register an order before it is sent, so its events find it even if they beat the reply."""
        track = self.orders.get(client_order_id)
        if track is None:
            track = self.orders[client_order_id] = OrderTrack(client_order_id, symbol, side, ours=True)
        return track

    def forget(self, client_order_id: str) -> None:
        """An order the venue refused: it never existed there."""
        track = self.orders.get(client_order_id)
        if track is not None and track.status == "PENDING" and not track.trades:
            del self.orders[client_order_id]

    def track(self, client_order_id: str) -> OrderTrack | None:
        return self.orders.get(client_order_id)

    # ------------------------------------------------------------------ the stream
    def on_event(self, event: OrderTradeUpdate | AccountUpdate) -> None:
        if isinstance(event, OrderTradeUpdate):
            self._on_order(event.order)
        else:
            self._on_account(event)

    def _track_for(self, client_order_id: str, symbol: str, side: str) -> OrderTrack:
        track = self.orders.get(client_order_id)
        if track is None:
            ours = self.is_ours(client_order_id)
            track = self.orders[client_order_id] = OrderTrack(client_order_id, symbol, side, ours=ours)
        return track

    def _on_order(self, o: OrderUpdate) -> None:
        track = self._track_for(o.client_order_id, o.symbol, o.side)
        track.order_id = o.order_id
        track.orig_qty = o.orig_qty
        track.executed_qty = max(track.executed_qty, o.cum_qty)
        if o.is_fill and o.trade_id not in track.trades:
            fee = o.commission
            if o.commission_asset and o.commission_asset != QUOTE:
                self.non_quote_commissions += 1
                log.warning("order %s paid commission in %s, not %s: booked as 0", o.client_order_id,
                            o.commission_asset, QUOTE)
                fee = 0.0
            track.trades[o.trade_id] = VenueTrade(o.trade_id, o.last_price, o.last_qty, fee, o.trade_time)
            self.fills += 1
            if o.status == "PARTIALLY_FILLED":
                self.partial_fills += 1
        if _rank(o.status) >= _rank(track.status):
            track.status = o.status
        self._judge(track)
        track._touch()

    def _on_account(self, event: AccountUpdate) -> None:
        for b in event.data.balances:
            if b.asset == QUOTE:
                self._set_wallet(b.wallet)
        for p in event.data.positions:
            if p.position_side in ("BOTH", ""):
                self.positions[p.symbol] = p.amount
                self.entry_prices[p.symbol] = p.entry_price
        if event.data.reason == "FUNDING_FEE":
            self.funding_events += 1
            if self.on_funding is not None:
                self.on_funding(event.transaction_time or event.event_time)

    def _set_wallet(self, wallet: float) -> None:
        self.wallet = wallet
        if self.session_start_wallet is None:
            self.session_start_wallet = wallet
        if self.on_wallet is not None:
            self.on_wallet(wallet)

    def _judge(self, track: OrderTrack) -> None:
        """Orphans: an order this book did not place; an order of ours the venue ended unasked."""
        if track.orphan_alerted:
            return
        if not track.ours:
            track.orphan_alerted = True
            self.foreign_orders += 1
            self.alerts.raise_(AlertKind.ORPHAN_ORDER, track.symbol,
                               f"order {track.client_order_id} ({track.side}) was not placed by this trader")
        elif track.status in ("CANCELED", "EXPIRED") and not track.cancel_requested:
            track.orphan_alerted = True
            self.alerts.raise_(AlertKind.ORPHAN_ORDER, track.symbol,
                               f"order {track.client_order_id} was {track.status.lower()} at the venue without the "
                               f"trader asking ({track.filled:g} of {track.orig_qty:g} filled)")

    # ------------------------------------------------------------------ REST merges
    def apply_order(self, order: Order) -> OrderTrack:
        """An order as REST reports it (reply, query, open orders)."""
        track = self._track_for(order.client_order_id, order.symbol, order.side)
        track.order_id = order.order_id
        track.orig_qty = order.orig_qty
        track.executed_qty = max(track.executed_qty, order.executed_qty)
        if _rank(order.status) >= _rank(track.status):
            track.status = order.status
        self._judge(track)
        track._touch()
        return track

    def apply_trades(self, track: OrderTrack, trades: list[UserTrade]) -> int:
        """The order's fills from ``userTrades`` (by the venue's trade id: nothing counts twice). Returns new ones."""
        added = 0
        for t in trades:
            if t.order_id != track.order_id or t.id in track.trades:
                continue
            fee = t.commission if t.commission_asset in (QUOTE, "") else 0.0
            track.trades[t.id] = VenueTrade(t.id, t.price, t.qty, fee, t.time)
            added += 1
        if added:
            self.fills += added
            track._touch()
        return added

    def apply_positions(self, positions: list[Position]) -> None:
        """A full ``positionRisk`` snapshot: the venue's positions replace the books' copy."""
        seen: dict[str, float] = {}
        for p in positions:
            if p.position_side in ("BOTH", ""):
                seen[p.symbol] = p.position_amt
                self.entry_prices[p.symbol] = p.entry_price
        self.positions = seen

    def apply_wallet(self, wallet: float) -> None:
        self._set_wallet(wallet)

    def open_notional(self, marks: dict[str, float]) -> dict[str, float]:
        """|position| × mark (the entry price when no mark is known) per symbol the venue holds."""
        out: dict[str, float] = {}
        for symbol, amt in self.positions.items():
            if abs(amt) > QTY_EPS:
                out[symbol] = abs(amt) * (marks.get(symbol) or self.entry_prices.get(symbol) or 0.0)
        return out

    def unfinished(self) -> list[OrderTrack]:
        """Orders of ours the books do not yet hold complete (a reconnect may have hidden their end)."""
        return [t for t in self.orders.values() if t.ours and not t.complete and t.status != "PENDING"]

    def prune(self, keep: int = 500) -> None:
        """Forget the oldest complete orders beyond ``keep`` (the journal holds them)."""
        done = [cid for cid, t in self.orders.items() if t.complete]
        for cid in done[:max(0, len(done) - keep)]:
            del self.orders[cid]


_RANKS = {"PENDING": 0, "NEW": 1, "PARTIALLY_FILLED": 2}


def _rank(status: str) -> int:
    """Order states only move forward (a late NEW never undoes a FILLED)."""
    return _RANKS.get(status, 3)


__all__ = ["OrderTrack", "VenueBooks", "VenueTrade"]
