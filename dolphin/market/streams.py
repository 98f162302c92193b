"""`MarketStreams`: Binance USD-M combined market streams over as many WebSockets as needed.

Why sharded connections: DOLPHIN watches hundreds of symbols (bible §26.2: 540 depth5
streams on 3 connections) and keeps each connection at ≤ 200 streams, so a reconnect
touches a third of the universe, not all of it. Each connection is its own task:

* connect to ``<ws_base>/stream`` (combined payloads: ``{"stream", "data"}``) with the
  ``websockets`` library, no compression (Binance sends none; it would cost CPU here);
* SUBSCRIBE its streams in chunks, paced under Binance's 10 incoming messages/s;
* answer pings (the library does) and send its own (``ping_interval_s``);
* a **stall watchdog** closes a connection that has subscriptions but received no data
  for ``stall_timeout_s`` (bible §20: stall → restart);
* on any loss, **reconnect** with exponential backoff and full jitter and
  **resubscribe** the same streams; a **storm guard** holds each connection to
  ``reconnects_per_min`` attempts in any minute (`dolphin.market.storm_guard`), logged
  once per storm and counted (``storm_waits``).

Every frame is decoded once into a typed struct (`dolphin.market.payloads`) and checked
at the edge: malformed or truncated frames, data for a stream this connection did not
subscribe, out-of-order event times and crossed books (ask ≤ bid, bible §20 P0) are
counted and dropped with one log line per kind and connection — never an exception in
the loop. `stats()` returns the counters an operator reads.

Delivery: give ``on_message`` (sync or async, called in the connection's loop) or
iterate ``async for msg in streams`` (a bounded queue; when the consumer lags, the
oldest message is dropped and counted).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection, connect

from dolphin.market import payloads as P
from dolphin.market.storm_guard import ConnectStormGuard
from dolphin.market.urls import normalize_base

log = logging.getLogger("dolphin.market.streams")

MAX_STREAMS_PER_CONNECTION = 200
YIELD_EVERY = 32
#: Connection attempts per connection in any minute (`ConnectStormGuard`): a connection that comes up, delivers
#: and drops resets its backoff, so only this bounds a storm (Binance: 300 connections per IP per 5 minutes).
RECONNECTS_PER_MIN = 12
"""Frames read before the connection's task yields to the loop. The library hands over frames
already received without suspending, so a 200-stream burst (a depth tick) would otherwise run
as one ~5 ms block; other tasks (a bar worker, a bus writer) get a turn every few hundred µs."""
_KIND_TYPES: dict[str, type] = {"depth": P.DepthUpdate, "aggTrade": P.AggTrade, "kline": P.KlineEvent,
                                "markPrice": P.MarkPrice}

OnMessage = Callable[[P.StreamPayload], Awaitable[None] | None]


class ConnectionStats(msgspec.Struct, frozen=True):
    """Counters of one connection (``index`` is its shard number)."""

    index: int
    url: str
    streams: int
    connected: bool
    frames: int
    messages: int
    reconnects: int
    stalls: int
    dropped_malformed: int
    dropped_unknown_stream: int
    dropped_out_of_order: int
    dropped_crossed: int
    subscribe_errors: int
    callback_errors: int
    last_message_age_s: float | None
    storm_waits: int = 0           # connection attempts the storm guard held back


class StreamStats(msgspec.Struct, frozen=True):
    """Totals over all connections plus each connection's own counters."""

    streams: int
    connections: tuple[ConnectionStats, ...]
    frames: int
    messages: int
    reconnects: int
    stalls: int
    dropped_malformed: int
    dropped_unknown_stream: int
    dropped_out_of_order: int
    dropped_crossed: int
    dropped_backpressure: int
    callback_errors: int
    last_message_age_s: float | None
    storm_waits: int = 0

    @property
    def dropped(self) -> int:
        return (self.dropped_malformed + self.dropped_unknown_stream + self.dropped_out_of_order
                + self.dropped_crossed)


