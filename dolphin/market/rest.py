"""`BinanceRest`: the asyncio REST client for Binance USD-M futures (and the simulator).

Why aiohttp: it is the mature asyncio HTTP stack with both a client and a server, so the
adapter and the simulator exchange share one dependency, one event-loop model and one
set of timeouts/keep-alive semantics; its client keeps a connection pool per session
and its C-accelerated HTTP parser keeps request overhead low.

Every method returns typed structs (`dolphin.market.payloads`). Every request first
draws its weight from the venue's shared `RequestLimiter`; the server's used-weight
header is folded back in. Signed requests carry ``timestamp`` (from a `ServerClock`
synced with ``/fapi/v1/time``), ``recvWindow`` and an HMAC-SHA256 ``signature``; a -1021
(timestamp outside recvWindow) re-syncs the clock and retries once. Binance error bodies
become typed `BinanceAPIError` subclasses; transport failures and 5xx become
`MarketUnavailableError` after bounded retries with backoff (GETs only, plus order
placement, which is made idempotent by a client order id: if a retried order turns out
to have landed the first time, the venue answers -4116 and the client returns the
existing order instead).

Credentials come only from arguments or the environment (``DOLPHIN_BINANCE_API_KEY`` /
``DOLPHIN_BINANCE_API_SECRET``) and are never logged or put in error messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, TypeVar

import aiohttp
import msgspec

from dolphin.market import payloads as P
from dolphin.market.errors import (
    BinanceAPIError,
    CredentialsMissingError,
    DuplicateClientOrderIdError,
    MarketUnavailableError,
    RateLimitError,
    TimestampError,
    error_for_code,
)
from dolphin.market.limiter import RequestLimiter, depth_weight, klines_weight, shared_limiter
from dolphin.market.signing import ServerClock, encode_params, sign
from dolphin.market.urls import check_signing_url, credentials_from_env, normalize_base

log = logging.getLogger("dolphin.market.rest")

T = TypeVar("T")

INTERVAL_MS: dict[str, int] = {
    "1s": 1_000, "5s": 5_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}
"""Kline intervals and their length. ``5s`` (and ``1s``) exist only on the simulator."""

MAX_KLINES_PER_REQUEST = 1500
_RETRY_STATUSES = frozenset({500, 502, 503, 504})


class AggTradeRow(msgspec.Struct, frozen=True):
    """One row of ``GET /fapi/v1/aggTrades`` (the stream's `P.AggTrade` without ``e``/``E``/``s``).

    Added for the scanner's Binance backfill; belongs in `dolphin.market.payloads`.
    """

    agg_id: int = msgspec.field(name="a")
    price: float = msgspec.field(name="p")
    qty: float = msgspec.field(name="q")
    first_trade_id: int = msgspec.field(name="f")
    last_trade_id: int = msgspec.field(name="l")
    trade_time: int = msgspec.field(name="T")
    buyer_is_maker: bool = msgspec.field(name="m")


def _interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"unknown kline interval {interval!r} (known: {', '.join(INTERVAL_MS)})") from None


class BinanceRest:
    """Async client for the USD-M REST API at ``base_url`` (simulator, testnet or mainnet).

    Use as ``async with BinanceRest(url) as rest: ...`` or call `close()`. Signed methods
    need ``api_key`` and ``api_secret`` (or `from_env`). With credentials, only loopback
    and Binance testnet hosts are accepted unless ``allow_mainnet=True``
    (`dolphin.market.urls.check_signing_url`).
    """

    def __init__(self, base_url: str, api_key: str | None = None, api_secret: str | None = None, *,
                 recv_window_ms: int = 5000, timeout_s: float = 10.0, max_retries: int = 2,
                 limiter: RequestLimiter | None = None, session: aiohttp.ClientSession | None = None,
                 allow_mainnet: bool = False, time_sync_interval_s: float = 300.0) -> None:
        self.base_url = normalize_base(base_url, kind="rest")
        if api_key and api_secret:
            check_signing_url(self.base_url, allow_mainnet)
        if not 1 <= recv_window_ms <= 60_000:
            raise ValueError(f"recv_window_ms must be in [1, 60000], got {recv_window_ms}")
        self._key = api_key or None
        self._secret = api_secret or None
        self.recv_window_ms = int(recv_window_ms)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_retries = max(0, int(max_retries))
        self.limiter = limiter if limiter is not None else shared_limiter(self.base_url)
        self._session = session
        self._own_session = session is None
        self.clock = ServerClock()
        self._real_time = False  # the venue has no simulator status: its clock runs at wall speed
        self.time_sync_interval_s = time_sync_interval_s
        self._sync_lock: asyncio.Lock | None = None

    @classmethod
    def from_env(cls, base_url: str, **kwargs: Any) -> BinanceRest:
        """A client with credentials from ``DOLPHIN_BINANCE_API_KEY`` / ``DOLPHIN_BINANCE_API_SECRET``."""
        key, secret = credentials_from_env()
        return cls(base_url, key, secret, **kwargs)

    def __repr__(self) -> str:  # never shows credentials
        return f"BinanceRest({self.base_url!r}, signed={self.has_credentials})"

    @property
    def has_credentials(self) -> bool:
        return bool(self._key and self._secret)

    async def __aenter__(self) -> BinanceRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers={"User-Agent": "dolphin-market/1"})
            self._own_session = True
        return self._session

    # ------------------------------------------------------------------ transport

    async def _request(self, method: str, path: str, params: dict[str, Any] | None = None, *,
                       weight: int = 1, orders: int = 0, signed: bool = False, retry: bool | None = None,
                       key_only: bool = False) -> bytes:
        """Send one request and return the raw body of a 2xx answer (typed errors otherwise).

        ``key_only``: the endpoint needs the API key header but no signature (USER_STREAM).
        """
        params = {k: v for k, v in (params or {}).items() if v is not None}
        retries = self.max_retries if (retry if retry is not None else method == "GET") else 0
        resynced = False
        attempt = 0
        while True:
            await self.limiter.acquire(weight, orders)
            headers: dict[str, str] = {}
            query = params
            if signed:
                if not self.has_credentials:
                    raise CredentialsMissingError(
                        f"{method} {path} is a signed endpoint: "
                        "set DOLPHIN_BINANCE_API_KEY and DOLPHIN_BINANCE_API_SECRET")
                await self._ensure_time()
                query = dict(params)
                query["recvWindow"] = self.recv_window_ms
                query["timestamp"] = self.clock.now_ms()
                text = encode_params(query)
                query_string = f"{text}&signature={sign(self._secret or '', text)}"
                headers["X-MBX-APIKEY"] = self._key or ""
            elif self._key:
                headers["X-MBX-APIKEY"] = self._key
                query_string = encode_params(query)
            elif key_only:
                raise CredentialsMissingError(f"{method} {path} needs an API key: set DOLPHIN_BINANCE_API_KEY")
            else:
                query_string = encode_params(query)
            url = f"{self.base_url}{path}" + (f"?{query_string}" if query_string else "")
            try:
                async with self._http().request(method, url, headers=headers) as resp:
                    body = await resp.read()
                    self._observe_limits(resp)
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if attempt < retries:
                    attempt += 1
                    await asyncio.sleep(min(0.25 * 2**attempt, 5.0))
                    continue
                raise MarketUnavailableError(f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc}") from None
            if status < 400:
                return body
            if status in _RETRY_STATUSES and attempt < retries:
                attempt += 1
                await asyncio.sleep(min(0.25 * 2**attempt, 5.0))
                continue
            error = self._error(status, body, method, path)
            if isinstance(error, RateLimitError) or status in (418, 429):
                self.limiter.block_for(float(retry_after) if retry_after and retry_after.isdigit() else 1.0)
                raise error
            if isinstance(error, TimestampError) and signed and not resynced:
                resynced = True
                await self.sync_time()
                continue
            raise error

    def _observe_limits(self, resp: aiohttp.ClientResponse) -> None:
        def num(name: str) -> int | None:
            value = resp.headers.get(name)
            return int(value) if value and value.isdigit() else None

        self.limiter.observe(num("X-MBX-USED-WEIGHT-1M"), num("X-MBX-ORDER-COUNT-1M"), num("X-MBX-ORDER-COUNT-10S"))

    def _error(self, status: int, body: bytes, method: str, path: str) -> Exception:
        try:
            err = msgspec.json.decode(body, type=P.ApiErrorBody)
        except (msgspec.DecodeError, msgspec.ValidationError):
            if status >= 500:
                return MarketUnavailableError(f"{method} {self.base_url}{path}: HTTP {status}")
            return BinanceAPIError(-1000, f"HTTP {status} from {path}: {body[:200]!r}", status)
        return error_for_code(err.code, err.msg, status)

    async def _get(self, kind: type[T] | Any, path: str, params: dict[str, Any] | None = None, *,
                   weight: int = 1, signed: bool = False) -> Any:
        body = await self._request("GET", path, params, weight=weight, signed=signed)
        return self._decode(kind, body, path)

    def _decode(self, kind: Any, body: bytes, path: str) -> Any:
        try:
            return P.decode(kind, body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise MarketUnavailableError(f"{self.base_url}{path}: malformed response ({exc}): {body[:200]!r}") from None

    # ------------------------------------------------------------------ clock

    async def _ensure_time(self) -> None:
        age = self.clock.age_s()
        if age is None or age > self.time_sync_interval_s:
            await self.sync_time()

    async def sync_time(self) -> int:
        """Sample the server clock (``/fapi/v1/time``) and return the server time in ms."""
        if self._sync_lock is None:
            self._sync_lock = asyncio.Lock()
        async with self._sync_lock:
            sent = time.monotonic()
            body = await self._request("GET", "/fapi/v1/time", weight=1)
            received = time.monotonic()
            server = self._decode(P.ServerTime, body, "/fapi/v1/time").server_time
            self.clock.update(sent, server, received)
            return server

    # ------------------------------------------------------------------ market data

    async def ping(self) -> None:
        await self._request("GET", "/fapi/v1/ping")

    async def server_time(self) -> int:
        """The venue's time in ms (simulated time on the simulator); also syncs the clock."""
        return await self.sync_time()

    async def venue_speed(self) -> float:
        """Market seconds per wall second: the simulator's ``speed`` (``/sim/v1/status``), 1 on a real venue.

        A venue without that path (Binance answers 404) is remembered as real time.
        """
        if self._real_time:
            return 1.0
        try:
            body = await self._request("GET", "/sim/v1/status", weight=1)
        except BinanceAPIError as exc:
            if exc.status == 404:
                self._real_time = True
                return 1.0
            raise
        try:
            speed = float(msgspec.json.decode(body, type=dict[str, Any]).get("speed", 1.0))
        except (msgspec.DecodeError, TypeError, ValueError):
            raise MarketUnavailableError(f"{self.base_url}/sim/v1/status: malformed answer {body[:200]!r}") from None
        if not speed > 0:
            raise MarketUnavailableError(f"{self.base_url}/sim/v1/status: speed {speed} is not positive")
        return speed

    async def exchange_info(self) -> P.ExchangeInfo:
        return await self._get(P.ExchangeInfo, "/fapi/v1/exchangeInfo", weight=1)

    async def klines(self, symbol: str, interval: str, start_ms: int | None = None, end_ms: int | None = None,
                     limit: int = 500) -> list[P.Kline]:
        """Up to ``limit`` (≤ 1500) candles, oldest first; the last may still be forming."""
        _interval_ms(interval)
        limit = max(1, min(int(limit), MAX_KLINES_PER_REQUEST))
        return await self._get(list[P.Kline], "/fapi/v1/klines",
                               {"symbol": symbol, "interval": interval, "startTime": start_ms, "endTime": end_ms,
                                "limit": limit}, weight=klines_weight(limit))

    async def klines_range(self, symbol: str, interval: str, start_ms: int, end_ms: int | None = None, *,
                           page_limit: int = MAX_KLINES_PER_REQUEST, closed_only: bool = False) -> list[P.Kline]:
        """Every candle opening in ``[start_ms, end_ms]`` (to now if ``end_ms`` is None), paging forward.

        ``closed_only`` drops a trailing candle whose close time is after the server's now.
        """
        step = _interval_ms(interval)
        out: list[P.Kline] = []
        cursor = int(start_ms)
        while end_ms is None or cursor <= end_ms:
            page = await self.klines(symbol, interval, cursor, end_ms, page_limit)
            if not page:
                break
            out.extend(page)
            nxt = page[-1].open_time + step
            if nxt <= cursor or len(page) < page_limit:
                break
            cursor = nxt
        if closed_only and out:
            now = await self.server_time()
            while out and out[-1].close_time >= now:
                out.pop()
        return out

    async def depth(self, symbol: str, limit: int = 5) -> P.OrderBook:
        return await self._get(P.OrderBook, "/fapi/v1/depth", {"symbol": symbol, "limit": limit},
                               weight=depth_weight(limit))

    async def premium_index(self, symbol: str) -> P.PremiumIndex:
        """Mark price, index price and funding of one symbol."""
        return await self._get(P.PremiumIndex, "/fapi/v1/premiumIndex", {"symbol": symbol}, weight=1)

    async def premium_index_all(self) -> list[P.PremiumIndex]:
        """Mark price and funding of every symbol."""
        return await self._get(list[P.PremiumIndex], "/fapi/v1/premiumIndex", weight=10)

    async def funding_rate(self, symbol: str | None = None, start_ms: int | None = None, end_ms: int | None = None,
                           limit: int = 100) -> list[P.FundingRate]:
        """Funding settlements, oldest first (the most recent ``limit`` without a range)."""
        return await self._get(list[P.FundingRate], "/fapi/v1/fundingRate",
                               {"symbol": symbol, "startTime": start_ms, "endTime": end_ms,
                                "limit": max(1, min(int(limit), 1000))}, weight=1)

    async def taker_long_short_ratio(self, symbol: str, period: str = "5m", limit: int = 30,
                                     start_ms: int | None = None, end_ms: int | None = None) -> list[P.TakerRatio]:
        """Taker buy/sell volume per ``period`` (5m … 1d), oldest first."""
        return await self._get(list[P.TakerRatio], "/futures/data/takerlongshortRatio",
                               {"symbol": symbol, "period": period, "limit": max(1, min(int(limit), 500)),
                                "startTime": start_ms, "endTime": end_ms}, weight=0)

    async def agg_trades(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None,
                         from_id: int | None = None, limit: int = 500) -> list[AggTradeRow]:
        """``GET /fapi/v1/aggTrades`` (≤ 1000 rows, oldest first; a time range must span < 1 hour).

        Real Binance only (the simulator does not serve it): the scanner's 5 s bar history.
        """
        return await self._get(list[AggTradeRow], "/fapi/v1/aggTrades",
                               {"symbol": symbol, "startTime": start_ms, "endTime": end_ms, "fromId": from_id,
                                "limit": max(1, min(int(limit), 1000))}, weight=20)

    # ------------------------------------------------------------------ trading (signed)

    async def new_order(self, symbol: str, side: str, type: str, quantity: float, price: float | None = None, *,
                        time_in_force: str | None = None, reduce_only: bool = False,
                        new_client_order_id: str | None = None, resp_type: str = "RESULT") -> P.Order:
        """Place an order. ``new_client_order_id`` makes it idempotent (one is generated if omitted).

        LIMIT needs ``price`` (``time_in_force`` defaults to GTC); MARKET must not have one.
        """
        side, type = side.upper(), type.upper()
        client_id = new_client_order_id or f"dol-{uuid.uuid4().hex[:24]}"
        if type == "LIMIT" and time_in_force is None:
            time_in_force = "GTC"
        params: dict[str, Any] = {"symbol": symbol, "side": side, "type": type, "quantity": float(quantity),
                                  "price": None if price is None else float(price), "timeInForce": time_in_force,
                                  "reduceOnly": "true" if reduce_only else None, "newClientOrderId": client_id,
                                  "newOrderRespType": resp_type}
        attempts = 0
        while True:
            try:
                body = await self._request("POST", "/fapi/v1/order", params, weight=1, orders=1, signed=True,
                                           retry=False)
                return self._decode(P.Order, body, "/fapi/v1/order")
            except MarketUnavailableError:
                if attempts >= self.max_retries:
                    raise
                attempts += 1
                await asyncio.sleep(min(0.25 * 2**attempts, 5.0))
            except DuplicateClientOrderIdError:
                if attempts == 0:
                    raise  # the caller reused an id: not ours to resolve
                return await self.query_order(symbol, orig_client_order_id=client_id)

    async def cancel_order(self, symbol: str, order_id: int | None = None,
                           orig_client_order_id: str | None = None) -> P.Order:
        if order_id is None and orig_client_order_id is None:
            raise ValueError("give order_id or orig_client_order_id")
        body = await self._request("DELETE", "/fapi/v1/order",
                                   {"symbol": symbol, "orderId": order_id, "origClientOrderId": orig_client_order_id},
                                   weight=1, signed=True, retry=False)
        return self._decode(P.Order, body, "/fapi/v1/order")

    async def query_order(self, symbol: str, order_id: int | None = None,
                          orig_client_order_id: str | None = None) -> P.Order:
        if order_id is None and orig_client_order_id is None:
            raise ValueError("give order_id or orig_client_order_id")
        return await self._get(P.Order, "/fapi/v1/order",
                               {"symbol": symbol, "orderId": order_id, "origClientOrderId": orig_client_order_id},
                               weight=1, signed=True)

    async def open_orders(self, symbol: str | None = None) -> list[P.Order]:
        return await self._get(list[P.Order], "/fapi/v1/openOrders", {"symbol": symbol},
                               weight=1 if symbol else 40, signed=True)

    async def user_trades(self, symbol: str, order_id: int | None = None, start_ms: int | None = None,
                          limit: int = 500) -> list[P.UserTrade]:
        """The account's fills in a symbol (of one order when `order_id` is given), oldest first."""
        return await self._get(list[P.UserTrade], "/fapi/v1/userTrades",
                               {"symbol": symbol, "orderId": order_id, "startTime": start_ms, "limit": limit},
                               weight=5, signed=True)

    async def income(self, income_type: str | None = None, start_ms: int | None = None, end_ms: int | None = None,
                     symbol: str | None = None, limit: int = 1000) -> list[P.Income]:
        """The account's income history (funding fees, commissions, realised PnL…), oldest first."""
        return await self._get(list[P.Income], "/fapi/v1/income",
                               {"incomeType": income_type, "startTime": start_ms, "endTime": end_ms,
                                "symbol": symbol, "limit": limit}, weight=30, signed=True)

    async def account(self) -> P.Account:
        return await self._get(P.Account, "/fapi/v2/account", weight=5, signed=True)

    async def position_risk(self, symbol: str | None = None) -> list[P.Position]:
        return await self._get(list[P.Position], "/fapi/v2/positionRisk", {"symbol": symbol}, weight=5, signed=True)

    async def cancel_all_open_orders(self, symbol: str) -> None:
        """``DELETE /fapi/v1/allOpenOrders``: every open order of ``symbol`` (the kill switch's halt)."""
        await self._request("DELETE", "/fapi/v1/allOpenOrders", {"symbol": symbol}, weight=1, signed=True,
                            retry=False)

    async def change_margin_type(self, symbol: str, margin_type: str) -> None:
        """``POST /fapi/v1/marginType`` (``ISOLATED`` | ``CROSSED``); -4046 when it is already so."""
        await self._request("POST", "/fapi/v1/marginType", {"symbol": symbol, "marginType": margin_type.upper()},
                            weight=1, signed=True, retry=False)

    # ------------------------------------------------------------------ user-data stream (API key, unsigned)

    async def new_listen_key(self) -> str:
        """``POST /fapi/v1/listenKey``: the account's active listen key (created if none), extended 60 min."""
        body = await self._request("POST", "/fapi/v1/listenKey", weight=1, retry=False, key_only=True)
        return self._decode(P.ListenKey, body, "/fapi/v1/listenKey").listen_key

    async def keepalive_listen_key(self, listen_key: str | None = None) -> None:
        """``PUT /fapi/v1/listenKey``: extend the key 60 minutes (`ListenKeyError` -1125 when it lapsed)."""
        await self._request("PUT", "/fapi/v1/listenKey", {"listenKey": listen_key}, weight=1, retry=False,
                            key_only=True)

    async def close_listen_key(self, listen_key: str | None = None) -> None:
        """``DELETE /fapi/v1/listenKey``: invalidate the key (its streams close)."""
        await self._request("DELETE", "/fapi/v1/listenKey", {"listenKey": listen_key}, weight=1, retry=False,
                            key_only=True)

    async def change_leverage(self, symbol: str, leverage: int) -> P.LeverageInfo:
        body = await self._request("POST", "/fapi/v1/leverage", {"symbol": symbol, "leverage": int(leverage)},
                                   weight=1, signed=True, retry=False)
        return self._decode(P.LeverageInfo, body, "/fapi/v1/leverage")
