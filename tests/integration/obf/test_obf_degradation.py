"""OBF when things go wrong: a bus outage (circuit, fallback file, recovery), bad frames, a silent feed."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import WSMsgType, web

from dolphin.bus import ObfStatus, ThreadQueue, schema, subscribe
from dolphin.bus.member import EmbeddedMember
from dolphin.bus.ob_feed import STALE_MS, ObView, freshest
from dolphin.enums import CircuitState
from dolphin.market.sim import SimConfig, SimExchange
from dolphin.services.obf import ObfOptions
from dolphin.services.obf.service import STATUS_FILE
from dolphin.store.ob_cache import CACHE_DIR, ObFallback, cache_path, read_cache, read_fallback
from tests.support import free_port

from .support import BusReader, ObfThread, TraderObReader, wait_until

pytestmark = [pytest.mark.degradation]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "binance"


def _status_file(home: Path) -> ObfStatus:
    return msgspec.json.decode((home / CACHE_DIR / STATUS_FILE).read_bytes(), type=ObfStatus)


def test_a_bus_outage_opens_the_circuit_feeds_the_fallback_file_and_heals_by_itself(
        member: EmbeddedMember, runtime_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The member is stopped until the fallback file has followed the market for 10 s of market time, and for
    more than `STALE_MS` past the last bar the bus delivered (~a few s of wall time at speed 5: the issue's 30 s
    outage, shortened; what it proves does not depend on the length). The client's connect timeout is 2 s, so
    the outage also outlives OBF's client and the daemon builds a new one.

    Beside it, the trader's OB read path (`TraderObReader`: `ObFeed` on the bus through the asyncio client +
    `FallbackReader`, through `ObFeed.at_or_fallback` as `TraderService._ob_view`) follows the bus before the
    outage, reads the fallback file during it, and the bus again once the circuit has closed."""
    monkeypatch.setenv("DOLPHIN_HZ_CONNECT_TIMEOUT", "2")
    with SimExchange(SimConfig(port=0, symbols=50, speed=5.0)) as sim:
        obf = ObfThread(runtime_root, ObfOptions(
            rest_url=sim.rest_url, ws_url=sim.ws_url, cadence="100ms", warmup_s=0.0, snapshot_interval_s=1.0,
            status_interval_s=0.25, push_timeout_s=0.5, breaker_backoff_s=0.5, breaker_backoff_max_s=2.0)).start()
        trader: TraderObReader | None = None
        try:
            wait_until(lambda: obf.stats.publisher is not None and obf.stats.publisher.pushes >= 3
                       and obf.stats.snapshots >= 1, 60, what="pushes before the outage")
            pub = obf.stats.publisher
            assert cache_path(runtime_root).exists() is False            # no outage, no fallback file
            trader = TraderObReader(member.address, runtime_root)
            before = wait_until(lambda: trader.newest_bar_ms, 30, what="the trader's feed following the shards")
            view, used, _ = trader.view(before)
            assert not used and freshest(view) == before and view.features      # the bus's bars
            port = member.port
            member.stop()
            ingested = obf.messages
            first = wait_until(lambda: read_fallback(runtime_root), 60, what="the fallback file")
            assert pub.breaker.opens == 1 and pub.state is not CircuitState.CLOSED
            assert pub.push_failures >= 5 and len(first.features) == 50 and first.macro is not None
            first_bar = first.macro.bar_ms
            bus_last = trader.newest_bar_ms              # the last bar the trader's feed heard before the outage
            assert bus_last is not None
            enough = max(first_bar + 10_000, bus_last + STALE_MS + 5_000)
            later = wait_until(lambda: (f := read_fallback(runtime_root)) and f.macro is not None
                               and f.macro.bar_ms >= enough and f, 60, what="the file to follow the market")
            assert all(f.bar_ms == later.macro.bar_ms for f in later.features.values())
            assert obf.messages > ingested + 500 and obf.stats.bars_closed > 0    # ingestion never stopped

            def fallback_step() -> tuple[int, ObView, ObFallback] | None:
                """A step of the bar closing at the file's bar: the trader's view, and the file as it read it.
                (The file moves on every second; a step that read a version newer than its close retries.)"""
                now = read_fallback(runtime_root)
                assert now is not None and now.macro is not None
                view, used, read = trader.view(now.macro.bar_ms)
                return (now.macro.bar_ms, view, read) if used and read is not None else None

            close, view, read = wait_until(fallback_step, 30, what="the trader's step to read the fallback file")
            assert close - bus_last > STALE_MS and trader.newest_bar_ms == bus_last   # the bus is behind, silent
            assert read.macro is not None and view.macro == read.macro and read.macro.bar_ms == close
            assert len(view.features) == 50 and view.features == read.features       # the file's values, all of them
            assert _status_file(runtime_root).circuit in ("open", "half_open")
            with EmbeddedMember(port=port) as again:
                wait_until(lambda: pub.state is CircuitState.CLOSED, 60, what="the circuit to close")
                closed = wait_until(lambda: (c := read_cache(runtime_root)) and c.circuit == "closed" and c, 30,
                                    what="the fallback file to say the bus is back")
                assert closed.written_at >= later.written_at and closed.bar_ms is not None
                reader = BusReader(again.address)
                try:
                    macro = wait_until(lambda: (m := reader.get(schema.OB_MACRO_LATEST)) and
                                       m.bar_ms > later.macro.bar_ms and m, 30, what="fresh bars on the bus")
                    assert reader.shards.get_asset("BTCUSDT") is not None
                    wait_until(lambda: (s := reader.get(schema.OBF_STATUS)) and s.circuit == "closed", 30,
                               what="the status back on the bus")
                    assert macro.assets == 50
                finally:
                    reader.close()
                # the trader's client rode the outage out: its listeners hear the bus again, the file is not read
                after = wait_until(lambda: (n := trader.newest_bar_ms) and n > closed.bar_ms and n, 60,
                                   what="the trader's feed following the bus again")
                view, used, read = trader.view(after)
                assert not used and read is None and freshest(view) == after
            assert obf.stats.stalls == 0 and pub.breaker.opens == 1
        finally:
            if trader is not None:
                trader.close()
            obf.stop()


