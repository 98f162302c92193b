"""The user-data stream's connection: listen key, keepalive, renewal, reconnects with a storm guard.

What users of other systems report most (untracked fills after a network error, a
stream never resubscribed after its listen key lapsed, reconnect storms) is designed out
here:

* **listen key** — ``POST /fapi/v1/listenKey`` before every connection (it returns the
  account's active key, or a new one when the old lapsed: counted as a *renewal*), a
  keepalive ``PUT`` every ``keepalive_every_s`` (30 min; a key lapses 60 min after its
  last one). A keepalive answered -1125, or a ``listenKeyExpired`` event, closes the
  connection so the next one runs on a fresh key;
* **reconnect** — on any loss, after a backoff with full jitter (0.5 s doubling to
  ``backoff_max_s``); every reconnect calls ``on_reconnect`` once the new connection is up
  (so events during it are not missed): the trader resynchronises its open orders and
  reconciles — nothing that happened while the stream was down is lost;
* **storm guard** — at most ``reconnects_per_min`` connections in any minute; past that the
  stream waits for the minute to roll (counted, alerted once per storm);
* **edge checks** — a frame that is not an event is counted and dropped (logged once per
  kind); the callback's own errors are counted, never fatal.

The listen key is a bearer token for the account's events: it is never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
import websockets
from websockets.asyncio.client import connect

from dolphin.market.errors import ListenKeyError, MarketError
from dolphin.market.rest import BinanceRest
from dolphin.market.storm_guard import ConnectStormGuard
from dolphin.market.urls import normalize_base
from dolphin.market.userdata import AccountUpdate, ListenKeyExpired, OrderTradeUpdate, OtherEvent, decode_user_event

log = logging.getLogger("dolphin.live")

STABLE_AFTER_S = 5.0      # a connection that lived this long resets the backoff


class StreamCounters(msgspec.Struct):
    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    renewals: int = 0
    keepalives: int = 0
    keepalive_failures: int = 0
    expirations: int = 0
    storm_waits: int = 0
    events: int = 0
    ignored: int = 0
    dropped_malformed: int = 0
    callback_errors: int = 0
    resyncs: int = 0
    last_event_at: float | None = None


class UserStream:
    def __init__(self, rest: BinanceRest, ws_url: str, on_event: Callable[[OrderTradeUpdate | AccountUpdate], None], *,
                 keepalive_every_s: float = 1800.0, backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 reconnects_per_min: int = 6, on_reconnect: Callable[[], Coroutine[Any, Any, None]] | None = None,
                 on_key: Callable[[str], None] | None = None, on_storm: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rest = rest
        self.ws_base = normalize_base(ws_url, kind="ws")
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self.on_key = on_key
        self.on_storm = on_storm
        self.keepalive_every_s = keepalive_every_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.clock = clock
        self.stats = StreamCounters()
        self.connected = asyncio.Event()
        self._key: str | None = None
        self._ws: Any = None
        self._closing = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._guard = ConnectStormGuard(reconnects_per_min, clock=clock)
        self._logged: set[str] = set()

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name="live-user-stream"),
                       asyncio.create_task(self._keepalive(), name="live-listen-key")]

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.connected.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 2.0)
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException):
                ws.transport.abort()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass

    def drop(self) -> None:
        """Close the current connection (it reconnects): a lapsed key, or a drill."""
        ws = self._ws
        if ws is not None:
            ws.transport.abort()

    # ------------------------------------------------------------------ the connection loop
    async def _listen_key(self) -> str:
        key = await self.rest.new_listen_key()
        if self._key is not None and key != self._key:
            self.stats.renewals += 1
            log.warning("user-data stream: the listen key lapsed; running on a new one")
        self._key = key
        if self.on_key is not None:
            self.on_key(key)
        return key

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            await self._storm_guard()
            started = self.clock()
            reconnect: asyncio.Task[None] | None = None
            try:
                key = await self._listen_key()
                async with connect(f"{self.ws_base}/ws/{key}", compression=None, open_timeout=10.0,
                                   ping_interval=20.0, ping_timeout=20.0, close_timeout=2.0,
                                   max_size=2**22) as ws:
                    self._ws = ws
                    first = self.stats.connects == 0
                    self.stats.connects += 1
                    self.stats.connected = True
                    self.connected.set()
                    if first:
                        log.info("user-data stream connected")
                    else:
                        self.stats.reconnects += 1
                        log.info("user-data stream reconnected (%d so far): resynchronising orders and reconciling",
                                 self.stats.reconnects)
                        if self.on_reconnect is not None:
                            reconnect = asyncio.create_task(self.on_reconnect(), name="live-resync")
                    async for raw in ws:
                        if self._handle(raw):
                            break      # the key lapsed: reconnect on a new one
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException, MarketError) as exc:
                self._warn(f"conn:{type(exc).__name__}", "user-data stream: connection failed or lost: %s: %s",
                           type(exc).__name__, exc)
            finally:
                self._ws = None
                self.stats.connected = False
                self.connected.clear()
            if reconnect is not None and not reconnect.done():
                await asyncio.wait({reconnect}, timeout=30.0)
            if self._closing:
                break
            if self.clock() - started > STABLE_AFTER_S:
                attempt = 0
            delay = random.uniform(0.0, min(self.backoff_max_s, self.backoff_initial_s * 2 ** attempt))
            attempt = min(attempt + 1, 30)
            await asyncio.sleep(delay)

    async def _storm_guard(self) -> None:
        """At most ``reconnects_per_min`` connection attempts in any minute (`ConnectStormGuard`)."""
        wait = self._guard.check()
        if wait is not None:
            self.stats.storm_waits += 1
            if wait.first:
                detail = wait.describe()
                log.warning("user-data stream: %s", detail)
                if self.on_storm is not None:
                    self.on_storm(detail)
            await asyncio.sleep(wait.seconds)
        self._guard.record()

    def _handle(self, raw: str | bytes) -> bool:
        """One frame; True when the listen key lapsed."""
        try:
            event = decode_user_event(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.stats.dropped_malformed += 1
            text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            self._warn("malformed", "user-data stream: dropped a malformed frame (%s): %.200s", exc, text)
            return False
        self.stats.last_event_at = time.time()
        if isinstance(event, ListenKeyExpired):
            self.stats.expirations += 1
            log.warning("user-data stream: the listen key expired; reconnecting on a new one")
            return True
        if isinstance(event, OtherEvent):
            self.stats.ignored += 1
            return False
        self.stats.events += 1
        try:
            self.on_event(event)
        except Exception as exc:  # noqa: BLE001 - a bug in the books must not kill the stream
            self.stats.callback_errors += 1
            log.exception("user-data stream: the books failed on an event: %s", exc)
        return False

    async def _keepalive(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.keepalive_every_s)
            if self._key is None:
                continue
            try:
                await self.rest.keepalive_listen_key(self._key)
                self.stats.keepalives += 1
            except ListenKeyError:
                self.stats.keepalive_failures += 1
                log.warning("user-data stream: keepalive refused (-1125, the key lapsed); reconnecting on a new key")
                self.drop()
            except MarketError as exc:
                self.stats.keepalive_failures += 1
                log.warning("user-data stream: keepalive failed (%s); retrying at the next interval", exc)

    def _warn(self, kind: str, fmt: str, *args: Any) -> None:
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning(fmt, *args)
        else:
            log.debug(fmt, *args)


__all__ = ["StreamCounters", "UserStream"]