def _expected(stream: str) -> tuple[str, type] | None:
    """(SYMBOL, payload type) a stream name promises, or None for names we do not parse."""
    kind = P.stream_kind(stream)
    if not kind:
        return None
    symbol, _, _ = stream.partition("@")
    return symbol.upper(), _KIND_TYPES[kind]


class _Connection:
    """State of one shard: its streams, socket, counters and last event time per stream."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.streams: dict[str, tuple[str, type]] = {}
        self.ws: ClientConnection | None = None
        self.task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.ever_connected = False
        self.last_event: dict[str, int] = {}
        self.last_rx = 0.0
        self.stalled = False
        self.logged: set[str] = set()
        self.request_id = 0
        self.frames = self.messages = self.reconnects = self.stalls = self.storm_waits = 0
        self.dropped_malformed = self.dropped_unknown = self.dropped_out_of_order = self.dropped_crossed = 0
        self.subscribe_errors = self.callback_errors = 0


class MarketStreams:
    """Market streams of ``ws_base_url`` (``ws://127.0.0.1:8790`` or ``wss://fstream.binance.com``).

    Stream names are Binance's: ``btcusdt@depth5@100ms``, ``btcusdt@aggTrade``,
    ``btcusdt@kline_1m``, ``btcusdt@markPrice@1s``. Use ``async with`` or
    `start()` / `close()`.
    """

    def __init__(self, ws_base_url: str, streams: Iterable[str] = (), *, on_message: OnMessage | None = None,
                 max_streams_per_connection: int = MAX_STREAMS_PER_CONNECTION, stall_timeout_s: float = 30.0,
                 ping_interval_s: float = 20.0, ping_timeout_s: float = 20.0, backoff_initial_s: float = 0.5,
                 backoff_max_s: float = 30.0, open_timeout_s: float = 10.0, subscribe_chunk: int = 50,
                 queue_size: int = 100_000, reconnects_per_min: int = RECONNECTS_PER_MIN, name: str = "market") -> None:
        if not 1 <= max_streams_per_connection <= 1024:
            raise ValueError(f"max_streams_per_connection must be in [1, 1024], got {max_streams_per_connection}")
        self.url = normalize_base(ws_base_url, kind="ws") + "/stream"
        self.name = name
        self._on_message = on_message
        self._callback_is_async: bool | None = None
        self.max_streams = int(max_streams_per_connection)
        self.stall_timeout_s = float(stall_timeout_s)
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self.subscribe_chunk = max(1, int(subscribe_chunk))
        self.reconnects_per_min = max(1, int(reconnects_per_min))
        self._queue: asyncio.Queue[P.StreamPayload] | None = None if on_message else asyncio.Queue(queue_size)
        self._dropped_backpressure = 0
        self._conns: list[_Connection] = []
        self._closing = False
        self._started = False
        self._watchdog: asyncio.Task[None] | None = None
        self._pending = list(dict.fromkeys(s.strip() for s in streams if s and s.strip()))

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> MarketStreams:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the connections for the streams given so far (returns without waiting for data)."""
        if self._started:
            return
        self._started = True
        pending, self._pending = self._pending, []
        self._assign(pending)
        self._watchdog = asyncio.create_task(self._watch(), name=f"{self.name}-watchdog")

    async def wait_connected(self, timeout: float = 30.0) -> None:
        """Wait until every connection is connected and has sent its subscriptions."""
        async def all_ready() -> None:
            for conn in self._conns:
                await conn.subscribed.wait()

        await asyncio.wait_for(all_ready(), timeout)

    async def close(self) -> None:
        """Close every connection and stop every task (idempotent)."""
        self._closing = True
        tasks = [c.task for c in self._conns if c.task is not None]
        if self._watchdog is not None:
            tasks.append(self._watchdog)
        for conn in self._conns:
            if conn.ws is not None:
                try:
                    await asyncio.wait_for(conn.ws.close(), 2.0)
                except (TimeoutError, OSError, websockets.exceptions.WebSocketException):
                    conn.ws.transport.abort()
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down, nothing to report
                pass
        self._watchdog = None

    # ------------------------------------------------------------------ subscriptions

    @property
    def streams(self) -> list[str]:
        return [s for c in self._conns for s in c.streams] + list(self._pending)

    def connection_of(self, stream: str) -> int | None:
        """The shard index carrying ``stream`` (None if not subscribed)."""
        for conn in self._conns:
            if stream in conn.streams:
                return conn.index
        return None

    def _assign(self, streams: list[str]) -> dict[_Connection, list[str]]:
        added: dict[_Connection, list[str]] = {}
        known = {s for c in self._conns for s in c.streams}
        for stream in streams:
            if stream in known:
                continue
            expected = _expected(stream)
            if expected is None:
                log.warning("%s: not subscribing %r: unknown stream kind", self.name, stream)
                continue
            conn = next((c for c in self._conns if len(c.streams) < self.max_streams), None)
            if conn is None:
                conn = _Connection(len(self._conns))
                self._conns.append(conn)
                conn.task = asyncio.create_task(self._run(conn), name=f"{self.name}-ws-{conn.index}")
            conn.streams[stream] = expected
            known.add(stream)
            added.setdefault(conn, []).append(stream)
        return added

    async def subscribe(self, streams: Iterable[str]) -> None:
        """Add streams (spread over connections with room, opening new ones as needed)."""
        names = [s.strip() for s in streams if s and s.strip()]
        if not self._started:
            self._pending.extend(n for n in names if n not in self._pending)
            return
        for conn, added in self._assign(names).items():
            if conn.ws is not None and conn.subscribed.is_set():
                await self._send_method(conn, "SUBSCRIBE", added)

    async def unsubscribe(self, streams: Iterable[str]) -> None:
        """Remove streams; their connections stay open for later subscriptions."""
        names = set(streams)
        self._pending = [s for s in self._pending if s not in names]
        for conn in self._conns:
            gone = [s for s in conn.streams if s in names]
            for s in gone:
                del conn.streams[s]
                conn.last_event.pop(s, None)
            if gone and conn.ws is not None and conn.subscribed.is_set():
                await self._send_method(conn, "UNSUBSCRIBE", gone)

    async def _send_method(self, conn: _Connection, method: str, streams: list[str]) -> None:
        ws = conn.ws
        if ws is None:
            return
        for i in range(0, len(streams), self.subscribe_chunk):
            conn.request_id += 1
            frame = msgspec.json.encode({"method": method, "params": streams[i:i + self.subscribe_chunk],
                                         "id": conn.request_id})
            await ws.send(frame.decode())
            if i + self.subscribe_chunk < len(streams):
                await asyncio.sleep(0.2)  # ≤ 5 requests/s, under Binance's 10 incoming messages/s

    # ------------------------------------------------------------------ connection loop

    async def _run(self, conn: _Connection) -> None:
        attempt = 0
        guard = ConnectStormGuard(self.reconnects_per_min)
        while not self._closing:
            wait = guard.check()
            if wait is not None:
                conn.storm_waits += 1
                if wait.first:
                    log.warning("%s: connection %d: %s", self.name, conn.index, wait.describe())
                await asyncio.sleep(wait.seconds)
                if self._closing:
                    break
            guard.record()
            try:
                async with connect(self.url, compression=None, open_timeout=self.open_timeout_s,
                                   ping_interval=self.ping_interval_s, ping_timeout=self.ping_timeout_s,
                                   close_timeout=2.0, max_size=2**22, max_queue=4096) as ws:
                    conn.ws = ws
                    conn.stalled = False
                    conn.last_rx = time.monotonic()
                    conn.last_event.clear()
                    if conn.ever_connected:
                        conn.reconnects += 1
                        log.info("%s: connection %d re-established (%d streams)", self.name, conn.index,
                                 len(conn.streams))
                    conn.ever_connected = True
                    conn.connected.set()
                    subscriber = asyncio.create_task(self._subscribe_all(conn))
                    try:
                        got_data = await self._read(conn, ws)
                    finally:
                        subscriber.cancel()
                    if got_data:
                        attempt = 0
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException) as exc:
                self._warn(conn, f"connect:{type(exc).__name__}",
                           "%s: connection %d to %s failed: %s: %s", self.name, conn.index, self.url,
                           type(exc).__name__, exc)
            finally:
                conn.ws = None
                conn.connected.clear()
                conn.subscribed.clear()
            if self._closing:
                break
            if conn.stalled:
                conn.stalls += 1
                log.warning("%s: connection %d stalled (no data for %.0f s); reconnecting", self.name, conn.index,
                            self.stall_timeout_s)
            delay = random.uniform(0.0, min(self.backoff_max_s, self.backoff_initial_s * 2**attempt))
            attempt = min(attempt + 1, 30)
            await asyncio.sleep(delay)

    async def _subscribe_all(self, conn: _Connection) -> None:
        try:
            await self._send_method(conn, "SUBSCRIBE", list(conn.streams))
            conn.subscribed.set()
        except (OSError, websockets.exceptions.WebSocketException):
            pass  # the read loop sees the closed socket and reconnects

    async def _read(self, conn: _Connection, ws: ClientConnection) -> bool:
        """Read frames until the socket closes; True if any data message arrived."""
        before = conn.messages
        try:
            async for raw in ws:
                conn.frames += 1
                data = self._accept(conn, raw)
                if data is not None:
                    await self._deliver(conn, data)
                if conn.frames % YIELD_EVERY == 0:
                    await asyncio.sleep(0)   # a burst already received must not hold the loop for its whole length
        except websockets.exceptions.ConnectionClosed as exc:
            if not self._closing and not conn.stalled:
                self._warn(conn, "closed", "%s: connection %d closed by peer (%s); reconnecting", self.name,
                           conn.index, exc)
        return conn.messages > before

    def _accept(self, conn: _Connection, raw: str | bytes) -> P.StreamPayload | None:
        """Decode and validate one frame; None (counted, logged once) if it must be dropped."""
        try:
            env = P.ENVELOPE_DECODER.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._control_or_malformed(conn, raw, exc)
            return None
        stream = env.stream
        expected = conn.streams.get(stream)
        data = env.data
        if expected is None:
            conn.dropped_unknown += 1
            self._warn(conn, "unknown", "%s: connection %d: dropped data for unsubscribed stream %r", self.name,
                       conn.index, stream)
            return None
        if type(data) is not expected[1] or data.symbol != expected[0]:
            conn.dropped_malformed += 1
            self._warn(conn, "mismatch", "%s: connection %d: dropped %s payload for %s on stream %r", self.name,
                       conn.index, type(data).__name__, data.symbol, stream)
            return None
        last = conn.last_event.get(stream)
        if last is not None and data.event_time < last:
            conn.dropped_out_of_order += 1
            self._warn(conn, "order", "%s: connection %d: dropped out-of-order event on %r (E %d < %d)", self.name,
                       conn.index, stream, data.event_time, last)
            return None
        if type(data) is P.DepthUpdate and data.is_crossed():
            conn.dropped_crossed += 1
            self._warn(conn, "crossed", "%s: connection %d: dropped crossed/empty book on %r (bid %s, ask %s)",
                       self.name, conn.index, stream, data.best_bid, data.best_ask)
            return None
        conn.last_event[stream] = data.event_time
        conn.messages += 1
        conn.last_rx = time.monotonic()
        return data

    def _control_or_malformed(self, conn: _Connection, raw: str | bytes, exc: Exception) -> None:
        try:
            reply = P.CONTROL_DECODER.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            reply = None
        if reply is not None and (reply.error_code is not None or "result" in _keys(raw)):
            if reply.error_code is not None:
                conn.subscribe_errors += 1
                self._warn(conn, f"error:{reply.error_code}", "%s: connection %d: server error %s: %s (request %s)",
                           self.name, conn.index, reply.error_code, reply.error_msg, reply.id)
            return
        conn.dropped_malformed += 1
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        self._warn(conn, "malformed", "%s: connection %d: dropped malformed frame (%s): %.200s", self.name,
                   conn.index, exc, text)

    async def _deliver(self, conn: _Connection, data: P.StreamPayload) -> None:
        if self._on_message is None:
            assert self._queue is not None
            if self._queue.full():
                self._queue.get_nowait()
                self._dropped_backpressure += 1
            self._queue.put_nowait(data)
            return
        try:
            result = self._on_message(data)
            if self._callback_is_async is None:
                self._callback_is_async = inspect.isawaitable(result)
            if self._callback_is_async and result is not None:
                await result
        except Exception as exc:  # noqa: BLE001 - a consumer bug must not kill the feed
            conn.callback_errors += 1
            self._warn(conn, "callback", "%s: on_message raised %s: %s", self.name, type(exc).__name__, exc)

    def _warn(self, conn: _Connection, kind: str, fmt: str, *args: Any) -> None:
        """Log the first occurrence of ``kind`` per connection; later ones are only counted."""
        if kind not in conn.logged:
            conn.logged.add(kind)
            log.warning(fmt, *args)

    async def _watch(self) -> None:
        """Stall watchdog: close connections with subscriptions and no data for ``stall_timeout_s``."""
        period = max(0.05, min(1.0, self.stall_timeout_s / 4))
        while not self._closing:
            await asyncio.sleep(period)
            now = time.monotonic()
            for conn in self._conns:
                ws = conn.ws
                if ws is None or not conn.streams or conn.stalled:
                    continue
                if now - conn.last_rx > self.stall_timeout_s:
                    conn.stalled = True
                    ws.transport.abort()

    # ------------------------------------------------------------------ consumers

    def __aiter__(self) -> AsyncIterator[P.StreamPayload]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[P.StreamPayload]:
        if self._queue is None:
            raise RuntimeError("MarketStreams was built with on_message; it cannot also be iterated")
        while True:
            yield await self._queue.get()

    def stats(self) -> StreamStats:
        """Counters per connection and in total (``last_message_age_s`` is the freshest connection's)."""
        now = time.monotonic()
        conns = tuple(ConnectionStats(
            index=c.index, url=self.url, streams=len(c.streams), connected=c.ws is not None, frames=c.frames,
            messages=c.messages, reconnects=c.reconnects, stalls=c.stalls, dropped_malformed=c.dropped_malformed,
            dropped_unknown_stream=c.dropped_unknown, dropped_out_of_order=c.dropped_out_of_order,
            dropped_crossed=c.dropped_crossed, subscribe_errors=c.subscribe_errors, callback_errors=c.callback_errors,
            last_message_age_s=(now - c.last_rx) if c.messages else None, storm_waits=c.storm_waits)
            for c in self._conns)
        ages = [c.last_message_age_s for c in conns if c.last_message_age_s is not None]
        return StreamStats(
            streams=sum(c.streams for c in conns), connections=conns, frames=sum(c.frames for c in conns),
            messages=sum(c.messages for c in conns), reconnects=sum(c.reconnects for c in conns),
            stalls=sum(c.stalls for c in conns), dropped_malformed=sum(c.dropped_malformed for c in conns),
            dropped_unknown_stream=sum(c.dropped_unknown_stream for c in conns),
            dropped_out_of_order=sum(c.dropped_out_of_order for c in conns),
            dropped_crossed=sum(c.dropped_crossed for c in conns), dropped_backpressure=self._dropped_backpressure,
            callback_errors=sum(c.callback_errors for c in conns), last_message_age_s=min(ages) if ages else None,
            storm_waits=sum(c.storm_waits for c in conns))


def _keys(raw: str | bytes) -> set[str]:
    """Top-level keys of a JSON object (empty if it is not one); only used on the rare control path."""
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return set()
    return set(obj) if isinstance(obj, dict) else set()