def _envelope(stream: str, data: dict[str, Any]) -> str:
    return json.dumps({"stream": stream, "data": data})


class ScriptedVenue:
    """A WebSocket server that acks SUBSCRIBE, then sends a script of frames once, then stays silent."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = frames
        self.subscribes = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        async def handle(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                req = json.loads(msg.data)
                await ws.send_str(json.dumps({"result": None, "id": req.get("id")}))
                self.subscribes += 1
                if self.subscribes == 1:
                    for f in self.frames:
                        await ws.send_str(f)
            return ws

        app = web.Application()
        app.router.add_get("/stream", handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"ws://{host}:{port}"

    def __enter__(self) -> ScriptedVenue:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def test_bad_frames_are_counted_logged_once_and_dropped_and_a_silent_feed_is_a_stall(
        member: EmbeddedMember, runtime_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    depth = json.loads((FIXTURES / "ws_depth5.json").read_text())
    e0 = (depth["E"] // 5_000 + 1) * 5_000                      # a bar boundary
    btc, eth = "btcusdt@depth5@100ms", "ethusdt@depth5@100ms"

    def book(symbol: str, e: int, **changes: Any) -> dict[str, Any]:
        return {**depth, "s": symbol, "E": e, "T": e, **changes}

    nan_sizes = [[p, "NaN"] for p, _ in depth["b"]]
    frames = [
        _envelope(btc, book("BTCUSDT", e0 + 10)),                                       # good
        _envelope(btc, book("BTCUSDT", e0 + 20))[:60],                                  # truncated JSON
        *[_envelope(btc, book("BTCUSDT", e0 + 30 + i, b=nan_sizes)) for i in range(3)],  # NaN sizes, three times
        _envelope(btc, book("BTCUSDT", e0 + 40, a=[["7000.00", "1"]])),                # crossed
        _envelope("dogeusdt@depth5@100ms", book("DOGEUSDT", e0 + 50)),                 # a symbol not subscribed
        _envelope(eth, book("DOGEUSDT", e0 + 60)),                                      # wrong symbol on a stream
        "not json at all",
        _envelope(eth, book("ETHUSDT", e0 + 70)),                                       # good
        _envelope(btc, book("BTCUSDT", e0 + 5_010)),                                    # good, next bar: closes one
    ]
    with ScriptedVenue(frames) as venue, caplog.at_level(logging.WARNING):
        obf = ObfThread(runtime_root, ObfOptions(rest_url="http://127.0.0.1:9", ws_url=venue.url,
                                                 symbols=("BTCUSDT", "ETHUSDT"), cadence="100ms", warmup_s=0.0,
                                                 stall_timeout_s=1.0, status_interval_s=0.25)).start()
        try:
            wait_until(lambda: obf.stats.bars_closed >= 1, 30, what="the bar the good books close")
            wait_until(lambda: obf.stats.stalls >= 1 and venue.subscribes >= 2, 30,
                       what="a stall alert and the resubscription")
            assert obf.alive and obf.daemon is not None
            status = obf.daemon.status()
        finally:
            obf.stop()
    dropped = status.dropped
    assert dropped["bad level"] == 3 and dropped["crossed"] == 1 and dropped["unknown stream"] == 1
    assert dropped["malformed"] == 3                               # truncated, wrong symbol, not JSON
    assert status.messages >= 6 and status.stalls >= 1 and status.reconnects >= 1
    books = obf.stats.ingest
    assert books.latest["BTCUSDT"].event_time >= e0 + 10 and books.latest["ETHUSDT"].event_time == e0 + 70
    lines = [r.getMessage() for r in caplog.records]
    assert sum("bad level book of BTCUSDT" in line for line in lines) == 1      # logged once, counted three times
    assert any("stall" in line for line in lines)


def test_while_the_venue_is_not_answering_the_heartbeat_says_the_warm_up_has_not_begun(
        member: EmbeddedMember, runtime_root: Path) -> None:
    """A family's simulator builds its history before it listens: until the venue answers, OBF's heartbeat
    carries its warm-up at 0 of N s (MHS: WARMING, not a missing universe), and nothing is published."""
    reader = BusReader(member.address)
    beats = ThreadQueue()
    sub = subscribe(reader.client, schema.HEARTBEAT, beats, key=schema.heartbeat_key("obf"), source="obf test")
    nowhere = f"127.0.0.1:{free_port()}"            # nothing listens there
    obf = ObfThread(runtime_root, ObfOptions(rest_url=f"http://{nowhere}", ws_url=f"ws://{nowhere}", warmup_s=60.0),
                    heartbeat_s=0.2).start()
    try:
        beat = beats.get(timeout=60).payload
        assert beat.warmup is not None and (beat.warmup.done, beat.warmup.total) == (0, 60)
        assert beat.warmup.describe() == "0 of 60 s"
        assert obf.daemon is None and reader.get(schema.OBF_UNIVERSE_LATEST) is None
    finally:
        obf.stop()
        sub.close()
        reader.close()
