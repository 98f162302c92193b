"""Orders the trader sends and fills it records, with deterministic client order ids.

A client order id is a pure function of the book (a random id fixed when the journal is
created), the engine's trade id and the leg. The same engine state therefore produces
the same id after a restart, and the venue's duplicate-id rejection plus a lookup by id
make every submission idempotent: a restart can never double-submit.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal

import msgspec

from dolphin.engine.trades import ClosedTrade, OpenPosition
from dolphin.enums import OrderSide, PositionSide

Leg = Literal["entry", "exit"]
_CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")  # Binance newClientOrderId rule


def new_book_id() -> str:
    return secrets.token_hex(4)


def client_order_id(book_id: str, trade_id: int, leg: Leg) -> str:
    cid = f"dol{book_id}-{trade_id}-{'e' if leg == 'entry' else 'x'}"
    if not _CLIENT_ID_RE.match(cid):
        raise ValueError(f"client order id {cid!r} breaks the venue's format")
    return cid


class OrderIntent(msgspec.Struct, frozen=True):
    """What the engine decided, as an order: the leg of a trade at the engine's reference price."""

    client_order_id: str
    trade_id: int
    leg: Leg
    symbol: str
    side: OrderSide
    quantity: float
    reference_price: float     # the engine's price for this leg (scan close, or exit incl. slippage)
    notional: float
    engine_fee: float          # the engine's fee model for this leg
    reduce_only: bool
    ts_ms: int                 # market time of the bar that decided it


class Fill(msgspec.Struct, frozen=True):
    client_order_id: str
    price: float
    quantity: float
    fee: float
    venue: str
    venue_order_id: str | None = None
    venue_ts: int | None = None      # the venue's time of the last fill of the leg (ms)


class CashFlow(msgspec.Struct, frozen=True):
    """Money the venue booked outside a trade (funding): applied to the engine's capital at the next step."""

    amount: float
    reason: str
    ref: str            # the venue's reference: one flow is booked once
    venue_ts: int


def entry_intent(book_id: str, pos: OpenPosition) -> OrderIntent:
    side = PositionSide(pos.side).opening_order
    return OrderIntent(client_order_id=client_order_id(book_id, pos.trade_id, "entry"), trade_id=pos.trade_id,
                       leg="entry", symbol=pos.asset, side=side, quantity=pos.notional / pos.entry_price,
                       reference_price=pos.entry_price, notional=pos.notional, engine_fee=pos.entry_fee,
                       reduce_only=False, ts_ms=pos.entry_ts)


def exit_intent(book_id: str, trade: ClosedTrade) -> OrderIntent:
    side = PositionSide(trade.side).closing_order
    return OrderIntent(client_order_id=client_order_id(book_id, trade.trade_id, "exit"), trade_id=trade.trade_id,
                       leg="exit", symbol=trade.asset, side=side, quantity=trade.notional / trade.entry_price,
                       reference_price=trade.exit_price, notional=trade.notional, engine_fee=trade.exit_fee,
                       reduce_only=True, ts_ms=trade.exit_ts)


def slippage_bps(intent: OrderIntent, price: float) -> float | None:
    """A fill's price against the engine's model price for the leg, in bps; + = worse for the book."""
    if not intent.reference_price > 0:
        return None
    sign = 1.0 if intent.side == "BUY" else -1.0
    return sign * (price - intent.reference_price) / intent.reference_price * 1e4


class OrderRefused(Exception):
    """An order that did not go out or was not filled: a pre-trade check, the venue's refusal, no fill.

    ``source`` says who refused (``risk`` | ``venue`` | ``unfilled``), ``reason`` names the
    check or the venue's error code, ``detail`` is the operator's line. The trader journals
    it (`RejectRecord`); an entry is then voided in the engine.
    """

    def __init__(self, source: str, reason: str, detail: str) -> None:
        self.source = source
        self.reason = reason
        self.detail = detail
        super().__init__(f"{source} refused the order ({reason}): {detail}")


class OrderUnresolved(Exception):
    """An order whose fate the venue would not tell in time: neither found nor refused.

    Nothing may be resent blindly. The trader stops stepping and rebuilds its books from
    the journal once the venue answers again; the replay looks the order up by its client
    order id before anything is submitted (`TraderCore._execute`).
    """
