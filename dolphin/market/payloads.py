"""Typed structs for every Binance USD-M payload DOLPHIN reads, and their decoders.

Payloads are parsed into these structs at the edge, once, with msgspec: a depth5 frame
becomes a `DepthUpdate` with float tuples in one C-level pass (no intermediate dicts).
Binance sends prices and quantities as JSON strings; the decoders run msgspec in lax
mode (``strict=False``), which turns numeric strings into floats and ints while still
rejecting anything that is not a number. A payload that does not fit its struct raises
`msgspec.ValidationError`/`DecodeError` here and is counted and dropped by the caller —
never an exception that escapes a loop.

Stream payloads are a tagged union on Binance's event-type field ``e``, so a combined
stream frame ``{"stream": ..., "data": {...}}`` decodes in a single pass whatever the
stream kind. Attribute names are Pythonic; ``name=`` keeps Binance's wire names.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct, field

Level = tuple[float, float]
"""One book level: (price, quantity)."""

# --------------------------------------------------------------------------- streams


class AggTrade(Struct, tag_field="e", tag="aggTrade", frozen=True):
    """``<symbol>@aggTrade``: trades aggregated by price and taker side."""

    event_time: int = field(name="E")
    symbol: str = field(name="s")
    agg_id: int = field(name="a")
    price: float = field(name="p")
    qty: float = field(name="q")
    first_trade_id: int = field(name="f")
    last_trade_id: int = field(name="l")
    trade_time: int = field(name="T")
    buyer_is_maker: bool = field(name="m")


class DepthUpdate(Struct, tag_field="e", tag="depthUpdate", frozen=True, gc=False):
    """``<symbol>@depth<N>[@100ms|@500ms]``: the top N levels per side (partial book).

    Not tracked by the garbage collector (``gc=False``; it holds numbers only, so it can be
    in no reference cycle): a consumer keeping the latest book per symbol (OBF: 540 books
    replaced 10 times a second) would otherwise promote thousands of short-lived books to
    the oldest generation every second and trigger its full collections — pauses of tens
    of milliseconds in the hot loop.
    """

    event_time: int = field(name="E")
    transaction_time: int = field(name="T")
    symbol: str = field(name="s")
    first_update_id: int = field(name="U")
    final_update_id: int = field(name="u")
    prev_final_update_id: int = field(name="pu")
    bids: tuple[Level, ...] = field(name="b")
    asks: tuple[Level, ...] = field(name="a")

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None

    def is_crossed(self) -> bool:
        """True when the book cannot be real: a side is empty or best ask <= best bid."""
        return not self.bids or not self.asks or self.asks[0][0] <= self.bids[0][0]


class KlineBar(Struct, frozen=True):
    """The candle inside a kline stream event."""

    start_time: int = field(name="t")
    close_time: int = field(name="T")
    symbol: str = field(name="s")
    interval: str = field(name="i")
    first_trade_id: int = field(name="f")
    last_trade_id: int = field(name="L")
    open: float = field(name="o")
    close: float = field(name="c")
    high: float = field(name="h")
    low: float = field(name="l")
    volume: float = field(name="v")
    trades: int = field(name="n")
    closed: bool = field(name="x")
    quote_volume: float = field(name="q")
    taker_buy_volume: float = field(name="V")
    taker_buy_quote_volume: float = field(name="Q")


class KlineEvent(Struct, tag_field="e", tag="kline", frozen=True):
    """``<symbol>@kline_<interval>``: the forming candle, and a final one with ``closed``."""

    event_time: int = field(name="E")
    symbol: str = field(name="s")
    kline: KlineBar = field(name="k")


class MarkPrice(Struct, tag_field="e", tag="markPriceUpdate", frozen=True):
    """``<symbol>@markPrice[@1s]``: mark and index price, funding rate, next funding time."""

    event_time: int = field(name="E")
    symbol: str = field(name="s")
    mark_price: float = field(name="p")
    index_price: float = field(name="i")
    estimated_settle_price: float = field(name="P")
    funding_rate: float = field(name="r")
    next_funding_time: int = field(name="T")


StreamPayload = AggTrade | DepthUpdate | KlineEvent | MarkPrice


class Envelope(Struct, frozen=True):
    """A combined-stream frame: ``{"stream": "<name>", "data": <payload>}``."""

    stream: str
    data: StreamPayload


class ControlError(Struct, frozen=True):
    code: int | None = None
    msg: str | None = None


class ControlReply(Struct, frozen=True):
    """A reply to SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS, or a request error.

    The live streams nest an error under ``error`` (``{"error": {"code": 2, "msg": …}, "id": 1}``);
    Binance's reference shows it flat (``{"code": 2, "msg": …, "id": 1}``). Both are read.
    """

    id: int | str | None = None
    result: Any = None
    code: int | None = None
    msg: str | None = None
    error: ControlError | None = None

    @property
    def error_code(self) -> int | None:
        return self.error.code if self.error is not None else self.code

    @property
    def error_msg(self) -> str | None:
        return self.error.msg if self.error is not None else self.msg


# --------------------------------------------------------------------------- REST: market data


class ServerTime(Struct, rename="camel", frozen=True):
    server_time: int


class Kline(Struct, array_like=True, frozen=True):
    """One row of ``GET /fapi/v1/klines`` (Binance sends it as a JSON array)."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_time: int
    quote_volume: float
    trades: int
    taker_buy_volume: float
    taker_buy_quote_volume: float
    ignore: str = "0"


