"""The simulator's REST API: Binance USD-M paths, parameters, signatures, weights and errors.

Requests are parsed the way Binance parses them: parameters from the query string, and
for POST/PUT/DELETE also from an ``application/x-www-form-urlencoded`` body (the query
string wins). Signed endpoints (TRADE, USER_DATA) need the configured API key in
``X-MBX-APIKEY`` and an HMAC-SHA256 ``signature`` over the raw query string concatenated
with the raw body; a bad signature is -1022 exactly like Binance. USER_STREAM and
MARKET_DATA endpoints (listen keys, ``historicalTrades``) need the key only.

``timestamp`` is checked against recvWindow on *either* clock: the simulated one
(scaled by ``--speed``, for clients that sync with ``/fapi/v1/time`` as Binance
recommends) or the host's wall clock (stock clients stamp requests with their local
time). Outside both it is -1021.

Request weight is counted per wall minute like Binance (2,400) and reported in
``X-MBX-USED-WEIGHT-1M``; over the limit is HTTP 429 / -1003 with ``Retry-After``.
History endpoints (klines, trades, tickers, funding, taker ratio) run on a worker thread
so a large backfill never stalls the WebSocket streams. A path the venue does not have
is HTTP 404 with Binance's JSON error, never a plain-text page.

Fault injection (`dolphin.market.sim.faults`) hooks in here: ``error`` rules answer
before a request runs, ``ack`` rules after an order request ran. The admin endpoints
under ``/sim/v1/faults`` answer loopback peers only.

Every order request is stamped (wall clock, ``time.time()``) the moment its handler is
entered, before its body is read: ``GET /sim/v1/orders/received`` (loopback) lists the
latest ``RECEIVED_KEPT`` as ``{client_order_id, symbol, path, received_s}``, so a latency harness
can measure "order on the wire" at the venue rather than at the client.
``POST /sim/v1/funding`` (loopback) settles funding now, as at a funding time (a drill).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from dolphin.market.errors import BinanceAPIError, SimConfigError
from dolphin.market.limiter import depth_weight, klines_weight
from dolphin.market.signing import signed_payload, verify
from dolphin.market.sim.config import SimConfig
from dolphin.market.sim.exchange import Exchange
from dolphin.market.sim.faults import FaultRule
from dolphin.market.sim.wire import Params, err, invalid, mandatory

log = logging.getLogger("dolphin.market.sim")
RECEIVED_KEPT = 100_000

WEIGHT_LIMIT = 2400
ORDER_LIMIT_1M = 1200
ORDER_LIMIT_10S = 300

Handler = Callable[[Params], Any]
Weight = int | Callable[[Params], int]
SIGNED, KEY_ONLY, PUBLIC = "signed", "key", "public"
RAW_BODY = web.RequestKey("raw_body", str)


class _Counter:
    """Fixed wall-clock windows, like Binance's per-minute / per-10-second limits."""

    def __init__(self, length_s: int) -> None:
        self.length_s = length_s
        self.window = -1
        self.used = 0

    def add(self, amount: int, now: float) -> int:
        window = int(now // self.length_s)
        if window != self.window:
            self.window, self.used = window, 0
        self.used += amount
        return self.used

    def retry_after(self, now: float) -> int:
        return max(1, int((self.window + 1) * self.length_s - now) + 1)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=status, content_type="application/json",
                        headers=headers)


