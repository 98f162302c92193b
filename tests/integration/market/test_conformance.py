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
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from dolphin.market.sim import SimExchange

from .conftest import call, small_sim

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


def test_more_public_rest_endpoints_conform(sim: SimExchange) -> None:
    """Tickers, trade history and kline variants; an unknown path is Binance's JSON error, not a plain 404."""
    for path, params, name in [
        ("/fapi/v1/ticker/24hr", {"symbol": "BTCUSDT"}, "ticker_24hr.json"),
        ("/fapi/v1/ticker/price", {"symbol": "BTCUSDT"}, "ticker_price.json"),
        ("/fapi/v2/ticker/price", {"symbol": "BTCUSDT"}, "ticker_price.json"),
        ("/fapi/v1/ticker/bookTicker", {"symbol": "BTCUSDT"}, "bookTicker.json"),
        ("/fapi/v1/aggTrades", {"symbol": "BTCUSDT", "limit": 5}, "aggTrades.json"),
        ("/fapi/v1/trades", {"symbol": "BTCUSDT", "limit": 5}, "trades.json"),
        ("/fapi/v1/continuousKlines", {"pair": "BTCUSDT", "contractType": "PERPETUAL", "interval": "1m", "limit": 3},
         "klines.json"),
        ("/fapi/v1/markPriceKlines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 3}, "klines.json"),
        ("/fapi/v1/indexPriceKlines", {"pair": "BTCUSDT", "interval": "1m", "limit": 3}, "klines.json"),
    ]:
        status, body = call(sim, "GET", path, params)
        assert status == 200, (path, body)
        conforms(body, fixture(name), path)
    for path in ("/fapi/v1/ticker/24hr", "/fapi/v1/ticker/price", "/fapi/v1/ticker/bookTicker"):
        status, body = call(sim, "GET", path)
        assert status == 200 and len(body) == 20, path
        conforms(body, [fixture(path.rsplit("/", 1)[1].replace("24hr", "ticker_24hr").replace("price", "ticker_price")
                                + ".json")], path)
    status, body = call(sim, "GET", "/fapi/v1/nosuchthing")
    assert status == 404 and body["code"] == -5000
    conforms(body, fixture("error.json"), "unknown path")
    status, body = call(sim, "PATCH", "/fapi/v1/order")
    assert status == 404 and body["code"] == -5000


def test_more_signed_rest_endpoints_conform(sim: SimExchange) -> None:
    """Fills, income, balances, settings, listen keys, modify, batch and the Algo Order API."""
    _, book = call(sim, "GET", "/fapi/v1/depth", {"symbol": "SOLUSDT", "limit": 5})
    far = f"{float(book['bids'][-1][0]) * 0.97:.{len(book['bids'][0][0].split('.')[1])}f}"
    _, filled = call(sim, "POST", "/fapi/v1/order", {"symbol": "SOLUSDT", "side": "BUY", "type": "MARKET",
                                                     "quantity": "1"}, signed=True)
    assert filled["status"] == "FILLED", filled
    _, resting = call(sim, "POST", "/fapi/v1/order", {"symbol": "SOLUSDT", "side": "BUY", "type": "LIMIT",
                                                      "timeInForce": "GTC", "quantity": "1", "price": far}, signed=True)
    checks = [
        ("GET", "/fapi/v1/userTrades", {"symbol": "SOLUSDT"}, "userTrades.json"),
        ("GET", "/fapi/v1/income", {}, "income.json"),
        ("GET", "/fapi/v2/balance", {}, "balance.json"),
        ("GET", "/fapi/v3/balance", {}, "balance.json"),
        ("GET", "/fapi/v1/leverageBracket", {"symbol": "SOLUSDT"}, "leverageBracket.json"),
        ("GET", "/fapi/v1/commissionRate", {"symbol": "SOLUSDT"}, "commissionRate.json"),
        ("GET", "/fapi/v1/symbolConfig", {"symbol": "SOLUSDT"}, "symbolConfig.json"),
        ("GET", "/fapi/v1/accountConfig", {}, "accountConfig.json"),
        ("GET", "/fapi/v1/positionSide/dual", {}, "positionSide_dual.json"),
        ("POST", "/fapi/v1/marginType", {"symbol": "ADAUSDT", "marginType": "ISOLATED"},
         "allOpenOrders_cancel.json"),
        ("GET", "/fapi/v1/allOrders", {"symbol": "SOLUSDT"}, "openOrders.json"),
        ("GET", "/fapi/v1/openOrder", {"symbol": "SOLUSDT", "orderId": resting["orderId"]}, "order_query.json"),
        ("PUT", "/fapi/v1/order", {"symbol": "SOLUSDT", "orderId": resting["orderId"], "side": "BUY", "quantity": "2",
                                   "price": far}, "order_new.json"),
    ]
    for method, path, params, name in checks:
        status, body = call(sim, method, path, params, signed=True)
        assert status == 200, (path, body)
        conforms(body, fixture(name), f"{method} {path}")
    last = float(filled["avgPrice"])
    algo = {"algoType": "CONDITIONAL", "symbol": "SOLUSDT", "side": "SELL", "type": "STOP_MARKET",
            "triggerPrice": f"{last * 0.9:.2f}", "closePosition": "true"}
    status, new = call(sim, "POST", "/fapi/v1/algoOrder", algo, signed=True)
    assert status == 200, new
    conforms(new, fixture("algoOrder.json"), "POST /fapi/v1/algoOrder")
    for path, params, name in [("/fapi/v1/algoOrder", {"algoId": new["algoId"]}, "algoOrder.json"),
                               ("/fapi/v1/openAlgoOrders", {"symbol": "SOLUSDT"}, "algoOrder.json"),
                               ("/fapi/v1/allAlgoOrders", {"symbol": "SOLUSDT"}, "algoOrder.json")]:
        _, body = call(sim, "GET", path, params, signed=True)
        conforms(body if isinstance(body, dict) else body[0], fixture(name), path)
    _, cancelled = call(sim, "DELETE", "/fapi/v1/algoOrder", {"algoId": new["algoId"]}, signed=True)
    conforms(cancelled, fixture("algoOrder_cancel.json"), "DELETE /fapi/v1/algoOrder")
    status, refused = call(sim, "POST", "/fapi/v1/order", {**algo, "type": "STOP_MARKET", "stopPrice": "1"},
                           signed=True)
    assert (status, refused["code"]) == (400, -4120)  # conditional orders live on the Algo Order API now
    status, batch = call(sim, "POST", "/fapi/v1/batchOrders", {"batchOrders": json.dumps([
        {"symbol": "SOLUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": far},
        {"symbol": "SOLUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "x"}])},
        signed=True)
    assert status == 200 and batch[1]["code"] == -1130
    conforms(batch[0], fixture("order_new.json"), "POST /fapi/v1/batchOrders")
    conforms(batch[1], fixture("error.json"), "a failed batch item")
    call(sim, "DELETE", "/fapi/v1/allOpenOrders", {"symbol": "SOLUSDT"}, signed=True)
    status, key = call(sim, "POST", "/fapi/v1/listenKey", key_only=True)
    assert status == 200
    conforms(key, fixture("listenKey.json"), "POST /fapi/v1/listenKey")
    _, again = call(sim, "PUT", "/fapi/v1/listenKey", key_only=True)
    assert again == key
    assert call(sim, "DELETE", "/fapi/v1/listenKey", key_only=True) == (200, {})
    status, gone = call(sim, "PUT", "/fapi/v1/listenKey", key_only=True)
    assert (status, gone["code"]) == (400, -1125)


def test_more_streams_and_user_data_conform(sim: SimExchange) -> None:
    status, key = call(sim, "POST", "/fapi/v1/listenKey", key_only=True)
    listen_key = key["listenKey"]
    wanted = {"btcusdt@depth@100ms": "ws_depth5.json", "btcusdt@bookTicker": "ws_bookTicker.json",
              "btcusdt@ticker": "ws_ticker.json", "btcusdt@miniTicker": "ws_miniTicker.json",
              "btcusdt@trade": "ws_trade.json", "btcusdt_perpetual@continuousKline_1m": "ws_continuousKline.json",
              "!markPrice@arr@1s": "ws_markPrice.json"}
    events = {"ORDER_TRADE_UPDATE": "ud_ORDER_TRADE_UPDATE.json", "TRADE_LITE": "ud_TRADE_LITE.json",
              "ACCOUNT_UPDATE": "ud_ACCOUNT_UPDATE.json", "ALGO_UPDATE": "ud_ALGO_UPDATE.json",
              "ACCOUNT_CONFIG_UPDATE": "ud_ACCOUNT_CONFIG_UPDATE.json",
              "listenKeyExpired": "ud_listenKeyExpired.json"}

    async def go() -> None:
        seen: dict[str, Any] = {}
        url = f"{sim.ws_url}/stream?streams={'/'.join(wanted)}/{listen_key}"
        async with websockets.connect(url, compression=None, max_size=None) as ws:
            async def read_until(done: Any) -> None:
                while not done():
                    env = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    data = env["data"]
                    if env["stream"] == listen_key:
                        if data["e"] != "ORDER_TRADE_UPDATE" or data["o"]["x"] == "TRADE":
                            seen.setdefault(data["e"], data)
                    elif env["stream"] != "btcusdt@depth@100ms" or (data["b"] and data["a"]):
                        seen.setdefault(env["stream"], data)

            await read_until(lambda: set(wanted) <= set(seen))
            price = float(seen["btcusdt@trade"]["p"])
            assert call(sim, "POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 7}, signed=True)[0] == 200
            _, order = call(sim, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                            "quantity": "0.010", "newClientOrderId": "ud-1"},
                            signed=True)
            assert order["status"] == "FILLED"
            _, algo = call(sim, "POST", "/fapi/v1/algoOrder", {
                "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "TAKE_PROFIT",
                "triggerPrice": f"{price * 1.04:.1f}", "price": f"{price * 1.04:.1f}", "quantity": "0.010",
                "reduceOnly": "true"}, signed=True)
            call(sim, "DELETE", "/fapi/v1/algoOrder", {"algoId": algo["algoId"]}, signed=True)
            await read_until(lambda: set(events) - {"listenKeyExpired"} <= set(seen))
            assert seen["ORDER_TRADE_UPDATE"]["o"]["c"] == "ud-1"
            assert seen["ACCOUNT_UPDATE"]["a"]["m"] == "ORDER"
            admin = urllib.request.Request(f"{sim.rest_url}/sim/v1/faults/listen-key-expire", method="POST")
            with urllib.request.urlopen(admin, timeout=30) as resp:
                assert json.loads(resp.read())["expired"] == [listen_key]
            await read_until(lambda: "listenKeyExpired" in seen)
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@nosuch"], "id": 5}))
            reply = None
            while reply is None or "stream" in reply:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            conforms(reply, fixture("ws_error.json"), "SUBSCRIBE error")
        for stream, name in wanted.items():
            data = seen[stream]
            conforms(data if stream != "!markPrice@arr@1s" else data[0], fixture(name), stream)
        for event, name in events.items():
            conforms(seen[event], fixture(name), event)

    asyncio.run(go())