class RateLimit(Struct, rename="camel", frozen=True):
    rate_limit_type: str
    interval: str
    interval_num: int
    limit: int


class SymbolInfo(Struct, rename="camel", frozen=True):
    """One symbol of ``exchangeInfo``; the trading filters are parsed by the properties."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    price_precision: int
    quantity_precision: int
    filters: list[dict[str, Any]]
    pair: str = ""
    contract_type: str = ""
    margin_asset: str = "USDT"

    def _filter(self, kind: str) -> dict[str, Any]:
        for f in self.filters:
            if f.get("filterType") == kind:
                return f
        return {}

    @property
    def tick_size(self) -> float:
        return float(self._filter("PRICE_FILTER").get("tickSize", 0.0))

    @property
    def step_size(self) -> float:
        return float(self._filter("LOT_SIZE").get("stepSize", 0.0))

    @property
    def min_qty(self) -> float:
        return float(self._filter("LOT_SIZE").get("minQty", 0.0))

    @property
    def min_notional(self) -> float:
        return float(self._filter("MIN_NOTIONAL").get("notional", 0.0))


class ExchangeInfo(Struct, rename="camel", frozen=True):
    timezone: str
    server_time: int
    rate_limits: list[RateLimit]
    symbols: list[SymbolInfo]

    def symbol(self, name: str) -> SymbolInfo | None:
        for s in self.symbols:
            if s.symbol == name:
                return s
        return None


class OrderBook(Struct, frozen=True):
    """``GET /fapi/v1/depth``."""

    last_update_id: int = field(name="lastUpdateId")
    event_time: int = field(name="E")
    transaction_time: int = field(name="T")
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()


class PremiumIndex(Struct, rename="camel", frozen=True):
    """``GET /fapi/v1/premiumIndex``: mark price and funding."""

    symbol: str
    mark_price: float
    index_price: float
    estimated_settle_price: float
    last_funding_rate: float
    interest_rate: float
    next_funding_time: int
    time: int


class FundingRate(Struct, rename="camel", frozen=True):
    """One settlement of ``GET /fapi/v1/fundingRate``."""

    symbol: str
    funding_rate: float
    funding_time: int
    mark_price: str = ""


class TakerRatio(Struct, rename="camel", frozen=True):
    """One period of ``GET /futures/data/takerlongshortRatio`` (taker buy/sell volume)."""

    buy_sell_ratio: float
    buy_vol: float
    sell_vol: float
    timestamp: int


# --------------------------------------------------------------------------- REST: trading


class UserTrade(Struct, rename="camel", frozen=True):
    """One fill of an account's order (``/fapi/v1/userTrades``): what the venue charged and booked."""

    id: int
    order_id: int
    symbol: str
    side: str
    price: float
    qty: float
    quote_qty: float
    commission: float
    commission_asset: str
    realized_pnl: float
    maker: bool
    time: int
    buyer: bool = False
    position_side: str = "BOTH"


class Income(Struct, rename="camel", frozen=True):
    """One line of the account's income history (``/fapi/v1/income``): funding, commission, realised PnL…"""

    symbol: str
    income_type: str
    income: float
    asset: str
    time: int
    tran_id: int
    info: str = ""
    trade_id: str = ""


class Order(Struct, rename="camel", frozen=True):
    """An order as ``/fapi/v1/order`` (new, query, cancel) and ``openOrders`` return it."""

    order_id: int
    symbol: str
    status: str
    client_order_id: str
    price: float
    orig_qty: float
    executed_qty: float
    cum_quote: float
    time_in_force: str
    type: str
    side: str
    avg_price: float = 0.0
    reduce_only: bool = False
    close_position: bool = False
    position_side: str = "BOTH"
    stop_price: float = 0.0
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False
    orig_type: str = ""
    price_match: str = "NONE"
    self_trade_prevention_mode: str = "NONE"
    good_till_date: int = 0
    update_time: int = 0
    time: int = 0
    cum_qty: float = 0.0

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


