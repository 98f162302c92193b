"""The user-data stream's events, typed: what a live trader's books are made of.

Binance pushes account events on ``/ws/<listenKey>`` (docs/market.md, "The user-data
stream"). The ones the books need are decoded here, once, into frozen structs with
floats for the venue's numeric strings:

* ``ORDER_TRADE_UPDATE`` — every state change of an order; a ``TRADE`` execution carries one
  fill (``l``/``L``, commission ``n`` in ``N``, the venue's trade id ``t``);
* ``ACCOUNT_UPDATE`` — balances and the positions a change touched, with its reason
  (``ORDER``, ``FUNDING_FEE``, …);
* ``listenKeyExpired`` — the key lapsed: the stream says nothing more until a new one.

Every other event kind (``TRADE_LITE``, ``ALGO_UPDATE``, ``ACCOUNT_CONFIG_UPDATE``,
``MARGIN_CALL``, …) is recognised by its ``e`` and returned as `OtherEvent`, so a new
kind the venue adds is counted, never an error. A frame that is not JSON, or whose
known kind lacks a field, raises `msgspec.DecodeError`/`ValidationError`: the stream's
reader counts and drops it (architecture decision 6).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct, field

FINAL_ORDER_STATES = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED", "EXPIRED_IN_MATCH"})


class OrderUpdate(Struct, frozen=True):
    """``ORDER_TRADE_UPDATE.o``: one state change of one order (one fill when ``exec_type`` is TRADE)."""

    symbol: str = field(name="s")
    client_order_id: str = field(name="c")
    side: str = field(name="S")
    type: str = field(name="o")
    orig_qty: float = field(name="q")
    exec_type: str = field(name="x")
    status: str = field(name="X")
    order_id: int = field(name="i")
    last_qty: float = field(name="l")
    cum_qty: float = field(name="z")
    last_price: float = field(name="L")
    avg_price: float = field(name="ap", default=0.0)
    price: float = field(name="p", default=0.0)
    time_in_force: str = field(name="f", default="GTC")
    commission: float = field(name="n", default=0.0)
    commission_asset: str = field(name="N", default="")
    trade_time: int = field(name="T", default=0)
    trade_id: int = field(name="t", default=0)
    maker: bool = field(name="m", default=False)
    reduce_only: bool = field(name="R", default=False)
    realized: float = field(name="rp", default=0.0)
    orig_type: str = field(name="ot", default="")

    @property
    def is_fill(self) -> bool:
        return self.exec_type == "TRADE" and self.last_qty > 0

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_ORDER_STATES


class OrderTradeUpdate(Struct, frozen=True):
    event_time: int = field(name="E")
    order: OrderUpdate = field(name="o")
    transaction_time: int = field(name="T", default=0)


class BalanceRow(Struct, frozen=True):
    asset: str = field(name="a")
    wallet: float = field(name="wb")
    cross_wallet: float = field(name="cw", default=0.0)
    change: float = field(name="bc", default=0.0)


class PositionRow(Struct, frozen=True):
    symbol: str = field(name="s")
    amount: float = field(name="pa")
    entry_price: float = field(name="ep", default=0.0)
    unrealized: float = field(name="up", default=0.0)
    position_side: str = field(name="ps", default="BOTH")


class AccountData(Struct, frozen=True):
    reason: str = field(name="m")
    balances: list[BalanceRow] = field(name="B", default_factory=list)
    positions: list[PositionRow] = field(name="P", default_factory=list)


class AccountUpdate(Struct, frozen=True):
    event_time: int = field(name="E")
    data: AccountData = field(name="a")
    transaction_time: int = field(name="T", default=0)


class ListenKeyExpired(Struct, frozen=True):
    event_time: int = field(name="E", default=0)


class OtherEvent(Struct, frozen=True):
    """An event kind the books do not use (counted by the reader)."""

    kind: str


UserEvent = OrderTradeUpdate | AccountUpdate | ListenKeyExpired | OtherEvent


class _Head(Struct):
    e: str = ""


_HEAD = msgspec.json.Decoder(_Head)
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "ORDER_TRADE_UPDATE": msgspec.json.Decoder(OrderTradeUpdate, strict=False),
    "ACCOUNT_UPDATE": msgspec.json.Decoder(AccountUpdate, strict=False),
    "listenKeyExpired": msgspec.json.Decoder(ListenKeyExpired, strict=False),
}


def decode_user_event(raw: bytes | str) -> UserEvent:
    """One frame of the user-data stream; raises msgspec's errors on a malformed one."""
    kind = _HEAD.decode(raw).e
    if not kind:
        raise msgspec.ValidationError("not a user-data event: no 'e' field")
    decoder = _DECODERS.get(kind)
    if decoder is None:
        return OtherEvent(kind=kind)
    return decoder.decode(raw)


__all__ = ["FINAL_ORDER_STATES", "AccountData", "AccountUpdate", "BalanceRow", "ListenKeyExpired", "OrderTradeUpdate",
           "OrderUpdate", "OtherEvent", "PositionRow", "UserEvent", "decode_user_event"]
