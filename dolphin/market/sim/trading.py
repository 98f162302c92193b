"""Orders: validation with Binance's codes, matching against the book, algo (conditional) orders,
and what passing time does to an account — funding, resting fills, triggers, liquidation.

Matching (documented in ``docs/market.md``):

* **MARKET** orders walk the current depth5 book level by level (partial fills at
  successive prices). When the five levels are exhausted, the rest fills at the 5th
  level pushed further by the same distance again (best → 5th level), at least a tick.
  All taker.
* **LIMIT** orders take what is marketable within their price the same way (taker), then
  GTC rests the remainder (maker, filled in full at its price once the opposite best
  price reaches it), IOC expires it, FOK is rejected unless fully fillable (-5021), GTX
  (post-only) is rejected if marketable (-5022).
* **Conditional orders** (STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET) go through
  the Algo Order API (``/fapi/v1/algoOrder``) as on the live venue since December 2025;
  ``/fapi/v1/order`` answers them -4120. When the last price crosses the trigger price
  (checked every emission tick against every 1 s price printed since the last check) the
  algo order places a MARKET or LIMIT order; ``closePosition`` closes whatever position
  there is at that moment.
* Our fills never move later books or prices (no market impact).

Every state change of an order and every fill is announced on the user-data stream
(`dolphin.market.sim.userdata`); every fill is kept for ``userTrades`` and its PnL and
commission for ``income``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dolphin.market.errors import BinanceAPIError
from dolphin.market.sim.account import (
    MAINT_MARGIN_RATE,
    AlgoRecord,
    OrderRecord,
    TradeRecord,
    round_to,
    split_key,
)
from dolphin.market.sim.config import MAKER_FEE, TAKER_FEE
from dolphin.market.sim.source import Instrument
from dolphin.market.sim.userdata import FillInfo
from dolphin.market.sim.wire import (
    ALGO_TYPES,
    MAX_NUM_ALGO_ORDERS,
    MAX_NUM_ORDERS,
    TIME_IN_FORCE,
    WORKING_TYPES,
    Params,
    bool_param,
    decimal_param,
    decimals_of,
    err,
    fnum,
    int_param,
    invalid,
    json_list_param,
    limit_param,
    mandatory,
    max_notional,
    not_required,
)

if TYPE_CHECKING:
    from dolphin.market.sim.exchange import Exchange

log = logging.getLogger("dolphin.market.sim")

LIQUIDATION_FEE = 0.0125
MARGIN_CALL_RATIO = 0.8
"""Maintenance margin / margin balance at which MARGIN_CALL is pushed (re-armed below 0.7)."""
DAY_MS = 86_400_000


class Trading:
    """Order entry, matching and the account's time-driven events, over an `Exchange`."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self._margin_called = False
        self._last_check = ex.now()

    # ------------------------------------------------------------------ parameter checks

    @staticmethod
    def _side(params: Params) -> str:
        side = (params.get("side") or "").upper()
        if not side:
            raise mandatory("side")
        if side not in ("BUY", "SELL"):
            raise err(-1117, "Invalid side.")
        return side

    def _position_side(self, params: Params) -> str:
        ps = (params.get("positionSide") or "BOTH").upper()
        if ps not in ("BOTH", "LONG", "SHORT"):
            raise invalid("positionSide")
        if (ps == "BOTH") == self.ex.state.dual_side:
            raise err(-4061, "Order's position side does not match user's setting.")
        if self.ex.state.dual_side and params.get("reduceOnly"):
            raise not_required("reduceonly")
        return ps

    def _qty(self, ins: Instrument, params: Params, market: bool, name: str = "quantity") -> float:
        d = decimal_param(params, name)
        if d is None:
            raise mandatory(name)
        if d <= 0:
            raise err(-4003, "Quantity less than or equal to zero.")
        qd = ins.qty_decimals
        if decimals_of(d) > max(0, qd):
            raise err(-1111, "Precision is over the maximum defined for this asset.")
        if qd < 0 and d % (10 ** (-qd)) != 0:
            raise err(-4023, "Quantity not increased by step size.")
        qty = float(d)
        cap = self.ex.market_max_qty[ins.symbol] if market else self.ex.max_qty[ins.symbol]
        if qty > cap:
            raise err(-4005, "Quantity greater than max quantity.")
        return qty

    def _price(self, ins: Instrument, params: Params, name: str = "price") -> float:
        d = decimal_param(params, name)
        if d is None:
            raise mandatory(name)
        if d <= 0:
            raise err(-4013, "Price less than min price.")
        if decimals_of(d) > ins.price_decimals:
            raise err(-1111, "Precision is over the maximum defined for this asset.")
        return float(d)

    def _check_price_rules(self, ins: Instrument, side: str, price: float, now: int) -> None:
        from dolphin.market.sim.exchange import PERCENT_PRICE_DOWN, PERCENT_PRICE_UP

        ticks = price * 10**ins.price_decimals
        if abs(ticks - round(ticks)) > 1e-6 * max(1.0, abs(ticks)):
            raise err(-4014, "Price not increased by tick size.")
        mark = self.ex.mark_of(ins, now)
        if side == "BUY" and price > mark * PERCENT_PRICE_UP:
            raise err(-4016, f"Limit price can't be higher than {fnum(mark * PERCENT_PRICE_UP, ins.price_decimals)}.")
        if side == "SELL" and price < mark * PERCENT_PRICE_DOWN:
            raise err(-4024, f"Limit price can't be lower than {fnum(mark * PERCENT_PRICE_DOWN, ins.price_decimals)}.")

    def _client_id(self, params: Params, name: str) -> str:
        from dolphin.market.sim.exchange import CLIENT_ID

        client_id = params.get(name) or ""
        if client_id:
            if not CLIENT_ID.match(client_id):
                raise err(-4015, "Client order id is not valid.")
            if client_id in self.ex._client_ids:
                raise err(-4116, "ClientOrderId is duplicated.")
        return client_id

    # ------------------------------------------------------------------ new orders

    def new_order(self, params: Params) -> dict[str, Any]:
        ex = self.ex
        now = ex.now()
        ins = ex.require_instrument(params)
        side = self._side(params)
        otype = (params.get("type") or "").upper()
        if not otype:
            raise mandatory("type")
        if otype in ALGO_TYPES or otype == "TRAILING_STOP_MARKET":
            raise err(-4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints "
                             "instead.")
        if otype not in ("LIMIT", "MARKET"):
            raise err(-1116, "Invalid orderType.")
        ps = self._position_side(params)
        qty = self._qty(ins, params, market=otype == "MARKET")
        reduce_only = bool_param(params, "reduceOnly")
        if bool_param(params, "closePosition"):
            raise not_required("closePosition")
        if (params.get("priceMatch") or "NONE").upper() != "NONE":
            raise invalid("priceMatch")
        tif = (params.get("timeInForce") or "").upper()
        price = 0.0
        if otype == "LIMIT":
            if not tif:
                raise mandatory("timeInForce")
            if tif not in TIME_IN_FORCE:
                raise err(-1115, "Invalid timeInForce.")
            price = self._price(ins, params)
        else:
            if params.get("price"):
                raise not_required("price")
            tif = "GTC"
        client_id = self._client_id(params, "newClientOrderId")
        if len(ex.ledger.open_orders(ins.symbol)) >= MAX_NUM_ORDERS:
            raise err(-2025, "Reach max open order limit.")
        if otype == "LIMIT":
            self._check_price_rules(ins, side, price, now)
        rec = self.execute(ins, side, otype, tif, qty, price, reduce_only, ps, client_id, now, allow_fault=True)
        ex.order_count += 1
        return self.order_view(rec, with_cum_qty=True)

    def execute(self, ins: Instrument, side: str, otype: str, tif: str, qty: float, price: float, reduce_only: bool,
                ps: str, client_id: str, now: int, *, orig_type: str = "", stop_price: float = 0.0,
                close_position: bool = False, working_type: str = "CONTRACT_PRICE", allow_fault: bool = False,
                register_id: bool = True) -> OrderRecord:
        """Check risk, match and record an order that passed parameter validation; returns its record."""
        ex = self.ex
        ledger = ex.ledger
        mark = ex.mark_of(ins, now)
        pos = ledger.position(ins.symbol, ps)
        signed = qty if side == "BUY" else -qty
        closing = ps != "BOTH" and ((ps == "LONG") == (side == "SELL"))
        if reduce_only or closing:
            if pos.amt == 0 or (pos.amt > 0) == (signed > 0):
                raise err(-2022, "ReduceOnly Order is rejected.")
            qty = min(qty, abs(pos.amt))
            signed = qty if side == "BUY" else -qty
        ref = price if otype == "LIMIT" else mark
        if qty * ref < 5.0 and not (reduce_only or closing):
            raise err(-4164, "Order's notional must be no smaller than 5 (unless you choose reduce only).")
        lev = ledger.leverage(ins.symbol)
        after = abs(pos.amt + signed)
        if after * mark > max_notional(lev) and after > abs(pos.amt):
            raise err(-2027, "Exceeded the maximum allowable position at current leverage.")
        if pos.amt == 0 or (pos.amt > 0) == (signed > 0):
            increase = abs(signed)
        else:
            increase = max(0.0, abs(signed) - abs(pos.amt))
        margins = ledger.margins(ex.marks(now))
        need = increase * ref / lev + qty * ref * TAKER_FEE
        if need > margins["available"] + 1e-9:
            raise err(-2019, "Margin is insufficient.")

        book = ex.books.compute(np.array([ins.column]), now, levels=5)
        bids, asks = book.row(0)
        fills = self._walk(asks if side == "BUY" else bids, qty, price if otype == "LIMIT" else None, side, ins)
        filled = round_to(sum(q for _, q in fills), ins.qty_decimals)
        if otype == "LIMIT" and tif == "GTX" and fills:
            raise err(-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected. "
                             "The order will not be recorded in the order history")
        if otype == "LIMIT" and tif == "FOK" and filled < qty:
            raise err(-5021, "Due to the order could not be filled immediately, the FOK order has been rejected. "
                             "The order will not be recorded in the order history")
        ratio, delay_ms = 0.0, 0
        if allow_fault and not (otype == "LIMIT" and tif == "FOK"):
            rule = ex.faults.take("partial")
            if rule is not None:
                ratio, delay_ms = rule.ratio, rule.delay_ms
                fills = self._trim(fills, self._share(qty, ratio, ins), ins)

        order_id = ex.state.next_order_id
        ex.state.next_order_id += 1
        client_id = client_id or f"sim-{order_id}"
        if register_id:
            ex._client_ids.add(client_id)
        rec = OrderRecord(order_id=order_id, client_order_id=client_id, symbol=ins.symbol, side=side, type=otype,
                          time_in_force=tif, price=price, orig_qty=qty, reduce_only=reduce_only and ps == "BOTH",
                          time=now, update_time=now, orig_type=orig_type or otype, stop_price=stop_price,
                          close_position=close_position, working_type=working_type, position_side=ps,
                          partial_ratio=ratio)
        ex.state.orders.append(rec)
        ex.userdata.order_update(rec, "NEW")
        self._apply_fills(rec, ins, fills, TAKER_FEE, False, now)
        if rec.remaining > 0:
            if otype == "MARKET" and ratio:
                rec.pending_at = now + max(1, int(ex.clock.sim_ms_of_wall_span(delay_ms)))
            elif otype == "MARKET" or tif in ("IOC", "FOK"):
                self._finish(rec, "EXPIRED", now)
        ex.save()
        return rec

    @staticmethod
    def _share(qty: float, ratio: float, ins: Instrument) -> float:
        steps = max(1, math.floor(qty * ratio / ins.step + 1e-9))
        return min(qty, round_to(steps * ins.step, ins.qty_decimals))

    @staticmethod
    def _trim(fills: list[tuple[float, float]], cap: float, ins: Instrument) -> list[tuple[float, float]]:
        out, left = [], cap
        for price, q in fills:
            if left <= 0:
                break
            take = round_to(min(q, left), ins.qty_decimals)
            if take > 0:
                out.append((price, take))
                left = round_to(left - take, ins.qty_decimals)
        return out

    @staticmethod
    def _walk(levels: list[tuple[float, float]], qty: float, limit: float | None, side: str,
              ins: Instrument) -> list[tuple[float, float]]:
        """Fills taking ``qty`` from ``levels`` (best first) within ``limit``; beyond depth5 see module doc."""
        fills: list[tuple[float, float]] = []
        left = qty
        qd = ins.qty_decimals
        better: Callable[[float], bool] = ((lambda p: p <= limit) if side == "BUY"  # type: ignore[operator]
                                           else (lambda p: p >= limit))  # type: ignore[operator]
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

    def _apply_fills(self, rec: OrderRecord, ins: Instrument, fills: list[tuple[float, float]], fee_rate: float,
                     maker: bool, now: int) -> None:
        ex = self.ex
        ledger = ex.ledger
        touched: list[str] = []
        for price, qty in fills:
            eff = ledger.apply_fill(ins.symbol, rec.side, qty, price, fee_rate, now, rec.position_side)
            rec.executed_qty = round_to(rec.executed_qty + qty, ins.qty_decimals)
            rec.cum_quote += qty * price
            rec.status = "FILLED" if rec.remaining <= 0 else "PARTIALLY_FILLED"
            rec.update_time = now
            tid = ex.state.next_trade_id
            ex.state.next_trade_id += 1
            ledger.record_trade(TradeRecord(tid, rec.order_id, ins.symbol, rec.side, rec.position_side, price, qty,
                                            eff.fee, eff.realized, maker, now))
            if eff.realized:
                ledger.record_income(ins.symbol, "REALIZED_PNL", eff.realized, now, tid)
            ledger.record_income(ins.symbol, "COMMISSION", -eff.fee, now, tid)
            fill = FillInfo(tid, price, qty, eff.fee, eff.realized, maker)
            ex.userdata.trade_lite(rec, fill)
            ex.userdata.order_update(rec, "TRADE", fill)
            if eff.key not in touched:
                touched.append(eff.key)
        if touched:
            ex.userdata.account_update("ORDER", touched)

    def _finish(self, rec: OrderRecord, status: str, now: int) -> None:
        rec.status = status
        rec.update_time = now
        rec.pending_at = 0
        self.ex.userdata.order_update(rec, status)

    # ------------------------------------------------------------------ queries and cancels

    def _find(self, params: Params, ins: Instrument) -> OrderRecord | None:
        order_id = int_param(params, "orderId")
        client_id = params.get("origClientOrderId")
        if order_id is None and not client_id:
            raise err(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        for rec in reversed(self.ex.state.orders):
            if rec.symbol != ins.symbol:
                continue
            if (order_id is not None and rec.order_id == order_id) or (client_id and rec.client_order_id == client_id):
                return rec
        return None

    def query_order(self, params: Params) -> dict[str, Any]:
        ins = self.ex.require_instrument(params)
        rec = self._find(params, ins)
        if rec is None:
            raise err(-2013, "Order does not exist.")
        return self.order_view(rec, with_time=True)

    def query_open_order(self, params: Params) -> dict[str, Any]:
        """``GET /fapi/v1/openOrder``: like query, but only an order that is still open."""
        ins = self.ex.require_instrument(params)
        rec = self._find(params, ins)
        if rec is None or not rec.is_open:
            raise err(-2013, "Order does not exist.")
        return self.order_view(rec, with_time=True)

    def cancel_order(self, params: Params) -> dict[str, Any]:
        ins = self.ex.require_instrument(params)
        rec = self._find(params, ins)
        if rec is None or not rec.is_open:
            raise err(-2011, "Unknown order sent.")
        self._finish(rec, "CANCELED", self.ex.now())
        self.ex.save()
        return self.order_view(rec, with_cum_qty=True, with_avg=False)

    def cancel_all(self, params: Params) -> dict[str, Any]:
        ins = self.ex.require_instrument(params)
        self._cancel_symbol(ins.symbol, self.ex.now())
        self.ex.save()
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _cancel_symbol(self, symbol: str, now: int) -> int:
        recs = self.ex.ledger.open_orders(symbol)
        for rec in recs:
            self._finish(rec, "CANCELED", now)
        return len(recs)

    def open_orders(self, params: Params) -> list[dict[str, Any]]:
        ins = self.ex.instrument(params, required=False)
        return [self.order_view(o, with_time=True) for o in self.ex.ledger.open_orders(ins.symbol if ins else None)]

    def all_orders(self, params: Params) -> list[dict[str, Any]]:
        """``GET /fapi/v1/allOrders``: a symbol's orders from ``orderId`` on, or within a time range (≤ 7 days)."""
        ins = self.ex.require_instrument(params)
        limit = limit_param(params, 500, 1000)
        order_id = int_param(params, "orderId")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        if start is not None and end is not None and (start > end or end - start > 7 * DAY_MS):
            raise err(-1023, "Start time is greater than end time." if start > end
                      else "The time between startTime and endTime can't be longer than 7 days.")
        rows = [o for o in self.ex.state.orders if o.symbol == ins.symbol]
        if order_id is not None:
            rows = [o for o in rows if o.order_id >= order_id][:limit]
        elif start is not None or end is not None:
            rows = [o for o in rows if (start is None or o.time >= start) and (end is None or o.time <= end)]
            rows = rows[:limit] if start is not None else rows[-limit:]
        else:
            rows = rows[-limit:]
        return [self.order_view(o, with_time=True) for o in rows]

    def order_view(self, rec: OrderRecord, *, with_time: bool = False, with_cum_qty: bool = False,
                   with_avg: bool = True) -> dict[str, Any]:
        """An order as Binance shows it: query/openOrders add ``time``; new/cancel add ``cumQty``;
        the cancel response has no ``avgPrice`` (as in Binance's reference)."""
        ins = self.ex.source.by_symbol[rec.symbol]
        d, qd = ins.price_decimals, max(0, ins.qty_decimals)
        view: dict[str, Any] = {
            "avgPrice": fnum(rec.avg_price, max(5, d)), "clientOrderId": rec.client_order_id,
            "cumQuote": fnum(rec.cum_quote, 8), "executedQty": fnum(rec.executed_qty, qd), "orderId": rec.order_id,
            "origQty": fnum(rec.orig_qty, qd), "origType": rec.orig_type or rec.type,
            "price": fnum(rec.price, d) if rec.type == "LIMIT" else "0", "reduceOnly": rec.reduce_only,
            "side": rec.side, "positionSide": rec.position_side, "status": rec.status,
            "stopPrice": fnum(rec.stop_price, d) if rec.stop_price else "0",
            "closePosition": rec.close_position, "symbol": rec.symbol, "timeInForce": rec.time_in_force,
            "type": rec.type, "updateTime": rec.update_time, "workingType": rec.working_type,
            "priceProtect": rec.price_protect, "priceMatch": "NONE", "selfTradePreventionMode": "NONE",
            "goodTillDate": 0}
        if not with_avg:
            del view["avgPrice"]
        if with_time:
            view["time"] = rec.time
        if with_cum_qty:
            view["cumQty"] = fnum(rec.executed_qty, qd)
        return view

    # ------------------------------------------------------------------ modify, batch, countdown

    def modify_order(self, params: Params) -> dict[str, Any]:
        """``PUT /fapi/v1/order``: change an open LIMIT order's price and quantity in place."""
        ex = self.ex
        now = ex.now()
        ins = ex.require_instrument(params)
        side = self._side(params)
        rec = self._find(params, ins)
        if rec is None or not rec.is_open:
            raise err(-2013, "Order does not exist.")
        if rec.type != "LIMIT":
            raise err(-1116, "Invalid orderType.")
        if side != rec.side:
            raise invalid("side")
        qty = self._qty(ins, params, market=False)
        price = self._price(ins, params)
        if qty <= rec.executed_qty:
            raise invalid("quantity")
        if qty == rec.orig_qty and price == rec.price:
            raise err(-5027, "No need to modify the order.")
        self._check_price_rules(ins, side, price, now)
        book = ex.books.compute(np.array([ins.column]), now, levels=5)
        bids, asks = book.row(0)
        fills = self._walk(asks if side == "BUY" else bids, qty - rec.executed_qty, price, side, ins)
        if rec.time_in_force == "GTX" and fills:
            raise err(-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected. "
                             "The order will not be recorded in the order history")
        rec.orig_qty, rec.price, rec.update_time = qty, price, now
        ex.userdata.order_update(rec, "AMENDMENT")
        self._apply_fills(rec, ins, fills, TAKER_FEE, False, now)
        if rec.remaining > 0 and rec.time_in_force in ("IOC", "FOK"):
            self._finish(rec, "EXPIRED", now)
        ex.save()
        return self.order_view(rec, with_cum_qty=True)

    def batch(self, params: Params, action: Callable[[Params], dict[str, Any]], list_name: str,
              shared: Params) -> list[dict[str, Any]]:
        """Run ``action`` on each item of a JSON list parameter; failures become ``{code, msg}`` items."""
        items = json_list_param(params, list_name, 5)
        out: list[dict[str, Any]] = []
        for item in items:
            if not isinstance(item, dict):
                out.append({"code": -1130, "msg": f"Data sent for parameter '{list_name}' is not valid."})
                continue
            one = {**shared, **{k: _wire_str(v) for k, v in item.items()}}
            try:
                out.append(action(one))
            except BinanceAPIError as exc:
                out.append(exc.payload())
        return out

    def batch_new(self, params: Params) -> list[dict[str, Any]]:
        return self.batch(params, self.new_order, "batchOrders", {})

    def batch_modify(self, params: Params) -> list[dict[str, Any]]:
        return self.batch(params, self.modify_order, "batchOrders", {})

    def batch_cancel(self, params: Params) -> list[dict[str, Any]]:
        ins = self.ex.require_instrument(params)
        if params.get("orderIdList"):
            ids = json_list_param(params, "orderIdList", 10)
            items = [{"symbol": ins.symbol, "orderId": _wire_str(i)} for i in ids]
        else:
            ids = json_list_param(params, "origClientOrderIdList", 10)
            items = [{"symbol": ins.symbol, "origClientOrderId": _wire_str(i)} for i in ids]
        out: list[dict[str, Any]] = []
        for item in items:
            try:
                out.append(self.cancel_order(item))
            except BinanceAPIError as exc:
                out.append(exc.payload())
        return out

    def countdown_cancel_all(self, params: Params) -> dict[str, Any]:
        """``POST /fapi/v1/countdownCancelAll``: cancel the symbol's open orders unless renewed in time."""
        ins = self.ex.require_instrument(params)
        countdown = int_param(params, "countdownTime")
        if countdown is None:
            raise mandatory("countdownTime")
        if countdown < 0:
            raise invalid("countdownTime")
        if countdown == 0:
            self.ex.state.countdowns.pop(ins.symbol, None)
        else:
            self.ex.state.countdowns[ins.symbol] = self.ex.now() + int(self.ex.clock.sim_ms_of_wall_span(countdown))
        self.ex.save()
        return {"symbol": ins.symbol, "countdownTime": str(countdown)}

    # ------------------------------------------------------------------ algo (conditional) orders

    def new_algo_order(self, params: Params) -> dict[str, Any]:
        """``POST /fapi/v1/algoOrder``: a conditional order held until its trigger price is reached."""
        ex = self.ex
        now = ex.now()
        algo_type = (params.get("algoType") or "").upper()
        if not algo_type:
            raise mandatory("algoType")
        if algo_type != "CONDITIONAL":
            raise invalid("algoType")
        ins = ex.require_instrument(params)
        side = self._side(params)
        otype = (params.get("type") or "").upper()
        if not otype:
            raise mandatory("type")
        if otype not in ALGO_TYPES:
            raise err(-1116, "Invalid orderType.")
        ps = self._position_side(params)
        close_position = bool_param(params, "closePosition")
        reduce_only = bool_param(params, "reduceOnly")
        if close_position:
            if not otype.endswith("_MARKET"):
                raise not_required("closePosition")
            if params.get("quantity"):
                raise not_required("quantity")
            if params.get("reduceOnly"):
                raise not_required("reduceOnly")
            qty = 0.0
        else:
            qty = self._qty(ins, params, market=otype.endswith("_MARKET"))
        trigger = self._price(ins, params, "triggerPrice")
        self._check_tick(ins, trigger)
        price = 0.0
        tif = (params.get("timeInForce") or "GTC").upper()
        if tif not in TIME_IN_FORCE:
            raise err(-1115, "Invalid timeInForce.")
        if otype.endswith("_MARKET"):
            if params.get("price"):
                raise not_required("price")
        else:
            price = self._price(ins, params)
            self._check_tick(ins, price)
        working = (params.get("workingType") or "CONTRACT_PRICE").upper()
        if working not in WORKING_TYPES:
            raise invalid("workingType")
        client_id = self._client_id(params, "clientAlgoId")
        if len(ex.ledger.open_algos(ins.symbol)) >= MAX_NUM_ALGO_ORDERS:
            raise err(-4045, "Reach max stop order limit.")
        if close_position and any(a.close_position and a.side == side and a.order_type == otype
                                  and a.position_side == ps for a in ex.ledger.open_algos(ins.symbol)):
            raise err(-4130, "An open stop or take profit order with GTE and closePosition in the direction is "
                             "existing.")
        last = ex.mark_of(ins, now)
        if _triggers(otype, side, trigger, last, last):
            raise err(-2021, "Order would immediately trigger.")
        algo_id = ex.state.next_algo_id
        ex.state.next_algo_id += 1
        client_id = client_id or f"sim-algo-{algo_id}"
        ex._client_ids.add(client_id)
        algo = AlgoRecord(algo_id=algo_id, client_algo_id=client_id, order_type=otype, symbol=ins.symbol, side=side,
                          position_side=ps, time_in_force=tif, quantity=qty, price=price, trigger_price=trigger,
                          working_type=working, close_position=close_position,
                          price_protect=bool_param(params, "priceProtect"), reduce_only=reduce_only,
                          create_time=now, update_time=now)
        ex.state.algo_orders.append(algo)
        ex.userdata.algo_update(algo)
        ex.order_count += 1
        ex.save()
        return self.algo_view(algo)

    @staticmethod
    def _check_tick(ins: Instrument, price: float) -> None:
        ticks = price * 10**ins.price_decimals
        if abs(ticks - round(ticks)) > 1e-6 * max(1.0, abs(ticks)):
            raise err(-4014, "Price not increased by tick size.")

    def _find_algo(self, params: Params) -> AlgoRecord | None:
        algo_id = int_param(params, "algoId")
        client_id = params.get("clientAlgoId")
        if algo_id is None and not client_id:
            raise err(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
        for algo in reversed(self.ex.state.algo_orders):
            if (algo_id is not None and algo.algo_id == algo_id) or (client_id and algo.client_algo_id == client_id):
                return algo
        return None

    def cancel_algo(self, params: Params) -> dict[str, Any]:
        algo = self._find_algo(params)
        if algo is None or not algo.is_open:
            raise err(-2011, "Unknown order sent.")
        algo.status, algo.update_time = "CANCELED", self.ex.now()
        self.ex.userdata.algo_update(algo)
        self.ex.save()
        return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}

    def cancel_all_algos(self, params: Params) -> dict[str, Any]:
        ins = self.ex.require_instrument(params)
        now = self.ex.now()
        for algo in self.ex.ledger.open_algos(ins.symbol):
            algo.status, algo.update_time = "CANCELED", now
            self.ex.userdata.algo_update(algo)
        self.ex.save()
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def query_algo(self, params: Params) -> dict[str, Any]:
        algo = self._find_algo(params)
        if algo is None:
            raise err(-2013, "Order does not exist.")
        return self.algo_view(algo)

    def open_algos(self, params: Params) -> list[dict[str, Any]]:
        ins = self.ex.instrument(params, required=False)
        return [self.algo_view(a) for a in self.ex.ledger.open_algos(ins.symbol if ins else None)]

    def all_algos(self, params: Params) -> list[dict[str, Any]]:
        ins = self.ex.require_instrument(params)
        limit = limit_param(params, 500, 1000)
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        algo_id = int_param(params, "algoId")
        rows = [a for a in self.ex.state.algo_orders if a.symbol == ins.symbol
                and (algo_id is None or a.algo_id >= algo_id)
                and (start is None or a.create_time >= start) and (end is None or a.create_time <= end)]
        rows = rows[:limit] if (start is not None or algo_id is not None) else rows[-limit:]
        return [self.algo_view(a) for a in rows]

    def algo_view(self, algo: AlgoRecord) -> dict[str, Any]:
        ins = self.ex.source.by_symbol[algo.symbol]
        d, qd = ins.price_decimals, max(0, ins.qty_decimals)
        return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "algoType": "CONDITIONAL",
                "orderType": algo.order_type, "symbol": algo.symbol, "side": algo.side,
                "positionSide": algo.position_side, "timeInForce": algo.time_in_force,
                "quantity": fnum(algo.quantity, qd), "algoStatus": algo.status,
                "triggerPrice": fnum(algo.trigger_price, d), "price": fnum(algo.price, d),
                "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_MAKER",
                "workingType": algo.working_type, "priceMatch": "NONE", "closePosition": algo.close_position,
                "priceProtect": algo.price_protect, "reduceOnly": algo.reduce_only, "createTime": algo.create_time,
                "updateTime": algo.update_time, "triggerTime": algo.trigger_time, "goodTillDate": 0}

    def _trigger(self, algo: AlgoRecord, now: int) -> None:
        ex = self.ex
        ins = ex.source.by_symbol[algo.symbol]
        algo.status, algo.trigger_time, algo.update_time = "TRIGGERING", now, now
        ex.userdata.algo_update(algo)
        qty = algo.quantity
        if algo.close_position:
            qty = abs(ex.ledger.position(algo.symbol, algo.position_side).amt)
        otype = "MARKET" if algo.order_type.endswith("_MARKET") else "LIMIT"
        try:
            if qty <= 0:
                raise err(-2022, "ReduceOnly Order is rejected.")
            rec = self.execute(ins, algo.side, otype, algo.time_in_force if otype == "LIMIT" else "GTC", qty,
                               algo.price, algo.reduce_only or algo.close_position, algo.position_side,
                               algo.client_algo_id, now, orig_type=algo.order_type, stop_price=algo.trigger_price,
                               close_position=algo.close_position, working_type=algo.working_type,
                               register_id=False)
        except BinanceAPIError as exc:
            algo.status, algo.reject_reason, algo.update_time = "REJECTED", exc.msg, now
            ex.userdata.algo_update(algo)
            return
        algo.actual_order_id, algo.status = rec.order_id, "TRIGGERED"
        ex.userdata.algo_update(algo)
        if not rec.is_open:
            algo.status = "FINISHED"
            ex.userdata.algo_update(algo)

    # ------------------------------------------------------------------ time passing

    def on_tick(self, now: int) -> None:
        """Settle funding, countdowns, pending and resting fills, triggers and liquidations up to ``now``."""
        ex = self.ex
        st = ex.state
        changed = self._funding(now)
        for symbol, deadline in list(st.countdowns.items()):
            if now >= deadline:
                del st.countdowns[symbol]
                if self._cancel_symbol(symbol, now):
                    log.info("countdownCancelAll: cancelled the open orders of %s", symbol)
                changed = True
        if ex.ledger.open_orders():
            changed |= self._fill_open_orders(now)
        if any(a.status in ("NEW", "TRIGGERING", "TRIGGERED") for a in st.algo_orders):
            changed |= self._algos(now)
        if any(p.amt for p in st.positions.values()):
            changed |= self._risk(now)
        self._last_check = now
        if changed:
            ex.save()

    def _funding(self, now: int) -> bool:
        changed = False
        for t in self.ex.source.funding_times(self.ex.state.last_funding_ms, now):
            self._settle_funding(t)
            changed = True
        return changed

    def _settle_funding(self, t: int) -> dict[str, float]:
        """Funding of every open position at ``t`` (the period's rate, the price at ``t``): income rows and one
        ``ACCOUNT_UPDATE`` (reason ``FUNDING_FEE``); returns what the account paid per symbol."""
        ex = self.ex
        src = ex.source
        rates = src.funding_rates(t - 1)
        prices = src.price_at(t)
        held = {split_key(k)[0] for k, p in ex.state.positions.items() if p.amt}
        paid = ex.ledger.fund_by_symbol({s: float(rates[src.by_symbol[s].column]) for s in held},
                                        {s: float(prices[src.by_symbol[s].column]) for s in held}, t)
        for symbol, amount in paid.items():
            ex.ledger.record_income(symbol, "FUNDING_FEE", -amount, t)
        if paid:
            keys = [k for k in ex.state.positions if split_key(k)[0] in paid and ex.ledger.isolated(split_key(k)[0])]
            ex.userdata.account_update("FUNDING_FEE", keys, balance_change=-sum(paid.values()))
        return paid

    def funding_now(self, params: Params) -> dict[str, Any]:
        """Admin drill (``POST /sim/v1/funding``, loopback): a funding settlement now, exactly as at a funding
        time — so a test need not hold a position across an 8 h boundary. The regular boundaries still come."""
        now = self.ex.now()
        paid = self._settle_funding(now)
        self.ex.save()
        return {"time": now, "paid": {s: -a for s, a in sorted(paid.items())}}

    def _fill_open_orders(self, now: int) -> bool:
        ex = self.ex
        resting = ex.ledger.open_orders()
        symbols = sorted({o.symbol for o in resting})
        cols = np.array([ex.source.by_symbol[s].column for s in symbols])
        book = ex.books.compute(cols, now, levels=5)
        row_of = {s: i for i, s in enumerate(symbols)}
        changed = False
        for rec in resting:
            ins = ex.source.by_symbol[rec.symbol]
            i = row_of[rec.symbol]
            if rec.pending_at:
                if now < rec.pending_at:
                    continue
                bids, asks = book.row(i)
                fills = self._walk(asks if rec.side == "BUY" else bids, rec.remaining, None, rec.side, ins)
                fills = self._capped_for_reduce(rec, fills, ins)
                self._apply_fills(rec, ins, fills, TAKER_FEE, False, now)
                if rec.is_open:
                    self._finish(rec, "EXPIRED", now)
                rec.pending_at = 0
                changed = True
                continue
            if rec.type != "LIMIT":
                continue
            bid, ask = float(book.bid_px[i, 0]), float(book.ask_px[i, 0])
            if not ((rec.side == "BUY" and ask <= rec.price) or (rec.side == "SELL" and bid >= rec.price)):
                continue
            qty = rec.remaining if not rec.partial_ratio else min(rec.remaining,
                                                                  self._share(rec.orig_qty, rec.partial_ratio, ins))
            fills = self._capped_for_reduce(rec, [(rec.price, qty)], ins)
            if not fills:
                self._finish(rec, "EXPIRED", now)
            else:
                self._apply_fills(rec, ins, fills, MAKER_FEE, True, now)
            changed = True
        return changed

    def _capped_for_reduce(self, rec: OrderRecord, fills: list[tuple[float, float]],
                           ins: Instrument) -> list[tuple[float, float]]:
        """A reduce-only (or hedge-closing) order never fills more than the position it reduces."""
        closing = rec.position_side != "BOTH" and ((rec.position_side == "LONG") == (rec.side == "SELL"))
        if not (rec.reduce_only or closing):
            return fills
        pos = self.ex.ledger.position(rec.symbol, rec.position_side)
        reducing = pos.amt != 0 and (pos.amt > 0) != (rec.side == "BUY")
        return self._trim(fills, abs(pos.amt), ins) if reducing else []

    def _algos(self, now: int) -> bool:
        ex = self.ex
        changed = False
        live = [a for a in ex.state.algo_orders if a.status == "NEW"]
        if live:
            symbols = sorted({a.symbol for a in live})
            cols = np.array([ex.source.by_symbol[s].column for s in symbols])
            lo, hi = self._price_range(cols, self._last_check, now)
            col_of = {s: i for i, s in enumerate(symbols)}
            for algo in live:
                i = col_of[algo.symbol]
                if _triggers(algo.order_type, algo.side, algo.trigger_price, float(lo[i]), float(hi[i])):
                    self._trigger(algo, now)
                    changed = True
        for algo in ex.state.algo_orders:
            if algo.status == "TRIGGERED":
                child = next((o for o in reversed(ex.state.orders) if o.order_id == algo.actual_order_id), None)
                if child is None or not child.is_open:
                    algo.status, algo.update_time = "FINISHED", now
                    ex.userdata.algo_update(algo)
                    changed = True
        return changed

    def _price_range(self, cols: np.ndarray, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest last price printed in ``(t0, t1]`` per column (1 s resolution)."""
        src = self.ex.source
        now_px = src.price_at(t1)[cols]
        lo, hi = now_px.copy(), now_px.copy()
        first = (t0 // 1000 + 1) * 1000
        if t1 - first <= 3_600_000:
            for t in range(first, t1, 1000):
                px = src.price_at(t)[cols]
                np.minimum(lo, px, out=lo)
                np.maximum(hi, px, out=hi)
        return lo, hi

    def _risk(self, now: int) -> bool:
        """MARGIN_CALL when maintenance margin nears the margin balance; liquidation when it reaches it."""
        ex = self.ex
        ledger = ex.ledger
        marks = ex.marks(now)
        cross_maint = cross_upnl = 0.0
        isolated_hit: list[str] = []
        for key, pos in ex.state.positions.items():
            if pos.amt == 0:
                continue
            symbol, _ = split_key(key)
            mark = marks[symbol]
            upnl = pos.amt * (mark - pos.entry_price)
            maint = abs(pos.amt) * mark * MAINT_MARGIN_RATE
            if ledger.isolated(symbol):
                if pos.isolated_wallet + upnl <= maint:
                    isolated_hit.append(key)
            else:
                cross_maint += maint
                cross_upnl += upnl
        changed = False
        for key in isolated_hit:
            self._liquidate(key, now)
            changed = True
        if cross_maint > 0:
            m = ledger.margins(marks)
            balance = m["cross_wallet"] + cross_upnl
            if balance <= cross_maint:
                for key in [k for k, p in ex.state.positions.items() if p.amt and not ledger.isolated(split_key(k)[0])]:
                    self._liquidate(key, now)
                self._margin_called = False
                changed = True
            elif cross_maint >= MARGIN_CALL_RATIO * balance:
                if not self._margin_called:
                    self._margin_called = True
                    ex.userdata.margin_call(marks, m["cross_wallet"])
            elif cross_maint < 0.7 * balance:
                self._margin_called = False
        return changed

    def _liquidate(self, key: str, now: int) -> None:
        """Close a position at market (``autoclose-`` order, liquidation fee) and cancel its symbol's orders."""
        ex = self.ex
        symbol, ps = split_key(key)
        pos = ex.ledger.position(symbol, ps)
        ins = ex.source.by_symbol[symbol]
        self._cancel_symbol(symbol, now)
        side = "SELL" if pos.amt > 0 else "BUY"
        qty = abs(pos.amt)
        book = ex.books.compute(np.array([ins.column]), now, levels=5)
        bids, asks = book.row(0)
        fills = self._walk(asks if side == "BUY" else bids, qty, None, side, ins)
        order_id = ex.state.next_order_id
        ex.state.next_order_id += 1
        rec = OrderRecord(order_id=order_id, client_order_id=f"autoclose-{now}", symbol=symbol, side=side,
                          type="LIQUIDATION", time_in_force="IOC", price=0.0, orig_qty=qty, reduce_only=ps == "BOTH",
                          time=now, update_time=now, orig_type="LIQUIDATION", position_side=ps)
        ex.state.orders.append(rec)
        ex.userdata.order_update(rec, "NEW")
        self._apply_fills(rec, ins, fills, LIQUIDATION_FEE, False, now)
        ex.liquidations.append((ins, side, qty, rec.avg_price, now))
        log.warning("liquidated %s %s %g at %.8g (margin exhausted)", symbol, ps, qty, rec.avg_price)


def _triggers(order_type: str, side: str, trigger: float, lo: float, hi: float) -> bool:
    """Whether prices in [lo, hi] reach a conditional order's trigger.

    STOP / STOP_MARKET buy when the price rises to the trigger, sell when it falls to it;
    TAKE_PROFIT / TAKE_PROFIT_MARKET the other way round.
    """
    stop = order_type.startswith("STOP")
    rising = (side == "BUY") == stop
    return hi >= trigger if rising else lo <= trigger


def _wire_str(value: Any) -> str:
    """A batch item's value as a request parameter string (JSON true → "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
