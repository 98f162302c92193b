"""The simulator's WebSocket streams: Binance's URL layout, methods, limits and broadcast.

URL layout (as on ``wss://fstream.binance.com``, also under ``/public``, ``/market`` and
``/private``):

* ``/ws`` — raw payloads; subscribe with ``{"method": "SUBSCRIBE", ...}``;
* ``/ws/<stream>[/<stream>…]`` — raw payloads of the streams in the path;
* ``/stream?streams=<a>/<b>`` (or ``/stream`` + SUBSCRIBE) — combined payloads
  ``{"stream": "<name>", "data": <payload>}``;
* a listen key is a stream name too (``/ws/<listenKey>``, SUBSCRIBE ``[<listenKey>]``),
  and ``?listenKey=<key>`` on any of the paths adds it (``/private/ws?listenKey=…``).

Streams: ``<s>@aggTrade``, ``<s>@trade``, ``<s>@kline_<i>``,
``<pair>_perpetual@continuousKline_<i>``, ``<s>@depth<5|10|20>[@100ms|@500ms]``,
``<s>@depth[@100ms|@500ms]`` (diff), ``<s>@bookTicker``, ``!bookTicker``,
``<s>@ticker``, ``!ticker@arr``, ``<s>@miniTicker``, ``!miniTicker@arr``,
``<s>@markPrice[@1s]``, ``!markPrice@arr[@1s]``, ``<s>@forceOrder``, ``!forceOrder@arr``.

Methods: SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY / GET_PROPERTY
(``combined``), answered ``{"result": …, "id": …}``; errors as the live streams send
them, ``{"error": {"code": …, "msg": …}, "id": …}``. A stream name that does not exist
(unknown symbol, kind, interval, or a lapsed listen key) is answered
``{"error": {"code": 2, "msg": "Invalid request: invalid stream"}}`` and not subscribed;
named in the URL, the connection gets the same error and is closed (1008) — a bot with a
typo fails at once instead of waiting forever. (Tokens that are no stream name at all,
like ccxt's ``/ws/0``, are ignored, as on the live venue.)

Limits, as Binance enforces them: at most 1,024 streams per connection (a SUBSCRIBE that
would pass it is refused whole; a URL naming more is closed), and at most 10 incoming
messages per second per connection — the 11th within a second closes the connection
with 1008 "Too many requests" (JSON control messages count; ping/pong frames are
answered by the server library and not counted).

Broadcast: a payload is formatted once per stream per emission and encoded once per
framing (raw / combined); the same bytes object goes to every subscriber. Each client
has a writer task draining its own queue, so a slow client never stalls the others; a
client whose queue passes ``max_pending`` frames is disconnected (Binance drops slow
consumers too). The server pings every 3 minutes and drops clients that do not pong.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from dolphin.market.sim.exchange import Exchange

log = logging.getLogger("dolphin.market.sim")

MAX_STREAMS_PER_CLIENT = 1024
MAX_MESSAGES_PER_SECOND = 10
_SYMBOL_STREAM = re.compile(
    r"^([a-z0-9]+)@(aggTrade|trade|bookTicker|ticker|miniTicker|forceOrder|kline_([0-9]+[smhdw])|"
    r"depth(5|10|20)?(?:@(100ms|250ms|500ms))?|markPrice(?:@(1s))?)$")
_CONTINUOUS = re.compile(r"^([a-z0-9]+)_perpetual@continuousKline_([0-9]+[smhdw])$")
_ALL_MARKET = {"!bookTicker": ("bookTickerAll", 0), "!ticker@arr": ("tickerArr", 1000),
               "!miniTicker@arr": ("miniTickerArr", 1000), "!markPrice@arr": ("markPriceArr", 3000),
               "!markPrice@arr@1s": ("markPriceArr", 1000), "!forceOrder@arr": ("forceOrderAll", 1000)}


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A parsed, valid stream name. ``column`` is -1 for all-market and user-data streams."""

    name: str
    kind: str
    column: int
    symbol: str
    interval_ms: int = 0
    levels: int = 0
    speed_ms: int = 0


class Client:
    """One WebSocket connection: its framing, streams, outgoing queue and writer task."""

    __slots__ = ("id", "ws", "transport", "combined", "streams", "pending", "wake", "writer", "closed", "sent",
                 "recent")

    def __init__(self, client_id: int, ws: web.WebSocketResponse, combined: bool, transport: Any) -> None:
        self.id = client_id
        self.ws = ws
        self.transport = transport
        self.combined = combined
        self.streams: set[str] = set()
        self.pending: list[bytes] = []
        self.wake = asyncio.Event()
        self.writer: asyncio.Task[None] | None = None
        self.closed = False
        self.sent = 0
        self.recent: deque[float] = deque()

    def too_fast(self, now: float) -> bool:
        """Count one incoming message; True once more than 10 arrived within a second."""
        self.recent.append(now)
        while self.recent and now - self.recent[0] >= 1.0:
            self.recent.popleft()
        return len(self.recent) > MAX_MESSAGES_PER_SECOND


