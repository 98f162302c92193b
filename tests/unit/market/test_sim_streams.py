"""The emission loop and the stream hub, without sockets: what each tick publishes, and the WS methods."""

from __future__ import annotations

import json

import msgspec
import pytest

from dolphin.market import payloads as P
from dolphin.market.sim.engine import StreamEngine
from dolphin.market.sim.exchange import Exchange
from dolphin.market.sim.ws_server import Client, StreamHub

from .test_sim_clock import HandClock, exchange


def raw_client(hub: StreamHub, streams: list[str], combined: bool = False) -> Client:
    client = Client(1, None, combined, None)  # type: ignore[arg-type]
    assert hub.subscribe(client, streams) == []
    return client


def drain(client: Client) -> list[dict]:
    frames, client.pending = client.pending, []
    return [json.loads(f) for f in frames]


@pytest.fixture
def setup() -> tuple[Exchange, HandClock, StreamHub, StreamEngine]:
    ex, hand = exchange(10)
    hub = StreamHub(ex)
    return ex, hand, hub, StreamEngine(ex, hub, tick_ms=100)


def test_stream_names_are_validated(setup: tuple) -> None:
    ex, _, hub, _ = setup
    assert hub.parse("btcusdt@depth5").speed_ms == 250  # type: ignore[union-attr]
    assert hub.parse("btcusdt@depth20@500ms").levels == 20  # type: ignore[union-attr]
    assert hub.parse("btcusdt@kline_5s").interval_ms == 5000  # type: ignore[union-attr]
    assert hub.parse("ethusdt@markPrice").speed_ms == 3000  # type: ignore[union-attr]
    kinds = {name: hub.parse(name).kind for name in (  # type: ignore[union-attr]
        "btcusdt@trade", "btcusdt@depth", "btcusdt@depth@100ms", "btcusdt@bookTicker", "!bookTicker",
        "btcusdt@ticker", "!ticker@arr", "btcusdt@miniTicker", "!miniTicker@arr", "!markPrice@arr",
        "!markPrice@arr@1s", "btcusdt_perpetual@continuousKline_1m", "btcusdt@forceOrder", "!forceOrder@arr")}
    assert kinds["btcusdt@depth"] == "diffDepth" and kinds["btcusdt_perpetual@continuousKline_1m"] == "continuousKline"
    assert hub.parse("btcusdt@depth").speed_ms == 250 and hub.parse("!markPrice@arr@1s").speed_ms == 1000  # type: ignore[union-attr]
    for bad in ("btcusdt@kline_7m", "btcusdt@depth7", "nopeusdt@aggTrade", "btcusdt@trades", "BTCUSDT@aggTrade", "",
                "btcusdt_perpetual@continuousKline_7m", "nopeusdt_perpetual@continuousKline_1m", "!ticker",
                "btcusdt@depth@1s", "not-a-listen-key"):
        assert hub.parse(bad) is None


def test_ws_methods_answer_like_binance(setup: tuple) -> None:
    _, _, hub, _ = setup
    c = Client(7, None, False, None)  # type: ignore[arg-type]
    ok = hub._method(c, '{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth5@100ms"],"id":1}')
    assert ok == {"result": None, "id": 1}
    assert hub._method(c, '{"method":"LIST_SUBSCRIPTIONS","id":3}') == {
        "result": ["btcusdt@aggTrade", "btcusdt@depth5@100ms"], "id": 3}
    bad = hub._method(c, '{"method":"SUBSCRIBE","params":["nopeusdt@aggTrade"],"id":4}')
    assert bad == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 4}  # nested, as live
    assert hub._method(c, '{"method":"UNSUBSCRIBE","params":["btcusdt@aggTrade"],"id":5}') == {"result": None, "id": 5}
    assert hub._method(c, '{"method":"GET_PROPERTY","params":["combined"],"id":2}') == {"result": False, "id": 2}
    assert hub._method(c, '{"method":"SET_PROPERTY","params":["combined",true],"id":6}') == {"result": None, "id": 6}
    assert c.combined
    assert hub._method(c, '{"method":"SET_PROPERTY","params":["combined","yes"],"id":8}')["error"]["code"] == 1  # type: ignore[index]
    assert hub._method(c, '{"method":"GET_PROPERTY","params":["nope"],"id":9}')["error"]["code"] == 0  # type: ignore[index]
    assert hub._method(c, '{"method":"FLY","id":10}')["error"]["code"] == 2  # type: ignore[index]
    assert hub._method(c, "{oops")["error"]["code"] == 3  # type: ignore[index]
    assert hub._method(c, '{"method":"SUBSCRIBE","params":[],"id":-1}')["error"]["code"] == 2  # type: ignore[index]
    assert set(hub.subscribers) == {"btcusdt@depth5@100ms"}


