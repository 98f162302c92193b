"""The venue: Binance USD-M semantics over a price source — market data, and the facade of the rest.

`Exchange` answers the market-data endpoints (exchange info, klines and their mark/index/
continuous variants, depth, premium index, funding, taker ratio) from request parameters
(strings, as they arrive) to Binance-shaped JSON objects (numbers as strings where
Binance sends strings), and owns the parts every other module shares: the clock, the
books, the tape, the account ledger, the user-data publisher and the fault switches.

Trading (orders, algo orders, matching, funding, liquidation) lives in
`dolphin.market.sim.trading`, account views in `dolphin.market.sim.views`, tickers and
trade history in `dolphin.market.sim.market_data`; `Exchange` forwards to them so one
object serves the REST layer. Bad requests raise the typed `BinanceAPIError` with
Binance's own code and message; the HTTP layer only serialises them.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from typing import Any

import numpy as np

from dolphin.market.sim.account import STATE_VERSION, AccountState, AccountStore, Ledger, OrderRecord, round_to
from dolphin.market.sim.books import MAX_LEVELS, BookModel
from dolphin.market.sim.clock import SimClock
from dolphin.market.sim.config import SimConfig
from dolphin.market.sim.faults import Faults
from dolphin.market.sim.source import Instrument, MarketSource
from dolphin.market.sim.tape import KlineRow, Tape
from dolphin.market.sim.wire import (  # noqa: F401 - re-exported for the modules that import them from here
    MAX_NUM_ALGO_ORDERS,
    MAX_NUM_ORDERS,
    ORDER_TYPES,
    TIME_IN_FORCE,
    Params,
    err,
    fnum,
    int_param,
    invalid,
    limit_param,
    mandatory,
    max_notional,
)

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
CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_TIFS = TIME_IN_FORCE
assert DEPTH_LIMITS[-1] <= MAX_LEVELS


class Exchange:
    """Market data, matching and the account, at the simulator clock's time."""

    def __init__(self, config: SimConfig, source: MarketSource, clock: SimClock, store: AccountStore,
                 faults: Faults | None = None) -> None:
        from dolphin.market.sim.market_data import MarketData
        from dolphin.market.sim.trading import Trading
        from dolphin.market.sim.userdata import UserData
        from dolphin.market.sim.views import Views

        self.config = config
        self.source = source
        self.clock = clock
        self.books = BookModel(config.seed, source)
        self.tape = Tape(config.seed, source)
        self.store = store
        self.faults = faults if faults is not None else Faults()
        self.intervals: dict[str, int] = {}
        if source.bar_seconds < 60:
            self.intervals[f"{source.bar_seconds}s"] = source.bar_ms
        for name, ms in STANDARD_INTERVALS:
            if ms >= source.bar_ms and ms % source.bar_ms == 0:
                self.intervals[name] = ms
        state = store.load()
        fresh = state is None
        if state is None:
            state = AccountState(version=STATE_VERSION, wallet_balance=config.balance, next_order_id=1,
                                 last_funding_ms=clock.now_ms(), update_time=clock.now_ms())  # the deposit
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
        self.order_count = 0
        self.liquidations: deque[tuple[Instrument, str, float, float, int]] = deque(maxlen=1000)
        """Forced closes of our account (instrument, side, qty, price, time) for the forceOrder streams."""
        from dolphin.market.sim.external import ExternalModel

        self.external = ExternalModel(source, clock.now_ms)
        """Deribit DVOL and Fear & Greed of this market (`dolphin.market.sim.external`)."""
        self.userdata = UserData(self)
        self.trading = Trading(self)
        self.views = Views(self)
        self.market_data = MarketData(self)
        if fresh:
            self.ledger.record_income("", "TRANSFER", config.balance, clock.now_ms(), info="TRANSFER")
            store.save(state)

    # ------------------------------------------------------------------ helpers

    @property
    def state(self) -> AccountState:
        return self.ledger.state

    def now(self) -> int:
        return self.clock.now_ms()

    def instrument(self, params: Params, required: bool = True) -> Instrument | None:
        name = params.get("symbol")
        if not name:
            if required:
                raise mandatory("symbol")
            return None
        ins = self.source.by_symbol.get(name.upper())
        if ins is None:
            raise err(-1121, "Invalid symbol.")
        return ins

    def require_instrument(self, params: Params) -> Instrument:
        ins = self.instrument(params)
        assert ins is not None
        return ins

    def marks(self, now: int) -> dict[str, float]:
        prices = self.source.price_at(now)
        return {i.symbol: float(prices[i.column]) for i in self.source.instruments}

    def mark_of(self, ins: Instrument, now: int) -> float:
        return float(self.source.price_at(now)[ins.column])

    def save(self) -> None:
        self.ledger.prune_orders()
        self.state.used_client_ids = sorted(self._client_ids)
        self.store.save(self.state)

    @staticmethod
    def _int(params: Params, name: str, default: int | None = None) -> int | None:
        return int_param(params, name, default)

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
                    {"filterType": "MAX_NUM_ORDERS", "limit": MAX_NUM_ORDERS},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": MAX_NUM_ALGO_ORDERS},
                    {"filterType": "MIN_NOTIONAL", "notional": f"{MIN_NOTIONAL:g}"},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": f"{PERCENT_PRICE_UP:.4f}",
                     "multiplierDown": f"{PERCENT_PRICE_DOWN:.4f}", "multiplierDecimal": "4"},
                ],
                "orderTypes": list(ORDER_TYPES), "timeInForce": list(_TIFS),
                "liquidationFee": "0.012500", "marketTakeBound": "0.05"})
        return {"timezone": "UTC", "serverTime": self.now(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300}],
                "exchangeFilters": [],
                "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": 0}],
                "symbols": symbols}

    def interval_ms(self, params: Params, name: str = "interval") -> int:
        value = params.get(name)
        if not value:
            raise mandatory(name)
        ms = self.intervals.get(value)
        if ms is None:
            raise err(-1120, "Invalid interval.")
        return ms

    def _kline_rows(self, ins: Instrument, params: Params) -> list[KlineRow]:
        iv = self.interval_ms(params)
        limit = limit_param(params, 500, 1500)
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        if start is not None and end is not None and start > end:
            raise err(-1023, "Start time is greater than end time.")
        return self.tape.klines(ins.column, iv, start, end, limit, self.now())

    def klines(self, params: Params) -> list[list[Any]]:
        ins = self.require_instrument(params)
        return [self.kline_array(ins, r) for r in self._kline_rows(ins, params)]

    def continuous_klines(self, params: Params) -> list[list[Any]]:
        """``/fapi/v1/continuousKlines``: the perpetual's klines (``pair`` + ``contractType`` PERPETUAL)."""
        pair = params.get("pair")
        if not pair:
            raise mandatory("pair")
        contract = params.get("contractType")
        if not contract:
            raise mandatory("contractType")
        if contract.upper() != "PERPETUAL":
            raise invalid("contractType")
        ins = self.require_instrument({"symbol": pair})
        return [self.kline_array(ins, r) for r in self._kline_rows(ins, params)]

    def price_klines(self, params: Params, key: str = "symbol") -> list[list[Any]]:
        """``markPriceKlines`` (``symbol``) / ``indexPriceKlines`` (``pair``): price rows, volumes "0".

        Mark = index = last price in the simulator, so the prices are the klines' own.
        """
        name = params.get(key)
        if not name:
            raise mandatory(key)
        ins = self.require_instrument({"symbol": name})
        d = ins.price_decimals
        secs = max(1, self.source.bar_seconds)
        return [[r.open_time, fnum(r.open, d), fnum(r.high, d), fnum(r.low, d), fnum(r.close, d), "0",
                 r.close_time, "0", max(1, (r.close_time + 1 - r.open_time) // (secs * 1000)), "0", "0", "0"]
                for r in self._kline_rows(ins, params)]

    @staticmethod
    def kline_array(ins: Instrument, r: KlineRow) -> list[Any]:
        d, vd = ins.price_decimals, ins.vol_decimals
        return [r.open_time, fnum(r.open, d), fnum(r.high, d), fnum(r.low, d), fnum(r.close, d),
                fnum(r.volume, vd), r.close_time, fnum(r.quote_volume, 8), r.trades, fnum(r.taker_buy_volume, vd),
                fnum(r.taker_buy_quote, 8), "0"]

    def depth(self, params: Params) -> dict[str, Any]:
        ins = self.require_instrument(params)
        limit = self._int(params, "limit", 500)
        if limit not in DEPTH_LIMITS:
            raise err(-4021, "Invalid depth limit.")
        now = self.now()
        book = self.books.compute(np.array([ins.column]), now, levels=limit)
        d, qd = ins.price_decimals, max(0, ins.qty_decimals)
        bids, asks = book.row(0)
        return {"lastUpdateId": book.update_id, "E": now, "T": book.t_ms,
                "bids": [[fnum(p, d), fnum(q, qd)] for p, q in bids if q > 0],
                "asks": [[fnum(p, d), fnum(q, qd)] for p, q in asks if q > 0]}

    def premium_index(self, params: Params) -> dict[str, Any] | list[dict[str, Any]]:
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

    def funding_history(self, params: Params) -> list[dict[str, Any]]:
        ins = self.instrument(params, required=False)
        limit = limit_param(params, 100, 1000)
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

    def taker_ratio(self, params: Params) -> list[dict[str, Any]]:
        ins = self.require_instrument(params)
        period_name = params.get("period")
        if not period_name:
            raise mandatory("period")
        period = TAKER_PERIODS.get(period_name)
        if period is None or period < self.source.bar_ms:
            raise invalid("period")
        limit = limit_param(params, 30, 500)
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

    # ------------------------------------------------------------------ the rest, by delegation

    def new_order(self, params: Params) -> dict[str, Any]:
        return self.trading.new_order(params)

    def query_order(self, params: Params) -> dict[str, Any]:
        return self.trading.query_order(params)

    def cancel_order(self, params: Params) -> dict[str, Any]:
        return self.trading.cancel_order(params)

    def cancel_all(self, params: Params) -> dict[str, Any]:
        return self.trading.cancel_all(params)

    def open_orders(self, params: Params) -> list[dict[str, Any]]:
        return self.trading.open_orders(params)

    def order_view(self, rec: OrderRecord, *, with_time: bool = False, with_cum_qty: bool = False,
                   with_avg: bool = True) -> dict[str, Any]:
        return self.trading.order_view(rec, with_time=with_time, with_cum_qty=with_cum_qty, with_avg=with_avg)

    def change_leverage(self, params: Params) -> dict[str, Any]:
        return self.views.change_leverage(params)

    def account(self, version: int = 2) -> dict[str, Any]:
        return self.views.account(version)

    def position_risk(self, params: Params, version: int = 2) -> list[dict[str, Any]]:
        return self.views.position_risk(params, version)

    def on_tick(self, now: int) -> None:
        """Let time pass on the account: funding, resting fills, triggers, liquidations, listen keys."""
        self.trading.on_tick(now)
        self.userdata.on_tick()
