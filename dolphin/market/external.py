"""Clients of the two non-Binance sources of ACB's external factors: Deribit's DVOL and the Fear & Greed index.

The Binance factors (funding, taker ratio) come through `BinanceRest`. The other two
are public, unauthenticated JSON APIs:

* Deribit ``GET /api/v2/public/get_volatility_index_data`` — DVOL candles
  ``[timestamp, open, high, low, close]`` inside a JSON-RPC envelope;
* alternative.me ``GET /fng/?limit=1`` — the latest Fear & Greed value, as a string.

The simulator serves both on its own port (`dolphin.market.sim.external`), so the base
URL is the only difference between a rehearsal and the real sources.

They are polled the way the market adapter polls Binance: one request budget per host
and process (`RequestLimiter`, with each API's published limit and 90 % headroom), a
429 blocks the host until its ``Retry-After``, transport failures and 5xx are retried a
bounded number of times with exponential backoff, and every answer is decoded and
validated once into a typed struct. Anything else — an error status, a body that is not
the API's shape, a value out of range — is a `MarketUnavailableError` or an
`ExternalApiError` with a one-line reason; nothing is retried blindly and nothing
malformed gets through.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from dolphin.market.errors import MarketError, MarketUnavailableError
from dolphin.market.limiter import RequestLimiter
from dolphin.market.signing import encode_params
from dolphin.market.urls import normalize_base

log = logging.getLogger("dolphin.market.external")

DERIBIT_URL = "https://www.deribit.com"
FNG_URL = "https://api.alternative.me"
DVOL_PATH = "/api/v2/public/get_volatility_index_data"
FNG_PATH = "/fng/"
DERIBIT_REQUESTS_PER_MINUTE = 600    # public methods: a credit pool of ~20 requests/s; we stay far below
FNG_REQUESTS_PER_MINUTE = 60         # alternative.me: 60 requests per minute
_RETRY_STATUSES = frozenset({500, 502, 503, 504})


class ExternalApiError(MarketError):
    """The API refused the request (a 4xx with its own reason): retrying the same request will not help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------- payloads
class DvolCandle(msgspec.Struct, array_like=True, frozen=True):
    """One DVOL candle: ``[timestamp ms, open, high, low, close]``."""

    timestamp: int
    open: float
    high: float
    low: float
    close: float


class _DvolResult(msgspec.Struct, frozen=True):
    data: list[DvolCandle]
    continuation: int | None = None


class _DvolAnswer(msgspec.Struct, frozen=True):
    result: _DvolResult
    jsonrpc: str = "2.0"


class _RpcError(msgspec.Struct, frozen=True):
    message: str
    code: int = 0


class _RpcErrorAnswer(msgspec.Struct, frozen=True):
    error: _RpcError


class _FngRow(msgspec.Struct, frozen=True):
    value: str
    timestamp: str
    value_classification: str = ""
    time_until_update: str | None = None


class _FngMetadata(msgspec.Struct, frozen=True):
    error: str | None = None


class _FngAnswer(msgspec.Struct, frozen=True):
    data: list[_FngRow]
    metadata: _FngMetadata = _FngMetadata()
    name: str = ""


@dataclass(frozen=True, slots=True)
class FearGreed:
    """The latest Fear & Greed reading."""

    value: float                 # 0 … 100
    classification: str
    timestamp_ms: int            # when it was published
    time_until_update_s: float | None


# ---------------------------------------------------------------------------- transport
_LIMITERS: dict[str, RequestLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def host_limiter(base_url: str, per_minute: int) -> RequestLimiter:
    """The process-wide request budget of one host (every caller of that API shares it)."""
    parts = urlsplit(base_url)
    key = f"{(parts.hostname or '').lower()}:{parts.port or (443 if parts.scheme == 'https' else 80)}:{per_minute}"
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = RequestLimiter(weight_per_minute=per_minute)
        return limiter


class JsonApi:
    """GET a public JSON API politely: host budget, bounded retries with backoff, one-line errors."""

    def __init__(self, base_url: str, *, per_minute: int, timeout_s: float = 10.0, max_retries: int = 2,
                 session: aiohttp.ClientSession | None = None, name: str = "api") -> None:
        self.base_url = normalize_base(base_url, kind="rest")
        self.limiter = host_limiter(self.base_url, per_minute)
        self.max_retries = max(0, int(max_retries))
        self.name = name
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._own = session is None

    async def close(self) -> None:
        if self._session is not None and self._own and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> JsonApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers={"User-Agent": "dolphin-exf/1"})
            self._own = True
        return self._session

    async def get(self, path: str, params: dict[str, Any]) -> tuple[int, bytes]:
        """(status, body) of the first answer that is not a retryable failure; transport failures raise."""
        query = encode_params(params)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        attempt = 0
        while True:
            await self.limiter.acquire(1)
            try:
                async with self._http().get(url) as resp:
                    body = await resp.read()
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if attempt < self.max_retries:
                    attempt += 1
                    await asyncio.sleep(min(0.25 * 2**attempt, 5.0))
                    continue
                raise MarketUnavailableError(f"{self.name} {self.base_url}{path}: {type(exc).__name__}: {exc}") from None
            if status in (418, 429):
                self.limiter.block_for(float(retry_after) if retry_after and retry_after.isdigit() else 1.0)
                raise MarketUnavailableError(f"{self.name} {self.base_url}{path}: rate limited (HTTP {status})")
            if status in _RETRY_STATUSES:
                if attempt < self.max_retries:
                    attempt += 1
                    await asyncio.sleep(min(0.25 * 2**attempt, 5.0))
                    continue
                raise MarketUnavailableError(f"{self.name} {self.base_url}{path}: HTTP {status}")
            return status, body

    def malformed(self, path: str, exc: Exception, body: bytes) -> MarketUnavailableError:
        return MarketUnavailableError(f"{self.name} {self.base_url}{path}: malformed answer ({exc}): {body[:160]!r}")