class StreamHub:
    """Connections, subscriptions and encode-once broadcast."""

    def __init__(self, exchange: Exchange, *, max_pending: int = 50_000, heartbeat_s: float = 180.0) -> None:
        self.exchange = exchange
        self.max_pending = max_pending
        self.heartbeat_s = heartbeat_s
        self.clients: dict[int, Client] = {}
        self.subscribers: dict[str, set[Client]] = {}
        self.specs: dict[str, StreamSpec] = {}
        self._next_id = 0
        self.frames_sent = 0
        self.payloads = 0
        self.slow_disconnects = 0
        self.rate_disconnects = 0
        self.refused_streams = 0
        self.kills = 0
        self.changed = asyncio.Event()
        exchange.userdata.publish = self.publish
        exchange.userdata.close_readers = self.close_key

    # -- streams --------------------------------------------------------------------------

    def parse(self, name: str) -> StreamSpec | None:
        """The stream a name denotes, or None if this exchange has no such stream."""
        spec = self.specs.get(name)
        if spec is not None:
            return spec
        if not isinstance(name, str):
            return None
        spec = self._parse(name)
        if spec is not None and spec.kind != "user":
            self.specs[name] = spec
        return spec

    def _parse(self, name: str) -> StreamSpec | None:
        ex = self.exchange
        if name in _ALL_MARKET:
            kind, speed = _ALL_MARKET[name]
            return StreamSpec(name, kind, -1, "", speed_ms=speed)
        m = _CONTINUOUS.match(name)
        if m is not None:
            ins = ex.source.by_symbol.get(m.group(1).upper())
            iv = ex.intervals.get(m.group(2))
            if ins is None or iv is None:
                return None
            return StreamSpec(name, "continuousKline", ins.column, ins.symbol, interval_ms=iv)
        m = _SYMBOL_STREAM.match(name)
        if m is None:
            return StreamSpec(name, "user", -1, "") if ex.userdata.is_active(name) else None
        ins = ex.source.by_symbol.get(m.group(1).upper())
        if ins is None:
            return None
        kind = m.group(2)
        if kind.startswith("kline_"):
            iv = ex.intervals.get(m.group(3))
            if iv is None:
                return None
            return StreamSpec(name, "kline", ins.column, ins.symbol, interval_ms=iv)
        if kind.startswith("depth"):
            speed = {"100ms": 100, "500ms": 500, None: 250, "250ms": 250}[m.group(5)]
            if m.group(4) is None:
                return StreamSpec(name, "diffDepth", ins.column, ins.symbol, speed_ms=speed)
            return StreamSpec(name, "depth", ins.column, ins.symbol, levels=int(m.group(4)), speed_ms=speed)
        if kind.startswith("markPrice"):
            return StreamSpec(name, "markPrice", ins.column, ins.symbol, speed_ms=1000 if m.group(6) else 3000)
        speeds = {"ticker": 500, "miniTicker": 500, "forceOrder": 1000}
        return StreamSpec(name, kind, ins.column, ins.symbol, speed_ms=speeds.get(kind, 0))

    def active(self) -> list[StreamSpec]:
        """Market streams with at least one subscriber."""
        out = []
        for name, subs in self.subscribers.items():
            spec = self.specs.get(name)
            if subs and spec is not None:
                out.append(spec)
        return out

    def subscribe(self, client: Client, names: list[Any]) -> list[str]:
        """Subscribe what exists; returns the names that do not (nothing at all past the stream cap)."""
        bad: list[str] = []
        good: list[str] = []
        for name in names:
            spec = self.parse(name) if isinstance(name, str) else None
            if spec is None:
                bad.append(str(name))
            elif name not in client.streams and name not in good:
                good.append(name)
        if len(client.streams) + len(good) > MAX_STREAMS_PER_CLIENT:
            self.refused_streams += len(good)
            raise TooManyStreams(len(client.streams) + len(good))
        for name in good:
            client.streams.add(name)
            self.subscribers.setdefault(name, set()).add(client)
        if good:
            self.changed.set()
        return bad

    def unsubscribe(self, client: Client, names: list[str]) -> None:
        for name in names:
            if name in client.streams:
                client.streams.discard(name)
                subs = self.subscribers.get(name)
                if subs is not None:
                    subs.discard(client)
                    if not subs:
                        del self.subscribers[name]
        self.changed.set()

    # -- broadcast ------------------------------------------------------------------------

    def publish(self, stream: str, payload: str) -> None:
        """Send ``payload`` (one JSON value) to every subscriber of ``stream``, encoded once per framing."""
        subs = self.subscribers.get(stream)
        if not subs:
            return
        self.payloads += 1
        raw: bytes | None = None
        combined: bytes | None = None
        for client in list(subs):
            if client.closed:
                continue
            if client.combined:
                if combined is None:
                    combined = f'{{"stream":"{stream}","data":{payload}}}'.encode()
                frame = combined
            else:
                if raw is None:
                    raw = payload.encode()
                frame = raw
            client.pending.append(frame)
            if not client.wake.is_set():
                client.wake.set()
            if len(client.pending) > self.max_pending and not client.closed:
                self.slow_disconnects += 1
                log.warning("stream client %d too slow (%d frames queued): disconnecting", client.id,
                            len(client.pending))
                self._drop(client)

    async def _write(self, client: Client) -> None:
        ws = client.ws
        try:
            while not client.closed:
                await client.wake.wait()
                client.wake.clear()
                frames, client.pending = client.pending, []
                for frame in frames:
                    await ws.send_frame(frame, WSMsgType.TEXT)
                client.sent += len(frames)
                self.frames_sent += len(frames)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass

    def _drop(self, client: Client) -> None:
        client.closed = True
        client.wake.set()
        if client.transport is not None:
            client.transport.abort()

    def _is_user(self, client: Client) -> bool:
        return any(self.specs.get(s) is None for s in client.streams)

    def kill(self, count: int | None = None, target: str = "all") -> int:
        """Abort up to ``count`` connections server-side (all if None); ``target`` market | user | all."""
        victims = [c for c in self.clients.values()
                   if target == "all" or (target == "user") == self._is_user(c)]
        victims = victims[: count if count is not None else None]
        for client in victims:
            self._drop(client)
        self.kills += len(victims)
        return len(victims)

    def close_key(self, key: str) -> None:
        """A listen key was deleted: its readers' connections close."""
        for client in list(self.subscribers.get(key, ())):
            self._drop(client)

    # -- connections ----------------------------------------------------------------------

    def handler(self, combined_path: bool) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            ws = web.WebSocketResponse(compress=False, heartbeat=self.heartbeat_s, max_msg_size=64 * 1024)
            await ws.prepare(request)
            self._next_id += 1
            client = Client(self._next_id, ws, combined_path, request.transport)
            self.clients[client.id] = client
            client.writer = asyncio.create_task(self._write(client), name=f"sim-ws-writer-{client.id}")
            initial: list[str] = []
            tail = request.match_info.get("tail", "")
            if tail:
                initial = [s for s in tail.split("/") if s]
            if combined_path and request.query.get("streams"):
                initial = [s for s in request.query["streams"].split("/") if s]
            if request.query.get("listenKey"):
                initial.append(request.query["listenKey"])
            try:
                if initial and not await self._initial(client, initial):
                    return ws
                async for msg in ws:
                    if msg.type == WSMsgType.TEXT:
                        if client.too_fast(time.monotonic()):
                            self.rate_disconnects += 1
                            log.info("stream client %d sent more than %d messages in a second: closing", client.id,
                                     MAX_MESSAGES_PER_SECOND)
                            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Too many requests")
                            break
                        reply = self._method(client, msg.data)
                        if reply is not None:
                            await ws.send_frame(msgspec.json.encode(reply), WSMsgType.TEXT)
                    elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                        break
            except (ConnectionError, RuntimeError):
                pass
            finally:
                client.closed = True
                client.wake.set()
                self.unsubscribe(client, list(client.streams))
                self.clients.pop(client.id, None)
                if client.writer is not None:
                    client.writer.cancel()
                    try:
                        await client.writer
                    except asyncio.CancelledError:
                        pass
            return ws
        return handle

    async def _initial(self, client: Client, names: list[str]) -> bool:
        """Subscribe the streams named in the URL.

        As on the live venue, a token that is not a stream name at all (ccxt connects to
        ``/ws/0`` and then SUBSCRIBEs) is ignored. A *stream* name that does not exist
        (``btcusdt@aggtrade``, a lapsed listen key in ``?listenKey=``) gets Binance's error
        and the connection is closed (1008): a bot with a typo fails at once instead of
        waiting forever — a deliberate difference from the live venue, which stays silent.
        """
        ws = client.ws
        try:
            bad = self.subscribe(client, names)
        except TooManyStreams as exc:
            await ws.send_frame(msgspec.json.encode(ws_error(2, str(exc), None)), WSMsgType.TEXT)
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Too many streams")
            return False
        loud = [b for b in bad if "@" in b or b.startswith("!") or len(b) >= 32]
        if bad:
            self.refused_streams += len(bad)
            log.info("stream client %d named unknown stream(s) in its URL: %s", client.id, ", ".join(bad[:5]))
        if loud:
            self.unsubscribe(client, list(client.streams))
            await ws.send_frame(msgspec.json.encode(ws_error(2, INVALID_STREAM, None)), WSMsgType.TEXT)
            reason = f"unknown stream(s): {', '.join(loud[:3])}"
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=reason.encode()[:120])
            return False
        return True

    def _method(self, client: Client, text: str) -> dict[str, Any] | None:
        try:
            req = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return ws_error(3, "Invalid JSON: expected value at line 1 column 1", None)
        if not isinstance(req, dict):
            return ws_error(3, "Invalid JSON: expected an object", None)
        rid = req.get("id")
        if rid is not None and not (isinstance(rid, int) and rid >= 0) and not isinstance(rid, str):
            return ws_error(2, "Invalid request: request ID must be an unsigned integer", None)
        method = req.get("method")
        params = req.get("params") or []
        if method == "SUBSCRIBE":
            if not isinstance(params, list):
                return ws_error(2, "Invalid request: params must be a list", rid)
            try:
                bad = self.subscribe(client, params)
            except TooManyStreams as exc:
                return ws_error(2, str(exc), rid)
            if bad:
                self.refused_streams += len(bad)
                log.info("stream client %d asked for unknown stream(s): %s", client.id, ", ".join(bad[:5]))
                return ws_error(2, INVALID_STREAM, rid)
            return {"result": None, "id": rid}
        if method == "UNSUBSCRIBE":
            self.unsubscribe(client, [p for p in params if isinstance(p, str)] if isinstance(params, list) else [])
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(client.streams), "id": rid}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not isinstance(params, list) or not params or not isinstance(params[0], str):
                return ws_error(2, "Invalid request: property name must be a string", rid)
            if params[0] != "combined":
                return ws_error(0, "Unknown property", rid)
            if method == "GET_PROPERTY":
                return {"result": client.combined, "id": rid}
            if len(params) < 2 or not isinstance(params[1], bool):
                return ws_error(1, "Invalid value type: expected Boolean", rid)
            client.combined = params[1]
            return {"result": None, "id": rid}
        return ws_error(2, f"Invalid request: unknown variant {method}, expected one of SUBSCRIBE, UNSUBSCRIBE, "
                           "LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY", rid)

    def routes(self) -> list[web.RouteDef]:
        routes = []
        for prefix in ("", "/public", "/market", "/private"):
            routes += [web.get(f"{prefix}/ws", self.handler(False)),
                       web.get(f"{prefix}/ws/{{tail:.+}}", self.handler(False)),
                       web.get(f"{prefix}/stream", self.handler(True))]
        return routes

    async def close(self) -> None:
        for client in list(self.clients.values()):
            client.closed = True
            client.wake.set()
            try:
                await client.ws.close()
            except (ConnectionError, RuntimeError):
                pass

    def stats(self) -> dict[str, Any]:
        return {"wsClients": len(self.clients), "streams": len(self.subscribers), "framesSent": self.frames_sent,
                "payloads": self.payloads, "slowDisconnects": self.slow_disconnects,
                "rateDisconnects": self.rate_disconnects, "refusedStreams": self.refused_streams, "kills": self.kills}


INVALID_STREAM = "Invalid request: invalid stream"


def ws_error(code: int, msg: str, rid: Any) -> dict[str, Any]:
    """A WebSocket request error as the live venue sends it: ``{"error": {"code", "msg"}, "id"}``.

    (Binance's reference shows the error object flat, ``{"code", "msg", "id"}``; the live
    streams nest it under ``error``, and clients such as ccxt read it there.)
    """
    return {"error": {"code": code, "msg": msg}, "id": rid}


class TooManyStreams(Exception):
    """A subscription would take a connection past 1,024 streams."""

    def __init__(self, wanted: int) -> None:
        super().__init__(f"Invalid request: too many streams ({wanted}); a connection can listen to at most "
                         f"{MAX_STREAMS_PER_CLIENT} streams")