class Position(Struct, rename="camel", frozen=True):
    """One row of ``GET /fapi/v2/positionRisk``."""

    symbol: str
    position_amt: float
    entry_price: float
    mark_price: float
    un_realized_profit: float
    liquidation_price: float
    leverage: int
    margin_type: str
    position_side: str
    update_time: int
    break_even_price: float = 0.0
    max_notional_value: float = 0.0
    isolated_margin: float = 0.0
    is_auto_add_margin: str = "false"
    notional: float = 0.0
    isolated_wallet: float = 0.0


class AccountAsset(Struct, rename="camel", frozen=True):
    asset: str
    wallet_balance: float
    unrealized_profit: float
    margin_balance: float
    maint_margin: float
    initial_margin: float
    position_initial_margin: float
    open_order_initial_margin: float
    cross_wallet_balance: float
    cross_un_pnl: float
    available_balance: float
    max_withdraw_amount: float
    update_time: int = 0
    margin_available: bool = True


class AccountPosition(Struct, rename="camel", frozen=True):
    symbol: str
    initial_margin: float
    maint_margin: float
    unrealized_profit: float
    position_initial_margin: float
    open_order_initial_margin: float
    leverage: int
    isolated: bool
    entry_price: float
    max_notional: float
    position_side: str
    position_amt: float
    update_time: int
    break_even_price: float = 0.0
    bid_notional: float = 0.0
    ask_notional: float = 0.0


class Account(Struct, rename="camel", frozen=True):
    """``GET /fapi/v2/account`` (single-asset mode)."""

    fee_tier: int
    can_trade: bool
    can_deposit: bool
    can_withdraw: bool
    update_time: int
    total_initial_margin: float
    total_maint_margin: float
    total_wallet_balance: float
    total_unrealized_profit: float
    total_margin_balance: float
    total_position_initial_margin: float
    total_open_order_initial_margin: float
    total_cross_wallet_balance: float
    total_cross_un_pnl: float
    available_balance: float
    max_withdraw_amount: float
    assets: list[AccountAsset]
    positions: list[AccountPosition]
    fee_burn: bool = False
    multi_assets_margin: bool = False
    trade_group_id: int = -1

    def position(self, symbol: str) -> AccountPosition | None:
        for p in self.positions:
            if p.symbol == symbol:
                return p
        return None


class LeverageInfo(Struct, rename="camel", frozen=True):
    """``POST /fapi/v1/leverage``."""

    leverage: int
    max_notional_value: float
    symbol: str


class ListenKey(Struct, rename="camel", frozen=True):
    """``POST /fapi/v1/listenKey``."""

    listen_key: str


class ApiErrorBody(Struct, frozen=True):
    """Binance's error body ``{"code": -1121, "msg": "Invalid symbol."}``."""

    code: int
    msg: str


# --------------------------------------------------------------------------- decoders

ENVELOPE_DECODER = msgspec.json.Decoder(Envelope, strict=False)
RAW_PAYLOAD_DECODER = msgspec.json.Decoder(StreamPayload, strict=False)
CONTROL_DECODER = msgspec.json.Decoder(ControlReply)

_DECODERS: dict[Any, msgspec.json.Decoder] = {}


def decoder(kind: Any) -> msgspec.json.Decoder:
    """A cached lax decoder for ``kind`` (a struct or a ``list[...]`` of structs)."""
    dec = _DECODERS.get(kind)
    if dec is None:
        dec = _DECODERS[kind] = msgspec.json.Decoder(kind, strict=False)
    return dec


def decode(kind: Any, data: bytes | str) -> Any:
    """Decode ``data`` into ``kind``; raises `msgspec.DecodeError`/`ValidationError` on bad input."""
    return decoder(kind).decode(data)


def stream_kind(stream: str) -> str:
    """The kind of a stream name: ``aggTrade``, ``depth``, ``kline``, ``markPrice`` (or ``""``)."""
    _, _, rest = stream.partition("@")
    if rest.startswith("depth"):
        return "depth"
    if rest.startswith("kline_"):
        return "kline"
    if rest.startswith("markPrice"):
        return "markPrice"
    if rest == "aggTrade":
        return "aggTrade"
    return ""
