"""Payload conformance: the simulator's live JSON has exactly the keys and JSON types of Binance's examples.

The examples in ``tests/fixtures/binance`` are transcribed from Binance's public USD-M
reference. Objects must have the same key set; values the same JSON type (string,
integer, number, boolean, null, array, object), recursively. Arrays of objects are
checked element by element against the example's first element; heterogeneous arrays
(a kline row, a book level) position by position.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from dolphin.market.signing import encode_params, sign
from dolphin.market.sim import SimExchange

from .conftest import KEY, SECRET, small_sim

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "binance"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return kind(value)


def conforms(live: Any, example: Any, path: str = "$") -> None:
    assert kind(live) == kind(example), f"{path}: {kind(live)} where Binance has {kind(example)}"
    if isinstance(example, dict):
        missing = sorted(set(example) - set(live))
        extra = sorted(set(live) - set(example))
        assert not missing and not extra, f"{path}: missing keys {missing}, extra keys {extra}"
        for key in example:
            conforms(live[key], example[key], f"{path}.{key}")
    elif isinstance(example, list) and example:
        assert live, f"{path}: empty array where Binance has elements"
        if all(shape(e) == shape(example[0]) for e in example):
            for i, item in enumerate(live):
                conforms(item, example[0], f"{path}[{i}]")
        else:  # a heterogeneous row (kline): position by position
            assert len(live) == len(example), f"{path}: {len(live)} elements where Binance has {len(example)}"
            for i, (item, ex) in enumerate(zip(live, example)):
                conforms(item, ex, f"{path}[{i}]")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimExchange]:
    with small_sim(speed=2.0) as s:
        yield s


def call(sim: SimExchange, method: str, path: str, params: dict[str, Any] | None = None, *,
         signed: bool = False) -> tuple[int, Any]:
    params = dict(params or {})
    headers = {}
    if signed:
        params["timestamp"] = int(time.time() * 1000)  # a wall-clock stamp, like stock clients send
        text = encode_params(params)
        query = f"{text}&signature={sign(SECRET, text)}"
        headers["X-MBX-APIKEY"] = KEY
    else:
        query = encode_params(params)
    req = urllib.request.Request(f"{sim.rest_url}{path}?{query}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_public_rest_endpoints_conform(sim: SimExchange) -> None:
    for path, params, name in [
        ("/fapi/v1/ping", {}, "ping.json"), ("/fapi/v1/time", {}, "time.json"),
        ("/fapi/v1/exchangeInfo", {}, "exchangeInfo.json"),
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 3}, "klines.json"),
        ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 5}, "depth.json"),
        ("/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}, "premiumIndex.json"),
        ("/fapi/v1/premiumIndex", {}, "premiumIndex_all.json"),
        ("/fapi/v1/fundingRate", {"symbol": "BTCUSDT"}, "fundingRate.json"),
        ("/futures/data/takerlongshortRatio", {"symbol": "BTCUSDT", "period": "5m", "limit": 3},
         "takerlongshortRatio.json"),
        ("/fapi/v1/depth", {"symbol": "NOPEUSDT"}, "error.json"),
    ]:
        status, body = call(sim, "GET", path, params)
        assert status == (400 if name == "error.json" else 200), (path, body)
        conforms(body, fixture(name), f"{path}")


def test_signed_rest_endpoints_conform(sim: SimExchange) -> None:
    status, book = call(sim, "GET", "/fapi/v1/depth", {"symbol": "ETHUSDT", "limit": 5})
    far_bid = f"{float(book['bids'][-1][0]) - 50:.2f}"
    status, new = call(sim, "POST", "/fapi/v1/order", {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                                                       "timeInForce": "GTC", "quantity": "0.100", "price": far_bid,
                                                       "newClientOrderId": "conform-1"}, signed=True)
    assert status == 200, new
    conforms(new, fixture("order_new.json"), "POST /fapi/v1/order")
    _, query = call(sim, "GET", "/fapi/v1/order", {"symbol": "ETHUSDT", "orderId": new["orderId"]}, signed=True)
    conforms(query, fixture("order_query.json"), "GET /fapi/v1/order")
    _, opened = call(sim, "GET", "/fapi/v1/openOrders", {"symbol": "ETHUSDT"}, signed=True)
    conforms(opened, fixture("openOrders.json"), "GET /fapi/v1/openOrders")
    _, cancelled = call(sim, "DELETE", "/fapi/v1/order", {"symbol": "ETHUSDT", "orderId": new["orderId"]}, signed=True)
    conforms(cancelled, fixture("order_cancel.json"), "DELETE /fapi/v1/order")
    _, market = call(sim, "POST", "/fapi/v1/order", {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET",
                                                     "quantity": "0.100"}, signed=True)
    conforms(market, fixture("order_new.json"), "POST /fapi/v1/order MARKET")
    for path, name in [("/fapi/v2/account", "account_v2.json"), ("/fapi/v3/account", "account_v3.json"),
                       ("/fapi/v2/positionRisk", "positionRisk_v2.json"),
                       ("/fapi/v3/positionRisk", "positionRisk_v3.json")]:
        status, body = call(sim, "GET", path, signed=True)
        assert status == 200, body
        conforms(body, fixture(name), path)
    _, lev = call(sim, "POST", "/fapi/v1/leverage", {"symbol": "ETHUSDT", "leverage": 21}, signed=True)
    conforms(lev, fixture("leverage.json"), "POST /fapi/v1/leverage")
    _, cancel_all = call(sim, "DELETE", "/fapi/v1/allOpenOrders", {"symbol": "ETHUSDT"}, signed=True)
    conforms(cancel_all, fixture("allOpenOrders_cancel.json"), "DELETE /fapi/v1/allOpenOrders")


def test_stream_payloads_and_replies_conform(sim: SimExchange) -> None:
    async def first(stream: str, predicate: Any = None) -> Any:
        async with websockets.connect(f"{sim.ws_url}/ws/{stream}", compression=None) as ws:
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if predicate is None or predicate(msg):
                    return msg

    async def go() -> None:
        conforms(await first("btcusdt@aggTrade"), fixture("ws_aggTrade.json"), "aggTrade")
        conforms(await first("btcusdt@depth5@100ms"), fixture("ws_depth5.json"), "depth5")
        conforms(await first("btcusdt@markPrice@1s"), fixture("ws_markPrice.json"), "markPrice")
        conforms(await first("btcusdt@kline_1m"), fixture("ws_kline.json"), "kline forming")
        closed = await first("btcusdt@kline_5s", lambda m: m["k"]["x"])
        conforms(closed, fixture("ws_kline.json"), "kline closed")
        async with websockets.connect(f"{sim.ws_url}/stream", compression=None) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth5@500ms"], "id": 1}))
            conforms(json.loads(await ws.recv()), fixture("ws_subscribe_reply.json"), "SUBSCRIBE reply")
            env = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert set(env) == {"stream", "data"} and env["stream"] == "btcusdt@depth5@500ms"
            conforms(env["data"], fixture("ws_depth5.json"), "combined depth5")
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
            reply = None
            while reply is None or "stream" in reply:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            conforms(reply, fixture("ws_list_subscriptions_reply.json"), "LIST_SUBSCRIPTIONS reply")
            await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 2}))
            reply = None
            while reply is None or "stream" in reply:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            conforms(reply, fixture("ws_get_property_reply.json"), "GET_PROPERTY reply")

    asyncio.run(go())


def test_the_checker_catches_differences() -> None:
    example = fixture("ws_aggTrade.json")
    with pytest.raises(AssertionError, match="extra keys"):
        conforms({**example, "x": 1}, example)
    with pytest.raises(AssertionError, match="string where Binance has integer"):
        conforms({**example, "E": "1"}, example)
    with pytest.raises(AssertionError):
        conforms([[1, "a"]], [[1, "a", "b"]])
