"""MarketStreams against the simulator and against hostile servers, over real sockets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from dolphin.market import payloads as P
from dolphin.market.rest import BinanceRest
from dolphin.market.sim import SimExchange
from dolphin.market.streams import MarketStreams
from dolphin.market.symbols import universe

from .conftest import run, small_sim, until

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "binance"


def test_540_depth_streams_over_three_connections_and_a_server_side_kill(sim540: SimExchange) -> None:
    streams = [f"{s.lower()}@depth5@100ms" for s in universe(540)]
    seen: set[str] = set()

    async def go() -> None:
        def on_message(msg: P.StreamPayload) -> None:
            assert isinstance(msg, P.DepthUpdate) and not msg.is_crossed()
            seen.add(msg.symbol)

        async with MarketStreams(sim540.ws_url, streams, on_message=on_message, backoff_initial_s=0.2) as ms:
            await ms.wait_connected(60)
            await until(lambda: len(seen) == 540, 60, "a book from every one of the 540 symbols")
            st = ms.stats()
            assert len(st.connections) == 3 and [c.streams for c in st.connections] == [200, 200, 140]
            assert st.streams == 540 and st.dropped == 0 and st.reconnects == 0
            assert all(c.connected and c.messages > 0 for c in st.connections)
            assert st.last_message_age_s is not None and st.last_message_age_s < 30

            assert sim540.kill_ws_connections(1) == 1
            await until(lambda: ms.stats().reconnects >= 1, 60, "the killed connection to come back")
            killed = next(c for c in ms.stats().connections if c.reconnects)
            after = killed.messages
            await until(lambda: ms.stats().connections[killed.index].messages > after + 200, 60,
                        "data on the resubscribed connection")
            st = ms.stats()
            assert st.reconnects == 1 and all(c.connected for c in st.connections) and st.dropped == 0
        assert all(not c.connected for c in ms.stats().connections)

    run(go())


def test_kline_closes_are_never_skipped_and_trades_rebuild_the_bars() -> None:
    with small_sim(speed=20.0) as sim:
        closes: list[P.KlineBar] = []
        trades: list[P.AggTrade] = []

        async def go() -> None:
            def on_message(msg: P.StreamPayload) -> None:
                if isinstance(msg, P.KlineEvent) and msg.kline.closed:
                    closes.append(msg.kline)
                elif isinstance(msg, P.AggTrade):
                    trades.append(msg)

            async with MarketStreams(sim.ws_url, ["btcusdt@kline_5s", "btcusdt@aggTrade"],
                                     on_message=on_message) as ms:
                await ms.wait_connected(30)
                await until(lambda: len(closes) >= 8, 60, "eight 5 s closes at speed 20")
                assert ms.stats().dropped == 0
            opens = [k.start_time for k in closes]
            assert opens == list(range(opens[0], opens[0] + 5000 * len(opens), 5000))  # none skipped
            async with BinanceRest(sim.rest_url) as rest:
                rows = await rest.klines("BTCUSDT", "5s", start_ms=opens[0], limit=len(opens))
            for k, row in zip(closes, rows):
                assert (k.open, k.high, k.low, k.close, k.volume, k.trades) == (
                    row.open, row.high, row.low, row.close, row.volume, row.trades)
                inside = [t for t in trades if k.start_time <= t.trade_time <= k.close_time]
                if inside and inside[0].trade_time == k.start_time:  # a bar whose trades we saw from its start
                    assert inside[0].price == k.open and inside[-1].price == k.close
                    assert max(t.price for t in inside) == k.high and min(t.price for t in inside) == k.low
                    assert round(sum(t.qty for t in inside), 6) == round(k.volume, 6)

        run(go())


async def _hostile_server(frames: list[str], silent: bool = False) -> tuple[web.AppRunner, str]:
    """A WebSocket server that acks SUBSCRIBE, then sends ``frames`` (or nothing) and stays open."""

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            req = json.loads(msg.data)
            await ws.send_str(json.dumps({"result": None, "id": req.get("id")}))
            if not silent:
                for f in frames:
                    await ws.send_str(f)
        return ws

    app = web.Application()
    app.router.add_get("/stream", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"ws://{host}:{port}"


def test_malformed_unknown_out_of_order_and_crossed_frames_are_counted_and_dropped() -> None:
    depth = json.loads((FIXTURES / "ws_depth5.json").read_text())
    trade = json.loads((FIXTURES / "ws_aggTrade.json").read_text())

    def env(stream: str, data: dict[str, Any]) -> str:
        return json.dumps({"stream": stream, "data": data})

    good = env("btcusdt@depth5@100ms", depth)
    frames = [
        good,
        good[:40],                                                                     # truncated
        "\x00\x01 binary-ish garbage",                                                 # malformed
        '{"stream": "btcusdt@depth5@100ms", "data": {"e": "depthUpdate"}}',           # missing fields
        env("dogeusdt@aggTrade", {**trade, "s": "DOGEUSDT"}),                          # not subscribed
        env("btcusdt@depth5@100ms", {**depth, "E": depth["E"] - 5}),                   # out of order
        env("btcusdt@depth5@100ms", {**depth, "E": depth["E"] + 1, "a": [["7000.00", "1"]]}),  # crossed
        env("btcusdt@aggTrade", trade),
        env("btcusdt@depth5@100ms", {**depth, "E": depth["E"] + 2}),
    ]
    got: list[P.StreamPayload] = []

    async def go() -> None:
        runner, url = await _hostile_server(frames)
        try:
            async with MarketStreams(url, ["btcusdt@depth5@100ms", "btcusdt@aggTrade"], on_message=got.append,
                                     stall_timeout_s=60) as ms:
                await until(lambda: len(got) == 3, 30, "the three good frames")
                await until(lambda: ms.stats().dropped == 6, 30, "six drops")
                st = ms.stats()
                assert (st.dropped_malformed, st.dropped_unknown_stream, st.dropped_out_of_order,
                        st.dropped_crossed) == (3, 1, 1, 1)
                assert st.messages == 3 and st.reconnects == 0 and st.connections[0].connected
        finally:
            await runner.cleanup()

    run(go())
    assert [type(m).__name__ for m in got] == ["DepthUpdate", "AggTrade", "DepthUpdate"]


def test_stall_watchdog_reconnects_a_silent_connection() -> None:
    async def go() -> None:
        runner, url = await _hostile_server([], silent=True)
        try:
            async with MarketStreams(url, ["btcusdt@aggTrade"], on_message=lambda m: None, stall_timeout_s=0.5,
                                     backoff_initial_s=0.05, backoff_max_s=0.2) as ms:
                await until(lambda: ms.stats().stalls >= 2 and ms.stats().reconnects >= 2, 30, "two stalls")
                assert ms.stats().connections[0].subscribe_errors == 0
        finally:
            await runner.cleanup()

    run(go())


def test_unreachable_server_is_retried_not_raised() -> None:
    async def go() -> None:
        ms = MarketStreams("ws://127.0.0.1:9", ["btcusdt@aggTrade"], on_message=lambda m: None,
                           backoff_initial_s=0.01, backoff_max_s=0.05, open_timeout_s=1)
        await ms.start()
        await asyncio.sleep(0.5)
        st = ms.stats()
        assert not st.connections[0].connected and st.messages == 0
        await ms.close()

    run(go())


def test_async_iteration_and_live_unsubscribe() -> None:
    with small_sim(speed=5.0) as sim:
        async def go() -> None:
            ms = MarketStreams(sim.ws_url, ["ethusdt@markPrice@1s", "ethusdt@depth5@500ms"])
            await ms.start()
            kinds: set[str] = set()
            async for msg in ms:
                kinds.add(type(msg).__name__)
                if kinds == {"MarkPrice", "DepthUpdate"}:
                    break
            await ms.unsubscribe(["ethusdt@depth5@500ms"])
            await ms.subscribe(["btcusdt@aggTrade"])
            got_trade = False
            async for msg in ms:
                if isinstance(msg, P.AggTrade):
                    got_trade = True
                    break
            assert got_trade and ms.streams == ["ethusdt@markPrice@1s", "btcusdt@aggTrade"]
            await ms.close()

        run(asyncio.wait_for(go(), 60))


def test_a_venue_that_keeps_dropping_the_connection_meets_the_storm_guard() -> None:
    """The simulator drops every market connection every 200 ms: each new connection delivers before it drops,
    which resets the backoff, so only the storm guard bounds the reconnects — at most `reconnects_per_min`
    attempts in the minute (the first connect included), then the connection waits, counted."""
    with small_sim(speed=1.0) as sim:
        async def go() -> None:
            async with MarketStreams(sim.ws_url, ["btcusdt@depth5@100ms"], on_message=lambda m: None,
                                     backoff_initial_s=0.05, backoff_max_s=0.2, reconnects_per_min=4) as ms:
                await ms.wait_connected(30)
                await asyncio.to_thread(_fault, sim, "ws_drop:target=market,every_ms=200")
                await until(lambda: ms.stats().storm_waits >= 1, 50, "the storm guard to hold a reconnect")
                st = ms.stats()
                assert st.reconnects <= 3 and st.connections[0].storm_waits == st.storm_waits   # 4 attempts in all

        run(go())


def _fault(sim: SimExchange, spec: str) -> None:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(f"{sim.rest_url}/sim/v1/faults?spec={spec}", method="POST"),
                                timeout=30) as resp:
        assert resp.status == 200
