"""The simulator's WebSocket market streams: Binance's URL layout, methods and broadcast.

URL layout (as on ``wss://fstream.binance.com``, also under ``/public`` and ``/market``):

* ``/ws`` — raw payloads; subscribe with ``{"method": "SUBSCRIBE", ...}``;
* ``/ws/<stream>[/<stream>…]`` — raw payloads of the streams in the path;
* ``/stream?streams=<a>/<b>`` (or ``/stream`` + SUBSCRIBE) — combined payloads
  ``{"stream": "<name>", "data": <payload>}``.

Methods: SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY / GET_PROPERTY
(``combined``), answered ``{"result": …, "id": …}``; errors use Binance's
``{"code": …, "msg": …, "id": …}`` form. A stream name that does not exist (unknown
symbol, kind or interval) is answered with an error and not subscribed.

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
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from dolphin.market.sim.exchange import Exchange

log = logging.getLogger("dolphin.market.sim")

MAX_STREAMS_PER_CLIENT = 1024
_STREAM = re.compile(r"^([a-z0-9]+)@(aggTrade|kline_([0-9]+[smhdw])|depth(5|10|20)(?:@(100ms|250ms|500ms))?|"
                     r"markPrice(?:@(1s))?)$")


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A parsed, valid stream name."""

    name: str
    kind: str
    column: int
    symbol: str
    interval_ms: int = 0
    levels: int = 0
    speed_ms: int = 0


class Client:
    """One WebSocket connection: its framing, streams, outgoing queue and writer task."""

    __slots__ = ("id", "ws", "transport", "combined", "streams", "pending", "wake", "writer", "closed", "sent")

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
        self.kills = 0
        self.changed = asyncio.Event()

    # -- streams --------------------------------------------------------------------------

    def parse(self, name: str) -> StreamSpec | None:
        """The stream a name denotes, or None if this exchange has no such stream."""
        spec = self.specs.get(name)
        if spec is not None:
            return spec
        m = _STREAM.match(name)
        if m is None:
            return None
        ins = self.exchange.source.by_symbol.get(m.group(1).upper())
        if ins is None:
            return None
        kind = m.group(2)
        if kind == "aggTrade":
            spec = StreamSpec(name, "aggTrade", ins.column, ins.symbol)
        elif kind.startswith("kline_"):
            iv = self.exchange.intervals.get(m.group(3))
            if iv is None:
                return None
            spec = StreamSpec(name, "kline", ins.column, ins.symbol, interval_ms=iv)
        elif kind.startswith("depth"):
            speed = {"100ms": 100, "500ms": 500, None: 250, "250ms": 250}[m.group(5)]
            spec = StreamSpec(name, "depth", ins.column, ins.symbol, levels=int(m.group(4)), speed_ms=speed)
        else:
            spec = StreamSpec(name, "markPrice", ins.column, ins.symbol, speed_ms=1000 if m.group(6) else 3000)
        self.specs[name] = spec
        return spec

    def active(self) -> list[StreamSpec]:
        """Streams with at least one subscriber."""
        return [self.specs[name] for name, subs in self.subscribers.items() if subs]

    def subscribe(self, client: Client, names: list[str]) -> list[str]:
        """Subscribe what exists; returns the names that do not."""
        bad = []
        for name in names:
            spec = self.parse(name) if isinstance(name, str) else None
            if spec is None:
                bad.append(str(name))
                continue
            if name in client.streams:
                continue
            if len(client.streams) >= MAX_STREAMS_PER_CLIENT:
                bad.append(name)
                continue
            client.streams.add(name)
            self.subscribers.setdefault(name, set()).add(client)
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
        """Send ``payload`` (one JSON object) to every subscriber of ``stream``, encoded once per framing."""
        subs = self.subscribers.get(stream)
        if not subs:
            return
        self.payloads += 1
        raw: bytes | None = None
        combined: bytes | None = None
        for client in subs:
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

    def kill(self, count: int | None = None) -> int:
        """Abort up to ``count`` client connections server-side (all if None); test and drill hook."""
        victims = list(self.clients.values())[: count if count is not None else None]
        for client in victims:
            self._drop(client)
        self.kills += len(victims)
        return len(victims)

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
            if initial:
                self.subscribe(client, initial)
            try:
                async for msg in ws:
                    if msg.type == WSMsgType.TEXT:
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

    def _method(self, client: Client, text: str) -> dict[str, Any] | None:
        try:
            req = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
        if not isinstance(req, dict):
            return {"code": 3, "msg": "Invalid JSON: expected an object"}
        rid = req.get("id")
        if rid is not None and not (isinstance(rid, int) and rid >= 0) and not isinstance(rid, str):
            return {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer", "id": None}
        method = req.get("method")
        params = req.get("params") or []
        if method == "SUBSCRIBE":
            if not isinstance(params, list):
                return {"code": 2, "msg": "Invalid request: params must be a list", "id": rid}
            bad = self.subscribe(client, params)
            if bad:
                return {"code": 2, "msg": f"Invalid request: unknown stream(s) {', '.join(bad[:5])}", "id": rid}
            return {"result": None, "id": rid}
        if method == "UNSUBSCRIBE":
            self.unsubscribe(client, [p for p in params if isinstance(p, str)] if isinstance(params, list) else [])
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(client.streams), "id": rid}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not isinstance(params, list) or not params or not isinstance(params[0], str):
                return {"code": 2, "msg": "Invalid request: property name must be a string", "id": rid}
            if params[0] != "combined":
                return {"code": 0, "msg": "Unknown property", "id": rid}
            if method == "GET_PROPERTY":
                return {"result": client.combined, "id": rid}
            if len(params) < 2 or not isinstance(params[1], bool):
                return {"code": 1, "msg": "Invalid value type: expected Boolean", "id": rid}
            client.combined = params[1]
            return {"result": None, "id": rid}
        return {"code": 2, "msg": f"Invalid request: unknown variant {method}, expected one of SUBSCRIBE, "
                                  "UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY", "id": rid}

    def routes(self) -> list[web.RouteDef]:
        routes = []
        for prefix in ("", "/public", "/market"):
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
                "payloads": self.payloads, "slowDisconnects": self.slow_disconnects, "kills": self.kills}