# ---------------------------------------------------------------------------- Deribit
class DeribitRest:
    """Deribit's public DVOL candles (or the simulator's)."""

    def __init__(self, base_url: str = DERIBIT_URL, **options: Any) -> None:
        self.api = JsonApi(base_url, per_minute=DERIBIT_REQUESTS_PER_MINUTE, name="deribit", **options)

    async def close(self) -> None:
        await self.api.close()

    async def volatility_index(self, currency: str, start_ms: int, end_ms: int,
                               resolution: str = "60") -> list[DvolCandle]:
        """Candles of [start_ms, end_ms], oldest first (one page: the newest up to 1,000)."""
        status, body = await self.api.get(DVOL_PATH, {"currency": currency, "start_timestamp": int(start_ms),
                                                      "end_timestamp": int(end_ms), "resolution": resolution})
        if status >= 400:
            try:
                err = msgspec.json.decode(body, type=_RpcErrorAnswer).error
                reason = f"{err.message} ({err.code})"
            except (msgspec.DecodeError, msgspec.ValidationError):
                reason = f"HTTP {status}"
            raise ExternalApiError(status, f"deribit {DVOL_PATH}: {reason}")
        try:
            candles = msgspec.json.decode(body, type=_DvolAnswer).result.data
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise self.api.malformed(DVOL_PATH, exc, body) from None
        for c in candles:
            if not all(math.isfinite(v) and v >= 0 for v in (c.open, c.high, c.low, c.close)) or c.timestamp <= 0:
                raise self.api.malformed(DVOL_PATH, ValueError(f"candle {list(msgspec.structs.astuple(c))}"), body)
        return sorted(candles, key=lambda c: c.timestamp)

    async def latest_dvol(self, currency: str, now_ms: int, lookback_ms: int = 600_000) -> DvolCandle:
        """The newest one-minute candle at or before `now_ms` (its close is the index now)."""
        candles = await self.volatility_index(currency, now_ms - lookback_ms, now_ms, "60")
        if not candles:
            raise MarketUnavailableError(f"deribit {DVOL_PATH}: no {currency} candle in the last "
                                         f"{lookback_ms // 60_000} minutes")
        return candles[-1]


# ---------------------------------------------------------------------------- Fear & Greed
class FearGreedRest:
    """alternative.me's Fear & Greed index (or the simulator's)."""

    def __init__(self, base_url: str = FNG_URL, **options: Any) -> None:
        self.api = JsonApi(base_url, per_minute=FNG_REQUESTS_PER_MINUTE, name="fear&greed", **options)

    async def close(self) -> None:
        await self.api.close()

    async def latest(self) -> FearGreed:
        status, body = await self.api.get(FNG_PATH, {"limit": 1, "format": "json"})
        if status >= 400:
            try:
                reason = msgspec.json.decode(body, type=_FngAnswer).metadata.error or f"HTTP {status}"
            except (msgspec.DecodeError, msgspec.ValidationError):
                reason = f"HTTP {status}"
            raise ExternalApiError(status, f"fear&greed {FNG_PATH}: {reason}")
        try:
            answer = msgspec.json.decode(body, type=_FngAnswer)
            if answer.metadata.error:
                raise ValueError(answer.metadata.error)
            if not answer.data:
                raise ValueError("no value in data")
            row = answer.data[0]
            value = float(row.value)
            if not (math.isfinite(value) and 0.0 <= value <= 100.0):
                raise ValueError(f"value {row.value!r} is outside 0-100")
            until = float(row.time_until_update) if row.time_until_update not in (None, "") else None
            return FearGreed(value=value, classification=row.value_classification,
                             timestamp_ms=int(row.timestamp) * 1000, time_until_update_s=until)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as exc:
            raise self.api.malformed(FNG_PATH, exc, body) from None




def exf_urls(cfg: Any) -> tuple[str, str, str]:
    """(Binance, Deribit, Fear & Greed) base URLs of the ExF daemon, from the services config ``exf:``.

    An empty entry follows the market: the simulator serves all four factors on its own port;
    on Binance, DVOL and Fear & Greed come from Deribit and alternative.me.
    """
    from dolphin.market.urls import market_rest_url

    x = cfg.exf
    binance = x.binance_url or market_rest_url(cfg)
    simulated = cfg.market.source == "sim"
    deribit = x.deribit_url or (binance if simulated else DERIBIT_URL)
    fng = x.fng_url or (binance if simulated else FNG_URL)
    return binance, deribit, fng
