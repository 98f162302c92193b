"""Edge checks of the stream client: bad frames are counted and dropped, never raised."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from dolphin.market import payloads as P
from dolphin.market.streams import MarketStreams, _Connection, _expected

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "binance"
DEPTH = json.loads((FIXTURES / "ws_depth5.json").read_text())
TRADE = json.loads((FIXTURES / "ws_aggTrade.json").read_text())


def frame(stream: str, data: dict) -> str:
    return json.dumps({"stream": stream, "data": data})


@pytest.fixture
def conn() -> _Connection:
    c = _Connection(0)
    for s in ("btcusdt@depth5@100ms", "btcusdt@aggTrade"):
        c.streams[s] = _expected(s)  # type: ignore[assignment]
    return c


@pytest.fixture
def streams() -> MarketStreams:
    return MarketStreams("ws://127.0.0.1:9", on_message=lambda m: None)


def test_good_frames_pass_and_update_counters(streams: MarketStreams, conn: _Connection) -> None:
    data = streams._accept(conn, frame("btcusdt@depth5@100ms", DEPTH))
    assert isinstance(data, P.DepthUpdate) and conn.messages == 1
    assert isinstance(streams._accept(conn, frame("btcusdt@aggTrade", TRADE)), P.AggTrade)


def test_bad_input_is_counted_and_logged_once(streams: MarketStreams, conn: _Connection,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "dolphin.market.streams")
    good = frame("btcusdt@depth5@100ms", DEPTH)
    assert streams._accept(conn, good) is not None
    cases = [
        good[: len(good) // 2],                                          # truncated
        "not json at all",                                               # malformed
        frame("ethusdt@depth5@100ms", {**DEPTH, "s": "ETHUSDT"}),       # unknown stream
        frame("btcusdt@depth5@100ms", {**DEPTH, "E": DEPTH["E"] - 1}),  # out of order
        frame("btcusdt@depth5@100ms", {**DEPTH, "E": DEPTH["E"] + 1, "a": [["7403.00", "1.0"]]}),  # crossed
        frame("btcusdt@depth5@100ms", {**DEPTH, "E": DEPTH["E"] + 2, "b": []}),                     # empty side
        frame("btcusdt@depth5@100ms", {**TRADE, "E": DEPTH["E"] + 3}),  # wrong payload kind for the stream
        frame("btcusdt@aggTrade", {**TRADE, "s": "ETHUSDT"}),           # wrong symbol for the stream
    ]
    for text in cases:
        assert streams._accept(conn, text) is None
    for text in cases[:2]:
        assert streams._accept(conn, text) is None
    assert conn.dropped_malformed == 6 and conn.dropped_unknown == 1
    assert conn.dropped_out_of_order == 1 and conn.dropped_crossed == 2
    assert conn.messages == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 5  # one line per kind and connection, not one per frame
    assert any("malformed" in r.getMessage() for r in warnings)


def test_subscription_replies_and_server_errors_are_not_data(streams: MarketStreams, conn: _Connection) -> None:
    assert streams._accept(conn, '{"result":null,"id":1}') is None
    assert streams._accept(conn, '{"code":2,"msg":"Invalid request","id":2}') is None
    assert streams._accept(conn, '{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":3}') is None
    assert conn.dropped_malformed == 0 and conn.subscribe_errors == 2


def test_callback_errors_are_counted_not_raised(conn: _Connection) -> None:
    def boom(msg: object) -> None:
        raise RuntimeError("consumer bug")

    s = MarketStreams("ws://127.0.0.1:9", on_message=boom)
    data = s._accept(conn, frame("btcusdt@aggTrade", TRADE))
    assert data is not None
    asyncio.run(s._deliver(conn, data))
    assert conn.callback_errors == 1


def test_iterator_mode_drops_oldest_under_backpressure(conn: _Connection) -> None:
    s = MarketStreams("ws://127.0.0.1:9", queue_size=2)

    async def go() -> list[int]:
        for i in range(3):
            msg = s._accept(conn, frame("btcusdt@aggTrade", {**TRADE, "E": TRADE["E"] + i}))
            assert msg is not None
            await s._deliver(conn, msg)
        it = s.__aiter__()
        return [(await it.__anext__()).event_time for _ in range(2)]

    assert asyncio.run(go()) == [TRADE["E"] + 1, TRADE["E"] + 2]
    assert s.stats().dropped_backpressure == 1


def test_sharding_spreads_540_streams_over_three_connections() -> None:
    async def go() -> MarketStreams:
        s = MarketStreams("ws://127.0.0.1:9", [f"s{i:03d}usdt@depth5@100ms" for i in range(540)],
                          on_message=lambda m: None, backoff_initial_s=30.0)
        await s.start()
        await s.subscribe(["extra@aggTrade", "bogus-stream"])
        await s.close()
        return s

    s = asyncio.run(go())
    st = s.stats()
    assert [c.streams for c in st.connections] == [200, 200, 141]
    assert st.streams == 541 and s.connection_of("extra@aggTrade") == 2 and s.connection_of("bogus-stream") is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        MarketStreams("ws://127.0.0.1:9", max_streams_per_connection=0)
    with pytest.raises(Exception, match="ws base URL"):
        MarketStreams("http://127.0.0.1:9")