class RestApi:
    """Routes and request handling of the REST side of the simulator."""

    def __init__(self, config: SimConfig, exchange: Exchange, enforce_limits: bool = True) -> None:
        self.config = config
        self.exchange = exchange
        self.enforce_limits = enforce_limits
        self._weight = _Counter(60)
        self._orders_1m = _Counter(60)
        self._orders_10s = _Counter(10)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dolphin-sim-history")
        self.requests = 0
        self.rejected = 0
        self.not_found = 0
        self.received: deque[tuple[str, str, str, float]] = deque(maxlen=RECEIVED_KEPT)
        """(client order id, symbol, path, wall time the handler was entered) of the latest order requests."""
        self.status_extra: Callable[[], dict[str, Any]] | None = None
        self.admin_actions: dict[str, Callable[[Params], Any]] = {}
        """Admin actions the app wires in (they reach the stream hub): ``ws-drop``, ``listen-key-expire``."""

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def routes(self) -> list[web.RouteDef]:
        ex = self.exchange
        md, tr, vw, ud = ex.market_data, ex.trading, ex.views, ex.userdata
        r = self._route
        sym_or_all: Callable[[int, int], Weight] = lambda one, every: (  # noqa: E731
            lambda p: one if p.get("symbol") else every)
        batch_size: Callable[[Params], int] = lambda p: max(1, (p.get("batchOrders") or "").count("{"))  # noqa: E731
        return [
            web.get("/fapi/v1/ping", r(lambda p: {}, 1)),
            web.get("/fapi/v1/time", r(lambda p: {"serverTime": ex.now()}, 1)),
            web.get("/fapi/v1/exchangeInfo", r(lambda p: ex.exchange_info(), 1)),
            web.get("/fapi/v1/klines", r(ex.klines, lambda p: klines_weight(_limit(p, 500)), threaded=True)),
            web.get("/fapi/v1/continuousKlines", r(ex.continuous_klines, lambda p: klines_weight(_limit(p, 500)),
                                                   threaded=True)),
            web.get("/fapi/v1/markPriceKlines", r(ex.price_klines, lambda p: klines_weight(_limit(p, 500)),
                                                  threaded=True)),
            web.get("/fapi/v1/indexPriceKlines", r(lambda p: ex.price_klines(p, "pair"),
                                                   lambda p: klines_weight(_limit(p, 500)), threaded=True)),
            web.get("/fapi/v1/depth", r(ex.depth, lambda p: depth_weight(_limit(p, 500)))),
            web.get("/fapi/v1/premiumIndex", r(ex.premium_index, sym_or_all(1, 10))),
            web.get("/fapi/v1/fundingRate", r(ex.funding_history, 1, threaded=True)),
            web.get("/futures/data/takerlongshortRatio", r(ex.taker_ratio, 0, threaded=True)),
            web.get("/fapi/v1/ticker/24hr", r(md.ticker_24hr, sym_or_all(1, 40), threaded=True)),
            web.get("/fapi/v1/ticker/price", r(md.ticker_price, sym_or_all(1, 2))),
            web.get("/fapi/v2/ticker/price", r(md.ticker_price, sym_or_all(1, 2))),
            web.get("/fapi/v1/ticker/bookTicker", r(md.book_ticker, sym_or_all(2, 5))),
            web.get("/fapi/v1/aggTrades", r(md.agg_trades, 20, threaded=True)),
            web.get("/fapi/v1/trades", r(md.trades, 5, threaded=True)),
            web.get("/fapi/v1/historicalTrades", r(lambda p: md.trades(p, historical=True), 20, auth=KEY_ONLY,
                                                   threaded=True)),
            # trading
            web.post("/fapi/v1/order", r(ex.new_order, 1, auth=SIGNED, orders=1)),
            web.put("/fapi/v1/order", r(tr.modify_order, 1, auth=SIGNED, orders=1)),
            web.get("/fapi/v1/order", r(ex.query_order, 1, auth=SIGNED)),
            web.delete("/fapi/v1/order", r(ex.cancel_order, 1, auth=SIGNED)),
            web.post("/fapi/v1/batchOrders", r(tr.batch_new, 5, auth=SIGNED, orders=batch_size)),
            web.put("/fapi/v1/batchOrders", r(tr.batch_modify, 5, auth=SIGNED, orders=batch_size)),
            web.delete("/fapi/v1/batchOrders", r(tr.batch_cancel, 1, auth=SIGNED)),
            web.get("/fapi/v1/openOrder", r(tr.query_open_order, 1, auth=SIGNED)),
            web.get("/fapi/v1/openOrders", r(ex.open_orders, sym_or_all(1, 40), auth=SIGNED)),
            web.get("/fapi/v1/allOrders", r(tr.all_orders, 5, auth=SIGNED)),
            web.delete("/fapi/v1/allOpenOrders", r(ex.cancel_all, 1, auth=SIGNED)),
            web.post("/fapi/v1/countdownCancelAll", r(tr.countdown_cancel_all, 10, auth=SIGNED)),
            web.post("/fapi/v1/algoOrder", r(tr.new_algo_order, 1, auth=SIGNED, orders=1)),
            web.delete("/fapi/v1/algoOrder", r(tr.cancel_algo, 1, auth=SIGNED)),
            web.get("/fapi/v1/algoOrder", r(tr.query_algo, 1, auth=SIGNED)),
            web.get("/fapi/v1/openAlgoOrders", r(tr.open_algos, sym_or_all(1, 40), auth=SIGNED)),
            web.get("/fapi/v1/allAlgoOrders", r(tr.all_algos, 5, auth=SIGNED)),
            web.delete("/fapi/v1/algoOpenOrders", r(tr.cancel_all_algos, 1, auth=SIGNED)),
            # account
            web.get("/fapi/v2/account", r(lambda p: ex.account(2), 5, auth=SIGNED)),
            web.get("/fapi/v3/account", r(lambda p: ex.account(3), 5, auth=SIGNED)),
            web.get("/fapi/v2/positionRisk", r(lambda p: ex.position_risk(p, 2), 5, auth=SIGNED)),
            web.get("/fapi/v3/positionRisk", r(lambda p: ex.position_risk(p, 3), 5, auth=SIGNED)),
            web.get("/fapi/v2/balance", r(vw.balance, 5, auth=SIGNED)),
            web.get("/fapi/v3/balance", r(vw.balance, 5, auth=SIGNED)),
            web.post("/fapi/v1/leverage", r(ex.change_leverage, 1, auth=SIGNED)),
            web.post("/fapi/v1/marginType", r(vw.change_margin_type, 1, auth=SIGNED)),
            web.get("/fapi/v1/positionSide/dual", r(vw.position_mode, 30, auth=SIGNED)),
            web.post("/fapi/v1/positionSide/dual", r(vw.change_position_mode, 1, auth=SIGNED)),
            web.get("/fapi/v1/multiAssetsMargin", r(vw.multi_assets, 30, auth=SIGNED)),
            web.get("/fapi/v1/accountConfig", r(vw.account_config, 5, auth=SIGNED)),
            web.get("/fapi/v1/symbolConfig", r(vw.symbol_config, 5, auth=SIGNED)),
            web.get("/fapi/v1/leverageBracket", r(vw.leverage_bracket, 1, auth=SIGNED)),
            web.get("/fapi/v1/commissionRate", r(vw.commission_rate, 20, auth=SIGNED)),
            web.get("/fapi/v1/rateLimit/order", r(vw.order_rate_limit, 1, auth=SIGNED)),
            web.get("/fapi/v1/userTrades", r(vw.user_trades, 5, auth=SIGNED)),
            web.get("/fapi/v1/income", r(vw.income, 30, auth=SIGNED)),
            web.get("/fapi/v1/forceOrders", r(vw.force_orders, sym_or_all(20, 50), auth=SIGNED)),
            web.get("/sapi/v1/capital/config/getall", r(vw.wallet_coins, 10, auth=SIGNED)),
            web.get("/sapi/v1/margin/allPairs", r(lambda p: [], 1, auth=KEY_ONLY)),  # no spot margin here
            # user-data stream
            web.post("/fapi/v1/listenKey", r(ud.create, 1, auth=KEY_ONLY)),
            web.put("/fapi/v1/listenKey", r(ud.keepalive, 1, auth=KEY_ONLY)),
            web.delete("/fapi/v1/listenKey", r(ud.close, 1, auth=KEY_ONLY)),
            # other venues' external factors, for the ExF daemon (dolphin.market.sim.external)
            web.get("/api/v2/public/get_volatility_index_data", self._foreign(ex.external.volatility_index)),
            web.get("/fng/", self._foreign(ex.external.fear_and_greed)),
            web.get("/fng", self._foreign(ex.external.fear_and_greed)),
            # simulator extensions
            web.get("/sim/v1/status", self._status),
            web.get("/sim/v1/shocks", self._admin(lambda p: ex.external.describe_shocks())),
            web.post("/sim/v1/shocks", self._admin(ex.external.add_shock)),
            web.delete("/sim/v1/shocks", self._admin(lambda p: {"cleared": ex.external.shocks.clear()})),
            web.get("/sim/v1/orders/received", self._admin(lambda p: self.received_orders())),
            web.post("/sim/v1/funding", self._admin(tr.funding_now)),
            web.get("/sim/v1/faults", self._admin(lambda p: ex.faults.describe())),
            web.post("/sim/v1/faults", self._admin_add),
            web.delete("/sim/v1/faults", self._admin(lambda p: {"cleared": ex.faults.clear()})),
            web.post("/sim/v1/faults/ws-drop", self._admin(lambda p: self._action("ws-drop", p))),
            web.post("/sim/v1/faults/listen-key-expire", self._admin(lambda p: self._action("listen-key-expire", p))),
        ]

    async def not_found_handler(self, request: web.Request) -> web.Response:
        """Any path or method the venue does not serve: HTTP 404 with Binance's JSON error."""
        self.not_found += 1
        return _json({"code": -5000, "msg": f"Path {request.path}, Method {request.method} is invalid"}, 404)

    def _route(self, handler: Handler, weight: Weight, *, auth: str = PUBLIC, orders: Weight = 0,
               threaded: bool = False) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            entered = time.time()
            self.requests += 1
            headers: dict[str, str] = {}
            faults = self.exchange.faults
            try:
                params = await self._params(request)
                now = time.time()
                used = self._weight.add(weight(params) if callable(weight) else weight, now)
                headers["X-MBX-USED-WEIGHT-1M"] = str(used)
                n_orders = orders(params) if callable(orders) else orders
                if n_orders:
                    self.received.append((params.get("newClientOrderId", ""), params.get("symbol", ""), request.path,
                                          entered))
                    headers["X-MBX-ORDER-COUNT-1M"] = str(self._orders_1m.add(n_orders, now))
                    headers["X-MBX-ORDER-COUNT-10S"] = str(self._orders_10s.add(n_orders, now))
                if self.enforce_limits:
                    self._check_limits(now, headers, n_orders)
                rule = faults.take("error", request.method, request.path)
                if rule is not None:
                    return self._fault_response(rule, headers, now)
                if auth != PUBLIC:
                    self._authenticate(request, params, signed=auth == SIGNED)
                if threaded:
                    body = await asyncio.get_running_loop().run_in_executor(self._pool, handler, params)
                else:
                    body = handler(params)
                ack = faults.take("ack", request.method, request.path) if n_orders else None
                if ack is not None:
                    return await self._ack_fault(ack, request, body, headers)
                garbled = faults.take("malformed", request.method, request.path)
                if garbled is not None:
                    return web.Response(body=garbled.corrupt(msgspec.json.encode(body)),
                                        content_type="application/json", headers=headers)
                return _json(body, headers=headers)
            except BinanceAPIError as exc:
                self.rejected += 1
                return _json(exc.payload(), exc.status, headers)
        return handle

    def _foreign(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Another venue's public endpoint (Deribit, alternative.me): no Binance weight or key, its own
        error shapes; the same ``error`` and ``malformed`` faults apply."""
        from dolphin.market.sim.external import ForeignApiError, foreign_error_body

        async def handle(request: web.Request) -> web.StreamResponse:
            self.requests += 1
            faults = self.exchange.faults
            rule = faults.take("error", request.method, request.path)
            if rule is not None:
                body = foreign_error_body(request.path, rule.status, rule.msg)
                headers = {"Retry-After": "1"} if rule.status == 429 else None
                if rule.code == 0:
                    return web.Response(text=f"<html><body><h1>{rule.status}</h1></body></html>", status=rule.status,
                                        content_type="text/html")
                return _json(body, rule.status, headers)
            params: Params = dict(request.rel_url.query)
            try:
                result = await asyncio.get_running_loop().run_in_executor(self._pool, handler, params)
            except ForeignApiError as exc:
                self.rejected += 1
                return _json(exc.body, exc.status)
            garbled = faults.take("malformed", request.method, request.path)
            if garbled is not None:
                return web.Response(body=garbled.corrupt(msgspec.json.encode(result)),
                                    content_type="application/json")
            return _json(result)
        return handle

    @staticmethod
    def _fault_response(rule: FaultRule, headers: dict[str, str], now: float) -> web.Response:
        if rule.status == 429 or rule.code in (-1003, -1015):
            headers["Retry-After"] = "1"
        if rule.code == 0:  # a proxy in front of the venue: not JSON at all
            return web.Response(text=f"<html><body><h1>{rule.status} {rule.msg or 'Bad Gateway'}</h1></body></html>",
                                status=rule.status, content_type="text/html", headers=headers)
        return _json({"code": rule.code, "msg": rule.msg}, rule.status, headers)

    async def _ack_fault(self, rule: FaultRule, request: web.Request, body: Any,
                         headers: dict[str, str]) -> web.StreamResponse:
        """The order was executed; its acknowledgement is delayed, lost, or of unknown status."""
        if rule.mode == "delay":
            await asyncio.sleep(rule.delay_ms / 1000.0)
            return _json(body, headers=headers)
        if rule.mode == "unknown":
            return _json({"code": -1007, "msg": rule.msg}, 503, headers)
        log.info("fault: dropping the acknowledgement of %s %s (the order was placed)", request.method, request.path)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=503)

    def _check_limits(self, now: float, headers: dict[str, str], orders: int) -> None:
        if self._weight.used > WEIGHT_LIMIT:
            headers["Retry-After"] = str(self._weight.retry_after(now))
            raise err(-1003, f"Too many requests; current limit is {WEIGHT_LIMIT} requests per minute. Please use "
                             "the websocket for live updates to avoid polling the API.", 429)
        if orders and (self._orders_1m.used > ORDER_LIMIT_1M or self._orders_10s.used > ORDER_LIMIT_10S):
            window = self._orders_10s if self._orders_10s.used > ORDER_LIMIT_10S else self._orders_1m
            headers["Retry-After"] = str(window.retry_after(now))
            raise err(-1015, "Too many new orders.", 429)

    @staticmethod
    async def _params(request: web.Request) -> Params:
        params: Params = {}
        if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
            body = await request.text()
            request[RAW_BODY] = body
            if body and request.content_type in ("application/x-www-form-urlencoded", "", "text/plain",
                                                 "application/octet-stream", "application/json"):
                try:
                    params.update(parse_qsl(body, keep_blank_values=True, strict_parsing=False))
                except ValueError:
                    raise err(-1100, "Illegal characters found in a parameter.") from None
        params.update(request.rel_url.query)
        return params

    def _authenticate(self, request: web.Request, params: Params, signed: bool = True) -> None:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise err(-2014, "API-key format invalid.", 401)
        if key != self.config.api_key:
            raise err(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        if not signed:
            return
        if not params.get("timestamp"):
            raise mandatory("timestamp")
        payload, signature = signed_payload(request.rel_url.raw_query_string, request.get(RAW_BODY, ""))
        if not verify(self.config.api_secret, payload, signature):
            raise err(-1022, "Signature for this request is not valid.")
        try:
            stamp = int(params["timestamp"])
            window = int(params.get("recvWindow") or 5000)
        except ValueError:
            raise invalid("timestamp") from None
        if not 0 < window <= 60_000:
            raise invalid("recvWindow")
        speed = self.config.speed
        wall = int(time.time() * 1000)
        sim = self.exchange.now()
        fits_wall = stamp < wall + 1000 and wall - stamp <= window
        fits_sim = stamp < sim + 1000 * max(1.0, speed) and sim - stamp <= window * max(1.0, speed)
        if not (fits_wall or fits_sim):
            if stamp >= wall + 1000 and stamp >= sim + 1000 * max(1.0, speed):
                raise err(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
            raise err(-1021, "Timestamp for this request is outside of the recvWindow.")

    async def _status(self, request: web.Request) -> web.Response:
        ex = self.exchange
        body: dict[str, Any] = {"serverTime": ex.now(), "speed": self.config.speed, "source": ex.source.describe(),
                                "symbols": len(ex.source.instruments), "restRequests": self.requests,
                                "restRejected": self.rejected, "restNotFound": self.not_found,
                                "orders": ex.order_count, "usedWeight1m": self._weight.used,
                                "userEvents": ex.userdata.events, "listenKeysExpired": ex.userdata.expired,
                                "faults": ex.faults.describe()}
        if self.status_extra is not None:
            body.update(self.status_extra())
        return _json(body)

    def received_orders(self) -> list[dict[str, Any]]:
        return [{"client_order_id": cid, "symbol": symbol, "path": path, "received_s": at}
                for cid, symbol, path, at in self.received]

    # -- admin (loopback only) ----------------------------------------------------------

    @staticmethod
    def _loopback(request: web.Request) -> bool:
        peer = request.remote or ""
        return peer.startswith("127.") or peer in ("::1", "localhost")

    def _admin(self, action: Callable[[Params], Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            if not self._loopback(request):
                return _json({"code": -2015, "msg": "The simulator's admin endpoint answers loopback only."}, 403)
            try:
                return _json(action(dict(request.rel_url.query)))
            except (BinanceAPIError, SimConfigError, ValueError) as exc:
                return _json({"code": -1130, "msg": str(exc)}, 400)
        return handle

    async def _admin_add(self, request: web.Request) -> web.Response:
        """``POST /sim/v1/faults``: a JSON rule body, or ``?spec=kind:key=value,...``."""
        from dolphin.market.sim.faults import parse_spec

        if not self._loopback(request):
            return _json({"code": -2015, "msg": "The simulator's admin endpoint answers loopback only."}, 403)
        try:
            spec = request.rel_url.query.get("spec")
            if spec:
                rule = parse_spec(spec)
            else:
                rule = msgspec.json.decode(await request.read(), type=FaultRule)
            added = self.exchange.faults.add(rule)
        except (SimConfigError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _json({"code": -1130, "msg": f"bad fault rule: {exc}"}, 400)
        log.warning("fault injected: %s", msgspec.to_builtins(added))
        return _json({"rule": msgspec.to_builtins(added)})

    def _action(self, name: str, params: Params) -> Any:
        action = self.admin_actions.get(name)
        if action is None:
            raise err(-1130, f"no admin action {name!r}")
        return action(params)


def _limit(params: Params, default: int) -> int:
    try:
        return int(params.get("limit") or default)
    except ValueError:
        return default
