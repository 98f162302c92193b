"""Diff depth: a local order book kept from ``@depth`` the documented way equals the REST snapshot.

Binance's procedure, unchanged: open the stream and buffer; fetch ``/fapi/v1/depth``
(``lastUpdateId`` L); drop events with ``u < L``; the first event kept has
``U ≤ L ≤ u``; every next event's ``pu`` is the previous ``u`` (else start over). At
random checkpoints the book kept from the stream, as it stood at update id L, must equal
a fresh snapshot with ``lastUpdateId`` L, level for level. A server-side disconnect is
recovered the same way.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import aiohttp
import websockets

from .conftest import small_sim

SYMBOL = "BTCUSDT"


class LocalBook:
    """An order book kept from diff events over a snapshot, remembering its state at each update id."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.last = int(snapshot["lastUpdateId"])
        self.bids = {p: q for p, q in snapshot["bids"]}
        self.asks = {p: q for p, q in snapshot["asks"]}
        self.synced = False
        self.history: dict[int, tuple[dict[str, str], dict[str, str]]] = {}

    def apply(self, event: dict[str, Any]) -> bool:
        """Apply one event; False if the sequence broke (the caller resyncs)."""
        if event["u"] < self.last:
            return True
        if not self.synced:
            if not event["U"] <= self.last <= event["u"]:
                return False
            self.synced = True
        elif event["pu"] != self.last:
            return False
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for price, qty in levels:
                if float(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.last = event["u"]
        self.history[self.last] = (dict(self.bids), dict(self.asks))
        if len(self.history) > 200:
            del self.history[min(self.history)]
        return True


def as_map(snapshot: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    return {p: q for p, q in snapshot["bids"]}, {p: q for p, q in snapshot["asks"]}


class Follower:
    """One connection's local book, resynced from a fresh snapshot whenever the sequence breaks."""

    def __init__(self, ws: Any, snapshot: Any) -> None:
        self.ws = ws
        self.snapshot = snapshot
        self.book: LocalBook | None = None
        self.resyncs = 0

    async def start(self) -> None:
        first = json.loads(await asyncio.wait_for(self.ws.recv(), 30))  # buffered before the snapshot
        self.book = LocalBook(await self.snapshot())
        await self._apply(first)
        await self.pump(lambda book: book.synced)

    async def _apply(self, event: dict[str, Any]) -> None:
        assert event["e"] == "depthUpdate" and event["s"] == SYMBOL
        assert self.book is not None
        if not self.book.apply(event):  # out of sync: start over from a snapshot
            self.resyncs += 1
            self.book = LocalBook(await self.snapshot())

    async def pump(self, until: Any) -> None:
        while self.book is None or not until(self.book):
            await self._apply(json.loads(await asyncio.wait_for(self.ws.recv(), 30)))


def test_local_book_from_the_diff_stream_equals_the_rest_snapshot() -> None:
    rng = random.Random(16)
    with small_sim(symbols=5, speed=1.0) as sim:
        async def go() -> None:
            async with aiohttp.ClientSession() as http:
                async def snapshot() -> dict[str, Any]:
                    async with http.get(f"{sim.rest_url}/fapi/v1/depth", params={"symbol": SYMBOL,
                                                                                  "limit": "1000"}) as resp:
                        return await resp.json()

                checked = resyncs = 0
                for connection in range(2):
                    async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms", max_size=None) as ws:
                        follower = Follower(ws, snapshot)
                        await follower.start()
                        for _ in range(4):
                            deadline = time.monotonic() + rng.uniform(0.1, 0.7)
                            await follower.pump(lambda book, d=deadline: time.monotonic() >= d)
                            snap = await snapshot()
                            target = snap["lastUpdateId"]
                            await follower.pump(lambda book, t=target: book.last >= t)
                            assert follower.book is not None
                            assert target in follower.book.history, "the 100 ms stream covers every bucket"
                            assert follower.book.history[target] == as_map(snap)
                            checked += 1
                        resyncs += follower.resyncs
                        if connection == 0:
                            sim.kill_ws_connections()  # the server drops us: reconnect and resync
                            try:
                                while True:
                                    await asyncio.wait_for(ws.recv(), 30)
                            except websockets.ConnectionClosed:
                                pass
                assert checked == 8 and resyncs <= 2

        asyncio.run(go())


def test_slower_diff_streams_chain_and_cover_several_buckets() -> None:
    """@depth (250 ms) and @depth@500ms chain U/u/pu; their events carry every level that changed."""
    with small_sim(symbols=5, speed=1.0) as sim:
        async def go() -> None:
            async with websockets.connect(f"{sim.ws_url}/stream?streams=ethusdt@depth/ethusdt@depth@500ms",
                                          max_size=None) as ws:
                last: dict[str, int] = {}
                spans: dict[str, list[int]] = {"ethusdt@depth": [], "ethusdt@depth@500ms": []}
                while min(len(v) for v in spans.values()) < 6:
                    env = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    data = env["data"]
                    if env["stream"] in last:
                        assert data["pu"] == last[env["stream"]] and data["U"] == data["pu"] + 1
                    last[env["stream"]] = data["u"]
                    spans[env["stream"]].append(data["u"] - data["U"] + 1)
                assert max(spans["ethusdt@depth@500ms"][1:]) >= 4  # ~5 buckets per event
                assert max(spans["ethusdt@depth"][1:]) >= 2

        asyncio.run(go())