def test_a_catch_up_tick_sends_one_book_all_kline_closes_and_every_trade(setup: tuple) -> None:
    ex, hand, hub, engine = setup
    client = raw_client(hub, ["btcusdt@depth5@100ms", "ethusdt@depth5@500ms", "btcusdt@kline_5s",
                              "btcusdt@aggTrade", "ethusdt@markPrice@1s", "solusdt@kline_1m"])
    t0 = ex.now()
    engine.tick(t0)
    drain(client)
    hand.advance_ms(12_300)  # one tick of a simulator at speed 123
    t1 = ex.now()
    engine.tick(t1)
    msgs = drain(client)
    by_kind: dict[str, list[dict]] = {}
    for m in msgs:
        P.RAW_PAYLOAD_DECODER.decode(json.dumps(m))  # every payload parses with the adapter's typed decoder
        by_kind.setdefault(m["e"] + m["s"] + (m["k"]["i"] if m["e"] == "kline" else ""), []).append(m)
    assert len(by_kind["depthUpdateBTCUSDT"]) == 1 and len(by_kind["depthUpdateETHUSDT"]) == 1
    btc_book = by_kind["depthUpdateBTCUSDT"][0]
    assert btc_book["E"] == t1 - t1 % 100 and btc_book["u"] == t1 // 100 and btc_book["pu"] == t0 // 100
    closes = [m for m in by_kind["klineBTCUSDT5s"] if m["k"]["x"]]
    forming = [m for m in by_kind["klineBTCUSDT5s"] if not m["k"]["x"]]
    expected_opens = list(range(t0 - t0 % 5000, t1 - t1 % 5000, 5000))
    assert [m["k"]["t"] for m in closes] == expected_opens and len(forming) == 1
    rest = ex.klines({"symbol": "BTCUSDT", "interval": "5s", "startTime": str(expected_opens[0]), "limit": "10"})
    for m, row in zip(closes, rest):
        k = m["k"]
        assert [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["n"], k["V"]] == [
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[8], row[9]]
    trades = by_kind["aggTradeBTCUSDT"]
    times = [m["T"] for m in trades]
    assert times == sorted(times) and all(t0 < t <= t1 for t in times)
    tape = ex.tape
    expected = [int(t) for b in range(ex.source.bar_at(t0), ex.source.bar_at(t1) + 1)
                for t, q in zip(tape.bar_trades(b).times, tape.bar_trades(b).qty[:, 0]) if t0 < t <= t1 and q > 0]
    assert times == expected
    assert len(by_kind["markPriceUpdateETHUSDT"]) == 1
    engine.tick(t1)  # same instant: nothing new
    assert drain(client) == []


def test_event_times_never_go_backwards_and_depth_ids_chain(setup: tuple) -> None:
    ex, hand, hub, engine = setup
    client = raw_client(hub, ["btcusdt@depth5@100ms", "btcusdt@kline_5s", "btcusdt@aggTrade"], combined=True)
    last: dict[str, int] = {}
    prev_u = None
    for _ in range(60):
        hand.advance_ms(100)
        engine.tick(ex.now())
        for env in drain(client):
            stream, data = env["stream"], env["data"]
            assert data["E"] >= last.get(stream, 0)
            last[stream] = data["E"]
            if stream.endswith("@100ms"):
                assert prev_u is None or data["pu"] == prev_u
                prev_u = data["u"]
            msgspec.json.decode(json.dumps(env), type=P.Envelope, strict=False)
    assert set(last) == {"btcusdt@depth5@100ms", "btcusdt@kline_5s", "btcusdt@aggTrade"}


def test_encode_once_broadcast_and_slow_client_cut_off(setup: tuple) -> None:
    ex, _, hub, _ = setup
    a, b = raw_client(hub, ["btcusdt@aggTrade"]), raw_client(hub, ["btcusdt@aggTrade"])
    c = raw_client(hub, ["btcusdt@aggTrade"], combined=True)
    hub.publish("btcusdt@aggTrade", '{"e":"aggTrade"}')
    assert a.pending[0] is b.pending[0] and c.pending[0] == b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade"}}'
    hub.max_pending = 3
    for _ in range(3):
        hub.publish("btcusdt@aggTrade", '{"e":"aggTrade"}')
    assert a.closed and hub.slow_disconnects == 3
    hub.publish("nobody@aggTrade", "{}")
    assert hub.payloads == 4


