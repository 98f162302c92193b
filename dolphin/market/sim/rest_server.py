"""The simulator's REST API: Binance USD-M paths, parameters, signatures, weights and errors.

Requests are parsed the way Binance parses them: parameters from the query string, and
for POST/PUT/DELETE also from an ``application/x-www-form-urlencoded`` body (the query
string wins). Signed endpoints need the configured API key in ``X-MBX-APIKEY`` and an
HMAC-SHA256 ``signature`` over the raw query string concatenated with the raw body;
a bad signature is -1022 exactly like Binance.

``timestamp`` is checked against recvWindow on *either* clock: the simulated one
(scaled by ``--speed``, for clients that sync with ``/fapi/v1/time`` as Binance
recommends) or the host's wall clock (stock clients stamp requests with their local
time). Outside both it is -1021.

Request weight is counted per wall minute like Binance (2,400) and reported in
``X-MBX-USED-WEIGHT-1M``; over the limit is HTTP 429 / -1003 with ``Retry-After``.
History endpoints (klines, funding, taker ratio) run on a worker thread so a large
backfill never stalls the WebSocket streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from dolphin.market.errors import BinanceAPIError
from dolphin.market.limiter import depth_weight, klines_weight
from dolphin.market.signing import signed_payload, verify
from dolphin.market.sim.config import SimConfig
from dolphin.market.sim.exchange import Exchange, err, invalid, mandatory

log = logging.getLogger("dolphin.market.sim")

WEIGHT_LIMIT = 2400
ORDER_LIMIT_1M = 1200
ORDER_LIMIT_10S = 300

Params = dict[str, str]
Handler = Callable[[Params], Any]


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
        self.status_extra: Callable[[], dict[str, Any]] | None = None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def routes(self) -> list[web.RouteDef]:
        ex = self.exchange
        r = self._route
        return [
            web.get("/fapi/v1/ping", r(lambda p: {}, 1)),
            web.get("/fapi/v1/time", r(lambda p: {"serverTime": ex.now()}, 1)),
            web.get("/fapi/v1/exchangeInfo", r(lambda p: ex.exchange_info(), 1)),
            web.get("/fapi/v1/klines", r(ex.klines, lambda p: klines_weight(_limit(p, 500)), threaded=True)),
            web.get("/fapi/v1/depth", r(ex.depth, lambda p: depth_weight(_limit(p, 500)))),
            web.get("/fapi/v1/premiumIndex", r(ex.premium_index, lambda p: 1 if p.get("symbol") else 10)),
            web.get("/fapi/v1/fundingRate", r(ex.funding_history, 1, threaded=True)),
            web.get("/futures/data/takerlongshortRatio", r(ex.taker_ratio, 0, threaded=True)),
            web.post("/fapi/v1/order", r(ex.new_order, 1, signed=True, orders=1)),
            web.get("/fapi/v1/order", r(ex.query_order, 1, signed=True)),
            web.delete("/fapi/v1/order", r(ex.cancel_order, 1, signed=True)),
            web.delete("/fapi/v1/allOpenOrders", r(ex.cancel_all, 1, signed=True)),
            web.get("/fapi/v1/openOrders", r(ex.open_orders, lambda p: 1 if p.get("symbol") else 40, signed=True)),
            web.get("/fapi/v2/account", r(lambda p: ex.account(2), 5, signed=True)),
            web.get("/fapi/v3/account", r(lambda p: ex.account(3), 5, signed=True)),
            web.get("/fapi/v2/positionRisk", r(lambda p: ex.position_risk(p, 2), 5, signed=True)),
            web.get("/fapi/v3/positionRisk", r(lambda p: ex.position_risk(p, 3), 5, signed=True)),
            web.post("/fapi/v1/leverage", r(ex.change_leverage, 1, signed=True)),
            web.get("/sim/v1/status", self._status),
        ]

    def _route(self, handler: Handler, weight: int | Callable[[Params], int], *, signed: bool = False,
               orders: int = 0, threaded: bool = False) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            self.requests += 1
            headers: dict[str, str] = {}
            try:
                params = await self._params(request)
                now = time.time()
                used = self._weight.add(weight(params) if callable(weight) else weight, now)
                headers["X-MBX-USED-WEIGHT-1M"] = str(used)
                if orders:
                    headers["X-MBX-ORDER-COUNT-1M"] = str(self._orders_1m.add(orders, now))
                    headers["X-MBX-ORDER-COUNT-10S"] = str(self._orders_10s.add(orders, now))
                if self.enforce_limits:
                    self._check_limits(now, headers, orders)
                if signed:
                    self._authenticate(request, params)
                if threaded:
                    body = await asyncio.get_running_loop().run_in_executor(self._pool, handler, params)
                else:
                    body = handler(params)
                return web.Response(body=msgspec.json.encode(body), content_type="application/json",
                                    headers=headers)
            except BinanceAPIError as exc:
                self.rejected += 1
                return web.Response(body=msgspec.json.encode(exc.payload()), status=exc.status,
                                    content_type="application/json", headers=headers)
        return handle

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
            request["raw_body"] = body
            if body and request.content_type in ("application/x-www-form-urlencoded", "", "text/plain",
                                                 "application/octet-stream", "application/json"):
                try:
                    params.update(parse_qsl(body, keep_blank_values=True, strict_parsing=False))
                except ValueError:
                    raise err(-1100, "Illegal characters found in a parameter.") from None
        params.update(request.rel_url.query)
        return params

    def _authenticate(self, request: web.Request, params: Params) -> None:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise err(-2014, "API-key format invalid.", 401)
        if key != self.config.api_key:
            raise err(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        if not params.get("timestamp"):
            raise mandatory("timestamp")
        payload, signature = signed_payload(request.rel_url.raw_query_string, request.get("raw_body", ""))
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
                                "restRejected": self.rejected, "orders": ex.order_count,
                                "usedWeight1m": self._weight.used}
        if self.status_extra is not None:
            body.update(self.status_extra())
        return web.Response(body=msgspec.json.encode(body), content_type="application/json")


def _limit(params: Params, default: int) -> int:
    try:
        return int(params.get("limit") or default)
    except ValueError:
        return default
