"""The venue: Binance USD-M semantics over a price source — market data, orders, account.

`Exchange` answers every REST endpoint the simulator serves, from request parameters
(strings, as they arrive) to Binance-shaped JSON objects (numbers as strings where
Binance sends strings). Bad requests raise the typed `BinanceAPIError` with Binance's
own code and message; the HTTP layer only serialises them.

Matching (documented in ``docs/market.md``):

* **MARKET** orders walk the current depth5 book level by level (partial fills at
  successive prices). When the five levels are exhausted, the rest fills at the 5th
  level pushed further by the same distance again (best → 5th level), at least a tick:
  the book beyond depth5 is thinner and worse, not absent. All taker.
* **LIMIT** orders take what is marketable within their price the same way (taker), then
  GTC rests the remainder (maker, filled in full at its price once the opposite best
  price reaches it), IOC expires it, FOK is rejected unless fully fillable (-5021), GTX
  is rejected if marketable (-5022).
* Our fills never move later books or prices (no market impact).
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from dolphin.market.errors import BinanceAPIError, error_for_code
from dolphin.market.sim.account import STATE_VERSION, AccountState, AccountStore, Ledger, OrderRecord, round_to
from dolphin.market.sim.books import BookModel
from dolphin.market.sim.clock import SimClock
from dolphin.market.sim.config import MAKER_FEE, TAKER_FEE, SimConfig
from dolphin.market.sim.source import Instrument, MarketSource
from dolphin.market.sim.tape import KlineRow, Tape

log = logging.getLogger("dolphin.market.sim")

STANDARD_INTERVALS: tuple[tuple[str, int], ...] = (
    ("1m", 60_000), ("3m", 180_000), ("5m", 300_000), ("15m", 900_000), ("30m", 1_800_000), ("1h", 3_600_000),
    ("2h", 7_200_000), ("4h", 14_400_000), ("6h", 21_600_000), ("8h", 28_800_000), ("12h", 43_200_000),
    ("1d", 86_400_000), ("3d", 259_200_000))
TAKER_PERIODS = {"5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000,
                 "4h": 14_400_000, "6h": 21_600_000, "12h": 43_200_000, "1d": 86_400_000}
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
MIN_NOTIONAL = 5.0
PERCENT_PRICE_UP = 1.05
PERCENT_PRICE_DOWN = 0.95
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_TIFS = ("GTC", "IOC", "FOK", "GTX")


def err(code: int, msg: str, status: int | None = None) -> BinanceAPIError:
    return error_for_code(code, msg, status)


def mandatory(name: str) -> BinanceAPIError:
    return err(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def invalid(name: str) -> BinanceAPIError:
    return err(-1130, f"Data sent for parameter '{name}' is not valid.")


def fnum(x: float, decimals: int) -> str:
    """A number as Binance prints it: fixed decimals (negative decimals: a whole number)."""
    return f"{x:.{max(0, decimals)}f}"


def max_notional(leverage: int) -> float:
    """Position cap at a leverage (one bracket table for every symbol: 31.25 M / leverage)."""
    return 31_250_000.0 / leverage


class Exchange:
    """Market data, matching and the account, at the simulator clock's time."""

    def __init__(self, config: SimConfig, source: MarketSource, clock: SimClock, store: AccountStore) -> None:
        self.config = config
        self.source = source
        self.clock = clock
        self.books = BookModel(config.seed, source)
        self.tape = Tape(config.seed, source)
        self.store = store
        self.intervals: dict[str, int] = {}
        if source.bar_seconds < 60:
            self.intervals[f"{source.bar_seconds}s"] = source.bar_ms
        for name, ms in STANDARD_INTERVALS:
            if ms >= source.bar_ms and ms % source.bar_ms == 0:
                self.intervals[name] = ms
        state = store.load()
        if state is None:
            state = AccountState(version=STATE_VERSION, wallet_balance=config.balance, next_order_id=1,
                                 last_funding_ms=clock.now_ms())
            store.save(state)
        else:
            log.info("restored account from %s: wallet %.2f, %d positions, %d open orders", store.path,
                     state.wallet_balance, sum(1 for p in state.positions.values() if p.amt),
                     sum(1 for o in state.orders if o.is_open))
        ref = source.price_at(source.first_ms)
        self.ref_price = {i.symbol: float(ref[i.column]) for i in source.instruments}
        self.max_qty = {i.symbol: max(i.step, round_to(50 * i.depth_usd / self.ref_price[i.symbol], i.qty_decimals))
                        for i in source.instruments}
        self.market_max_qty = {i.symbol: max(i.step, round_to(5 * i.depth_usd / self.ref_price[i.symbol],
                                                              i.qty_decimals)) for i in source.instruments}
        self.ledger = Ledger(state, {i.symbol: i.qty_decimals for i in source.instruments}, config.default_leverage)
        self._client_ids = set(state.used_client_ids)
        self._dirty = False
        self.order_count = 0

    # ------------------------------------------------------------------ helpers

    @property
    def state(self) -> AccountState:
        return self.ledger.state

    def now(self) -> int:
        return self.clock.now_ms()

    def instrument(self, params: dict[str, str], required: bool = True) -> Instrument | None:
        name = params.get("symbol")
        if not name:
            if required:
                raise mandatory("symbol")
            return None
        ins = self.source.by_symbol.get(name.upper())
        if ins is None:
            raise err(-1121, "Invalid symbol.")
        return ins

    def marks(self, now: int) -> dict[str, float]:
        prices = self.source.price_at(now)
        return {i.symbol: float(prices[i.column]) for i in self.source.instruments}

    def mark_of(self, ins: Instrument, now: int) -> float:
        return float(self.source.price_at(now)[ins.column])

    def save(self) -> None:
        self.state.used_client_ids = sorted(self._client_ids)
        self.store.save(self.state)

    @staticmethod
    def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
        value = params.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise invalid(name) from None

    @staticmethod
    def _decimal(params: dict[str, str], name: str) -> Decimal | None:
        value = params.get(name)
        if value is None or value == "":
            return None
        try:
            d = Decimal(value)
        except InvalidOperation:
            raise invalid(name) from None
        if not d.is_finite():
            raise invalid(name)
        return d

    # ------------------------------------------------------------------ market data

    def exchange_info(self) -> dict[str, Any]:
        symbols = []
        for ins in self.source.instruments:
            qd = max(0, ins.qty_decimals)
            step = fnum(ins.step, qd)
            symbols.append({
                "symbol": ins.symbol, "pair": ins.symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
                "onboardDate": self.source.first_ms, "status": "TRADING", "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000", "baseAsset": ins.base_asset, "quoteAsset": "USDT",
                "marginAsset": "USDT", "pricePrecision": ins.price_decimals, "quantityPrecision": qd,
                "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
                "underlyingSubType": ["SIMULATED"],
                "settlePlan": 0, "triggerProtect": "0.0500",
                "filters": [
                    {"filterType": "PRICE_FILTER",
                     "maxPrice": fnum(round_to(self.ref_price[ins.symbol] * 100, ins.price_decimals),
                                      ins.price_decimals),
                     "minPrice": fnum(ins.tick, ins.price_decimals), "tickSize": fnum(ins.tick, ins.price_decimals)},
                    {"filterType": "LOT_SIZE", "maxQty": fnum(self.max_qty[ins.symbol], qd), "minQty": step,
                     "stepSize": step},
                    {"filterType": "MARKET_LOT_SIZE", "maxQty": fnum(self.market_max_qty[ins.symbol], qd),
                     "minQty": step, "stepSize": step},
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                    {"filterType": "MIN_NOTIONAL", "notional": "5"},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": f"{PERCENT_PRICE_UP:.4f}",
                     "multiplierDown": f"{PERCENT_PRICE_DOWN:.4f}", "multiplierDecimal": "4"},
                ],
                "OrderType": ["LIMIT", "MARKET"], "timeInForce": list(_TIFS),
                "liquidationFee": "0.012500", "marketTakeBound": "0.05"})
        return {"timezone": "UTC", "serverTime": self.now(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300}],
                "exchangeFilters": [],
                "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": 0}],
                "symbols": symbols}

    def interval_ms(self, params: dict[str, str], name: str = "interval") -> int:
        value = params.get(name)
        if not value:
            raise mandatory(name)
        ms = self.intervals.get(value)
        if ms is None:
            raise err(-1120, "Invalid interval.")
        return ms

    def klines(self, params: dict[str, str]) -> list[list[Any]]:
        ins = self.instrument(params)
        assert ins is not None
        iv = self.interval_ms(params)
        limit = self._int(params, "limit", 500)
        assert limit is not None
        if not 1 <= limit <= 1500:
            raise invalid("limit")
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        if start is not None and end is not None and start > end:
            raise err(-1023, "Start time is greater than end time.")
        rows = self.tape.klines(ins.column, iv, start, end, limit, self.now())
        return [self.kline_array(ins, r) for r in rows]

    @staticmethod
    def kline_array(ins: Instrument, r: KlineRow) -> list[Any]:
        d, vd = ins.price_decimals, ins.vol_decimals
        return [r.open_time, fnum(r.open, d), fnum(r.high, d), fnum(r.low, d), fnum(r.close, d),
                fnum(r.volume, vd), r.close_time, fnum(r.quote_volume, 8), r.trades, fnum(r.taker_buy_volume, vd),
                fnum(r.taker_buy_quote, 8), "0"]

    def depth(self, params: dict[str, str]) -> dict[str, Any]:
        ins = self.instrument(params)
        assert ins is not None
        limit = self._int(params, "limit", 500)
        if limit not in DEPTH_LIMITS:
            raise err(-4021, "Invalid depth limit.")
        now = self.now()
        book = self.books.compute(np.array([ins.column]), now, levels=limit)
        d, qd = ins.price_decimals, max(0, ins.qty_decimals)
        return {"lastUpdateId": book.update_id, "E": now, "T": book.t_ms,
                "bids": [[fnum(p, d), fnum(q, qd)] for p, q in zip(book.bid_px[0].tolist(), book.bid_qty[0].tolist())],
                "asks": [[fnum(p, d), fnum(q, qd)] for p, q in zip(book.ask_px[0].tolist(), book.ask_qty[0].tolist())]}

    def premium_index(self, params: dict[str, str]) -> dict[str, Any] | list[dict[str, Any]]:
        ins = self.instrument(params, required=False)
        now = self.now()
        prices = self.source.price_at(now)
        rates = self.source.funding_rates(now)
        nxt = self.source.next_funding_ms(now)

        def one(i: Instrument) -> dict[str, Any]:
            mark = fnum(float(prices[i.column]), 8)
            return {"symbol": i.symbol, "markPrice": mark, "indexPrice": mark, "estimatedSettlePrice": mark,
                    "lastFundingRate": fnum(float(rates[i.column]), 8), "interestRate": "0.00010000",
                    "nextFundingTime": nxt, "time": now}

        return one(ins) if ins is not None else [one(i) for i in self.source.instruments]

    def funding_history(self, params: dict[str, str]) -> list[dict[str, Any]]:
        ins = self.instrument(params, required=False)
        limit = self._int(params, "limit", 100)
        assert limit is not None
        if not 1 <= limit <= 1000:
            raise invalid("limit")
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        now = self.now()
        end = now if end is None else min(end, now)
        src = self.source
        period = 8 * 3_600_000
        first = (src.first_ms // period + 1) * period
        if start is not None:
            lo = max(first, -(-start // period) * period)
        else:
            lo = first
        times = list(range(lo, end + 1, period))
        insts = [ins] if ins is not None else list(src.instruments)
        rows: list[tuple[int, Instrument]] = [(t, i) for t in times for i in insts]
        rows = rows[:limit] if start is not None else rows[-limit:]
        out = []
        for t, i in rows:
            rate = float(src.funding_rates(t - 1)[i.column])
            mark = float(src.price_at(t)[i.column])
            out.append({"symbol": i.symbol, "fundingRate": fnum(rate, 8), "fundingTime": t,
                        "markPrice": fnum(mark, 8)})
        return out

    def taker_ratio(self, params: dict[str, str]) -> list[dict[str, Any]]:
        ins = self.instrument(params)
        assert ins is not None
        period_name = params.get("period")
        if not period_name:
            raise mandatory("period")
        period = TAKER_PERIODS.get(period_name)
        if period is None or period < self.source.bar_ms:
            raise invalid("period")
        limit = self._int(params, "limit", 30)
        assert limit is not None
        if not 1 <= limit <= 500:
            raise invalid("limit")
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        now = self.now()
        last_closed = (now // period) * period - period
        if end is not None:
            last_closed = min(last_closed, (end // period) * period)
        floor = max(now - 30 * 86_400_000, self.source.first_ms)
        floor = -(-floor // period) * period
        if start is not None:
            first = max(floor, -(-start // period) * period)
            count = min(limit, (last_closed - first) // period + 1)
        else:
            first = max(floor, last_closed - (limit - 1) * period)
            count = (last_closed - first) // period + 1
        if count <= 0:
            return []
        rows = self.tape.taker_volumes(ins.column, period, first, int(count), now)
        vd = ins.vol_decimals
        out = []
        for t, buy, sell in rows:
            ratio = buy / sell if sell > 0 else 0.0
            out.append({"buySellRatio": f"{ratio:.4f}", "buyVol": fnum(buy, max(4, vd)),
                        "sellVol": fnum(sell, max(4, vd)), "timestamp": str(t)})
        return out

    # ------------------------------------------------------------------ trading

    def _order_qty(self, ins: Instrument, params: dict[str, str], market: bool) -> float:
        d = self._decimal(params, "quantity")
        if d is None:
            raise mandatory("quantity")
        if d <= 0:
            raise err(-4003, "Quantity less than or equal to zero.")
        qd = ins.qty_decimals
        exponent = d.normalize().as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > max(0, qd):
            raise err(-1111, "Precision is over the maximum defined for this asset.")
        if qd < 0 and d % Decimal(10 ** (-qd)) != 0:
            raise err(-4023, "Quantity not increased by step size.")
        qty = float(d)
        cap = self.market_max_qty[ins.symbol] if market else self.max_qty[ins.symbol]
        if qty > cap:
            raise err(-4005, "Quantity greater than max quantity.")
        return qty

    def _order_price(self, ins: Instrument, params: dict[str, str]) -> float:
        d = self._decimal(params, "price")
        if d is None:
            raise mandatory("price")
        if d <= 0:
            raise err(-4013, "Price less than min price.")
        exponent = d.normalize().as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > ins.price_decimals:
            raise err(-1111, "Precision is over the maximum defined for this asset.")
        return float(d)

    def _walk(self, levels: list[tuple[float, float]], qty: float, limit: float | None, side: str,
              ins: Instrument) -> list[tuple[float, float]]:
        """Fills taking ``qty`` from ``levels`` (best first) within ``limit``; beyond depth5 see module doc."""
        fills: list[tuple[float, float]] = []
        left = qty
        qd = ins.qty_decimals
        better = (lambda p: p <= limit) if side == "BUY" else (lambda p: p >= limit)  # noqa: E731
        for price, avail in levels:
            if left <= 0:
                break
            if limit is not None and not better(price):
                return fills
            take = round_to(min(left, avail), qd)
            if take > 0:
                fills.append((price, take))
                left = round_to(left - take, qd)
        if left > 0 and levels:
            best, fifth = levels[0][0], levels[-1][0]
            push = max(abs(fifth - best), ins.tick)
            beyond = fifth + push if side == "BUY" else max(ins.tick, fifth - push)
            beyond = round_to(beyond, ins.price_decimals)
            if limit is None or better(beyond):
                fills.append((beyond, left))
        return fills

    def new_order(self, params: dict[str, str]) -> dict[str, Any]:
        now = self.now()
        ins = self.instrument(params)
        assert ins is not None
        side = (params.get("side") or "").upper()
        if not side:
            raise mandatory("side")
        if side not in ("BUY", "SELL"):
            raise err(-1117, "Invalid side.")
        otype = (params.get("type") or "").upper()
        if not otype:
            raise mandatory("type")
        if otype not in ("LIMIT", "MARKET"):
            raise err(-1116, "Invalid orderType.")
        if params.get("positionSide", "BOTH").upper() != "BOTH":
            raise err(-4061, "Order's position side does not match user's setting.")
        qty = self._order_qty(ins, params, market=otype == "MARKET")
        reduce_only = (params.get("reduceOnly") or "false").lower() == "true"
        tif = (params.get("timeInForce") or "").upper()
        price = 0.0
        if otype == "LIMIT":
            if not tif:
                raise mandatory("timeInForce")
            if tif not in _TIFS:
                raise err(-1115, "Invalid timeInForce.")
            price = self._order_price(ins, params)
        else:
            if params.get("price"):
                raise err(-1106, "Parameter 'price' sent when not required.")
            tif = "GTC"
        client_id = params.get("newClientOrderId") or ""
        if client_id:
            if not _CLIENT_ID.match(client_id):
                raise err(-4015, "Client order id is not valid.")
            if client_id in self._client_ids:
                raise err(-4116, "ClientOrderId is duplicated.")
        mark = self.mark_of(ins, now)
        if otype == "LIMIT":
            ticks = price * 10**ins.price_decimals
            if abs(ticks - round(ticks)) > 1e-6 * max(1.0, abs(ticks)):
                raise err(-4014, "Price not increased by tick size.")
            if side == "BUY" and price > mark * PERCENT_PRICE_UP:
                cap = fnum(mark * PERCENT_PRICE_UP, ins.price_decimals)
                raise err(-4016, f"Limit price can't be higher than {cap}.")
            if side == "SELL" and price < mark * PERCENT_PRICE_DOWN:
                floor = fnum(mark * PERCENT_PRICE_DOWN, ins.price_decimals)
                raise err(-4024, f"Limit price can't be lower than {floor}.")
        pos = self.ledger.position(ins.symbol)
        signed = qty if side == "BUY" else -qty
        if reduce_only:
            if pos.amt == 0 or (pos.amt > 0) == (signed > 0):
                raise err(-2022, "ReduceOnly Order is rejected.")
            qty = min(qty, abs(pos.amt))
            signed = qty if side == "BUY" else -qty
        ref = price if otype == "LIMIT" else mark
        if qty * ref < MIN_NOTIONAL and not reduce_only:
            raise err(-4164, f"Order's notional must be no smaller than {MIN_NOTIONAL:g} "
                             "(unless you choose reduce only).")
        lev = self.ledger.leverage(ins.symbol)
        if abs(pos.amt + signed) * mark > max_notional(lev) and abs(pos.amt + signed) > abs(pos.amt):
            raise err(-2027, "Exceeded the maximum allowable position at current leverage.")
        if pos.amt == 0 or (pos.amt > 0) == (signed > 0):
            increase = abs(signed)
        else:
            increase = max(0.0, abs(signed) - abs(pos.amt))
        margins = self.ledger.margins(self.marks(now))
        need = increase * ref / lev + qty * ref * TAKER_FEE
        if need > margins["available"] + 1e-9:
            raise err(-2019, "Margin is insufficient.")

        book = self.books.compute(np.array([ins.column]), now, levels=5)
        bids, asks = book.row(0)
        levels = asks if side == "BUY" else bids
        fills = self._walk(levels, qty, price if otype == "LIMIT" else None, side, ins)
        filled = round_to(sum(q for _, q in fills), ins.qty_decimals)
        if otype == "LIMIT" and tif == "GTX" and fills:
            raise err(-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected. "
                             "The order will not be recorded in the order history")
        if otype == "LIMIT" and tif == "FOK" and filled < qty:
            raise err(-5021, "Due to the order could not be filled immediately, the FOK order has been rejected. "
                             "The order will not be recorded in the order history")

        order_id = self.state.next_order_id
        self.state.next_order_id += 1
        client_id = client_id or f"sim-{order_id}"
        self._client_ids.add(client_id)
        rec = OrderRecord(order_id=order_id, client_order_id=client_id, symbol=ins.symbol, side=side, type=otype,
                          time_in_force=tif, price=price, orig_qty=qty, reduce_only=reduce_only, time=now,
                          update_time=now)
        for fill_price, fill_qty in fills:
            self.ledger.fill(ins.symbol, side, fill_qty, fill_price, TAKER_FEE, now)
            rec.executed_qty = round_to(rec.executed_qty + fill_qty, ins.qty_decimals)
            rec.cum_quote += fill_qty * fill_price
        if rec.executed_qty >= qty:
            rec.status = "FILLED"
        elif otype == "MARKET" or tif in ("IOC", "FOK"):
            rec.status = "EXPIRED"
        else:
            rec.status = "PARTIALLY_FILLED" if rec.executed_qty > 0 else "NEW"
        self.state.orders.append(rec)
        self.order_count += 1
        self.save()
        return self.order_view(rec, with_cum_qty=True)

    def _find(self, params: dict[str, str], ins: Instrument) -> OrderRecord | None:
        order_id = self._int(params, "orderId")
        client_id = params.get("origClientOrderId")
        if order_id is None and not client_id:
            raise err(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        for rec in reversed(self.state.orders):
            if rec.symbol != ins.symbol:
                continue
            if (order_id is not None and rec.order_id == order_id) or (client_id and rec.client_order_id == client_id):
                return rec
        return None

    def query_order(self, params: dict[str, str]) -> dict[str, Any]:
        ins = self.instrument(params)
        assert ins is not None
        rec = self._find(params, ins)
        if rec is None:
            raise err(-2013, "Order does not exist.")
        return self.order_view(rec, with_time=True)

    def cancel_order(self, params: dict[str, str]) -> dict[str, Any]:
        ins = self.instrument(params)
        assert ins is not None
        rec = self._find(params, ins)
        if rec is None or not rec.is_open:
            raise err(-2011, "Unknown order sent.")
        rec.status = "CANCELED"
        rec.update_time = self.now()
        self.save()
        return self.order_view(rec, with_cum_qty=True, with_avg=False)

    def cancel_all(self, params: dict[str, str]) -> dict[str, Any]:
        ins = self.instrument(params)
        assert ins is not None
        now = self.now()
        for rec in self.ledger.open_orders(ins.symbol):
            rec.status = "CANCELED"
            rec.update_time = now
        self.save()
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        ins = self.instrument(params, required=False)
        return [self.order_view(o, with_time=True) for o in self.ledger.open_orders(ins.symbol if ins else None)]

    def order_view(self, rec: OrderRecord, *, with_time: bool = False, with_cum_qty: bool = False,
                   with_avg: bool = True) -> dict[str, Any]:
        """An order as Binance shows it: query/openOrders add ``time``; new/cancel add ``cumQty``;
        the cancel response has no ``avgPrice`` (as in Binance's reference)."""
        ins = self.source.by_symbol[rec.symbol]
        d, qd = ins.price_decimals, max(0, ins.qty_decimals)
        view: dict[str, Any] = {
            "avgPrice": fnum(rec.avg_price, max(5, d)), "clientOrderId": rec.client_order_id,
            "cumQuote": fnum(rec.cum_quote, 8), "executedQty": fnum(rec.executed_qty, qd), "orderId": rec.order_id,
            "origQty": fnum(rec.orig_qty, qd), "origType": rec.type,
            "price": fnum(rec.price, d) if rec.type == "LIMIT" else "0", "reduceOnly": rec.reduce_only,
            "side": rec.side, "positionSide": "BOTH", "status": rec.status, "stopPrice": "0",
            "closePosition": False, "symbol": rec.symbol, "timeInForce": rec.time_in_force, "type": rec.type,
            "updateTime": rec.update_time, "workingType": "CONTRACT_PRICE", "priceProtect": False,
            "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0}
        if not with_avg:
            del view["avgPrice"]
        if with_time:
            view["time"] = rec.time
        if with_cum_qty:
            view["cumQty"] = fnum(rec.executed_qty, qd)
        return view

    def change_leverage(self, params: dict[str, str]) -> dict[str, Any]:
        ins = self.instrument(params)
        assert ins is not None
        lev = self._int(params, "leverage")
        if lev is None:
            raise mandatory("leverage")
        if not 1 <= lev <= 125:
            raise err(-4028, f"Leverage {lev} is not valid")
        self.state.leverage[ins.symbol] = lev
        self.state.update_time = self.now()
        self.save()
        return {"leverage": lev, "maxNotionalValue": fnum(max_notional(lev), 0), "symbol": ins.symbol}

    # ------------------------------------------------------------------ account views

    def _positions(self, now: int, marks: dict[str, float]) -> list[tuple[Instrument, float, float, int, float]]:
        """(instrument, amount, entry, leverage, mark) for every symbol."""
        out = []
        for ins in self.source.instruments:
            pos = self.ledger.position(ins.symbol)
            out.append((ins, pos.amt, pos.entry_price, self.ledger.leverage(ins.symbol), marks[ins.symbol]))
        return out

    def account(self, version: int = 2) -> dict[str, Any]:
        now = self.now()
        marks = self.marks(now)
        m = self.ledger.margins(marks)
        f8 = lambda x: fnum(x, 8)  # noqa: E731
        asset = {"asset": "USDT", "walletBalance": f8(m["wallet"]), "unrealizedProfit": f8(m["unrealized"]),
                 "marginBalance": f8(m["margin_balance"]), "maintMargin": f8(m["maint_margin"]),
                 "initialMargin": f8(m["initial_margin"]), "positionInitialMargin": f8(m["position_im"]),
                 "openOrderInitialMargin": f8(m["order_im"]), "crossWalletBalance": f8(m["wallet"]),
                 "crossUnPnl": f8(m["unrealized"]), "availableBalance": f8(m["available"]),
                 "maxWithdrawAmount": f8(max(0.0, m["available"])), "updateTime": self.state.update_time}
        if version == 2:
            asset["marginAvailable"] = True
        totals = {"totalInitialMargin": f8(m["initial_margin"]), "totalMaintMargin": f8(m["maint_margin"]),
                  "totalWalletBalance": f8(m["wallet"]), "totalUnrealizedProfit": f8(m["unrealized"]),
                  "totalMarginBalance": f8(m["margin_balance"]), "totalPositionInitialMargin": f8(m["position_im"]),
                  "totalOpenOrderInitialMargin": f8(m["order_im"]), "totalCrossWalletBalance": f8(m["wallet"]),
                  "totalCrossUnPnl": f8(m["unrealized"]), "availableBalance": f8(m["available"]),
                  "maxWithdrawAmount": f8(max(0.0, m["available"]))}
        positions = []
        for ins, amt, entry, lev, mark in self._positions(now, marks):
            qd = max(0, ins.qty_decimals)
            notional = amt * mark
            upnl = amt * (mark - entry)
            im = abs(notional) / lev
            order_im = sum(o.remaining * o.price / lev for o in self.ledger.open_orders(ins.symbol))
            upd = self.ledger.position(ins.symbol).update_time
            if version == 2:
                positions.append({
                    "symbol": ins.symbol, "initialMargin": f8(im + order_im), "maintMargin": f8(abs(notional) * 0.004),
                    "unrealizedProfit": f8(upnl), "positionInitialMargin": f8(im),
                    "openOrderInitialMargin": f8(order_im),
                    "leverage": str(lev), "isolated": False, "entryPrice": fnum(entry, max(5, ins.price_decimals)),
                    "breakEvenPrice": fnum(entry * (1 + TAKER_FEE * (1 if amt > 0 else -1)) if amt else 0.0,
                                           max(5, ins.price_decimals)),
                    "maxNotional": fnum(max_notional(lev), 0), "bidNotional": "0", "askNotional": "0",
                    "positionSide": "BOTH", "positionAmt": fnum(amt, qd), "updateTime": upd})
            elif amt != 0:
                positions.append({
                    "symbol": ins.symbol, "positionSide": "BOTH", "positionAmt": fnum(amt, qd),
                    "unrealizedProfit": f8(upnl), "isolatedMargin": "0.00000000", "notional": f8(notional),
                    "isolatedWallet": "0", "initialMargin": f8(im), "maintMargin": f8(abs(notional) * 0.004),
                    "updateTime": upd})
        if version == 2:
            head = {"feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                    "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1}
            return {**head, **totals, "assets": [asset], "positions": positions}
        return {**totals, "assets": [asset], "positions": positions}

    def position_risk(self, params: dict[str, str], version: int = 2) -> list[dict[str, Any]]:
        ins_filter = self.instrument(params, required=False)
        now = self.now()
        marks = self.marks(now)
        out = []
        for ins, amt, entry, lev, mark in self._positions(now, marks):
            if ins_filter is not None and ins.symbol != ins_filter.symbol:
                continue
            if version == 3 and amt == 0:
                continue
            qd = max(0, ins.qty_decimals)
            notional = amt * mark
            upd = self.ledger.position(ins.symbol).update_time
            bep = entry * (1 + TAKER_FEE * (1 if amt > 0 else -1)) if amt else 0.0
            base = {"symbol": ins.symbol, "positionSide": "BOTH", "positionAmt": fnum(amt, qd),
                    "entryPrice": fnum(entry, max(5, ins.price_decimals)),
                    "breakEvenPrice": fnum(bep, max(5, ins.price_decimals)), "markPrice": fnum(mark, 8),
                    "unRealizedProfit": fnum(amt * (mark - entry), 8), "liquidationPrice": "0",
                    "isolatedMargin": "0.00000000", "notional": fnum(notional, 8), "isolatedWallet": "0",
                    "updateTime": upd}
            if version == 2:
                base.update({"leverage": str(lev), "maxNotionalValue": fnum(max_notional(lev), 0),
                             "marginType": "cross", "isAutoAddMargin": "false"})
            else:
                im = abs(notional) / lev
                base.update({"marginAsset": "USDT", "initialMargin": fnum(im, 8),
                             "maintMargin": fnum(abs(notional) * 0.004, 8), "positionInitialMargin": fnum(im, 8),
                             "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0"})
            out.append(base)
        return out

    # ------------------------------------------------------------------ time passing

    def on_tick(self, now: int) -> None:
        """Settle funding boundaries passed and fill resting orders the market reached."""
        changed = False
        for t in self.source.funding_times(self.state.last_funding_ms, now):
            rates = self.source.funding_rates(t - 1)
            prices = self.source.price_at(t)
            self.ledger.fund({i.symbol: float(rates[i.column]) for i in self.source.instruments},
                             {i.symbol: float(prices[i.column]) for i in self.source.instruments}, t)
            changed = True
        resting = self.ledger.open_orders()
        if resting:
            symbols = sorted({o.symbol for o in resting})
            cols = np.array([self.source.by_symbol[s].column for s in symbols])
            book = self.books.compute(cols, now, levels=1)
            top = {s: (float(book.bid_px[i, 0]), float(book.ask_px[i, 0])) for i, s in enumerate(symbols)}
            for rec in resting:
                bid, ask = top[rec.symbol]
                if not ((rec.side == "BUY" and ask <= rec.price) or (rec.side == "SELL" and bid >= rec.price)):
                    continue
                ins = self.source.by_symbol[rec.symbol]
                qty = rec.remaining
                if rec.reduce_only:
                    pos = self.ledger.position(rec.symbol)
                    reducing = pos.amt != 0 and (pos.amt > 0) != (rec.side == "BUY")
                    qty = min(qty, abs(pos.amt)) if reducing else 0.0
                if qty <= 0:
                    rec.status = "EXPIRED"
                else:
                    self.ledger.fill(rec.symbol, rec.side, qty, rec.price, MAKER_FEE, now)
                    rec.executed_qty = round_to(rec.executed_qty + qty, ins.qty_decimals)
                    rec.cum_quote += qty * rec.price
                    rec.status = "FILLED" if rec.remaining <= 0 else "EXPIRED"
                rec.update_time = now
                changed = True
        if changed:
            self.save()