def test_diff_depth_events_rebuild_the_book_and_show_gaps(setup: tuple) -> None:
    import numpy as np

    from dolphin.market.sim.books import MAX_LEVELS

    ex, hand, hub, engine = setup
    client = raw_client(hub, ["btcusdt@depth@100ms"])
    col = ex.source.by_symbol["BTCUSDT"].column
    engine.tick(ex.now())
    first = drain(client)[0]
    start = ex.books.compute(np.array([col]), (first["U"] - 1) * 100, levels=MAX_LEVELS)
    book = {0: dict(zip(start.bid_px[0].tolist(), start.bid_qty[0].tolist())),
            1: dict(zip(start.ask_px[0].tolist(), start.ask_qty[0].tolist()))}

    def apply(event: dict) -> None:
        for side, key in ((0, "b"), (1, "a")):
            for p, q in event[key]:
                if float(q) == 0:
                    book[side].pop(float(p), None)
                else:
                    book[side][float(p)] = float(q)

    apply(first)
    last = first["u"]
    truth = ex.books.compute(np.array([col]), first["u"] * 100, levels=MAX_LEVELS)
    assert book[0] == dict(zip(truth.bid_px[0].tolist(), truth.bid_qty[0].tolist()))
    assert first["u"] - first["U"] == 99  # a first event reaches 10 s back: a snapshot just taken is bracketed
    sizes = []
    for step in (100, 100, 300, 100, 1_700, 3_000, 60_000):  # one bucket … a stalled loop's minute
        hand.advance_ms(step)
        engine.tick(ex.now())
        (event,) = drain(client)
        assert event["pu"] == last and event["U"] == last + 1 and event["u"] == ex.now() // 100
        apply(event)
        truth = ex.books.compute(np.array([col]), ex.now(), levels=MAX_LEVELS)
        assert book[0] == dict(zip(truth.bid_px[0].tolist(), truth.bid_qty[0].tolist()))
        assert book[1] == dict(zip(truth.ask_px[0].tolist(), truth.ask_qty[0].tolist()))
        sizes.append(len(event["b"]) + len(event["a"]))
        last = event["u"]
    assert sizes[0] < 200 < 2000 <= sizes[-1]  # one bucket: the changes only; a long window: every price seen
    hand.advance_ms(301_000)  # beyond what an event covers: the chain breaks visibly
    engine.tick(ex.now())
    (event,) = drain(client)
    assert event["pu"] != last and event["pu"] == event["U"] - 1 and engine.diff_gaps == 1


def test_book_ticker_trade_ticker_mark_arrays_and_continuous_klines(setup: tuple) -> None:
    ex, hand, hub, engine = setup
    client = raw_client(hub, ["btcusdt@bookTicker", "btcusdt@trade", "!markPrice@arr@1s",
                              "ethusdt_perpetual@continuousKline_5s", "btcusdt@miniTicker"], combined=True)
    engine._prefetch_pool.submit(ex.market_data.tickers.warm, ex.now()).result()
    seen: dict[str, list[dict]] = {}
    for _ in range(30):
        hand.advance_ms(100)
        engine.tick(ex.now())
        for env in drain(client):
            seen.setdefault(env["stream"], []).append(env["data"])
    quotes = seen["btcusdt@bookTicker"]
    assert quotes and all((a["b"], a["B"], a["a"], a["A"]) != (b["b"], b["B"], b["a"], b["A"])
                          for a, b in zip(quotes, quotes[1:]))  # only changes are sent
    assert [t["t"] for t in seen["btcusdt@trade"]] == sorted(t["t"] for t in seen["btcusdt@trade"])
    marks = seen["!markPrice@arr@1s"]
    assert len(marks) >= 2 and len(marks[0]) == 10 and marks[0][0]["e"] == "markPriceUpdate"
    assert all(m["ps"] == "ETHUSDT" and m["k"]["i"] == "5s" for m in seen["ethusdt_perpetual@continuousKline_5s"])
    mini = seen["btcusdt@miniTicker"]
    assert mini and mini[-1]["c"] == ex.market_data.ticker_24hr({"symbol": "BTCUSDT"})["lastPrice"]  # type: ignore[index]


def test_force_orders_follow_the_panic_cascades() -> None:
    from .test_sim_clock import source

    src = source(10)
    ex, hand = exchange(10, start_offset_ms=src.default_start_ms() - src.first_ms)
    hub = StreamHub(ex)
    engine = StreamEngine(ex, hub, tick_ms=100)
    client = raw_client(hub, ["!forceOrder@arr"])
    orders: list[dict] = []
    for _ in range(10 * 60):  # 20 minutes of market time from 3 minutes before the first panic signal
        hand.advance_ms(2000)
        engine.tick(ex.now())
        orders += drain(client)
    assert orders, "the panic's cascades liquidate someone"
    assert all(o["e"] == "forceOrder" and o["o"]["X"] == "FILLED" for o in orders)
    per_second = [(o["o"]["s"], o["E"] // 1000) for o in orders]
    assert len(per_second) == len(set(per_second))  # at most one per symbol and second
    assert {o["o"]["S"] for o in orders} <= {"SELL", "BUY"} and engine.liquidations == len(orders)
