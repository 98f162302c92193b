"""The limits the live venue enforces, and the faults injected for the live trader's tests.

Each limit and each fault answers the way Binance does — its HTTP status, its code, its
WebSocket close — and the simulator keeps serving afterwards.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from dolphin.market.sim import SimExchange

from .conftest import call, small_sim, wait_sync

SOL = "SOLUSDT"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimExchange]:
    with small_sim(symbols=30, speed=1.0) as s:
        yield s


def alive(sim: SimExchange) -> None:
    assert call(sim, "GET", "/fapi/v1/ping") == (200, {})


def admin(sim: SimExchange, path: str, method: str = "POST", **query: str) -> Any:
    url = f"{sim.rest_url}/sim/v1/faults{path}" + ("?" + "&".join(f"{k}={v}" for k, v in query.items())
                                                    if query else "")
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as resp:
        return json.loads(resp.read())


def far_bid(sim: SimExchange, symbol: str = SOL) -> str:
    _, book = call(sim, "GET", "/fapi/v1/depth", {"symbol": symbol, "limit": 5})
    decimals = len(book["bids"][0][0].split(".")[1])
    return f"{float(book['bids'][-1][0]) * 0.97:.{decimals}f}"


def test_max_num_orders_is_enforced_with_2025(sim: SimExchange) -> None:
    price = far_bid(sim)
    order = {"symbol": SOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": price}
    for _ in range(40):
        status, placed = call(sim, "POST", "/fapi/v1/batchOrders", {"batchOrders": json.dumps([order] * 5)},
                              signed=True)
        assert status == 200 and all("orderId" in o for o in placed), placed
    status, body = call(sim, "POST", "/fapi/v1/order", order, signed=True)
    assert (status, body) == (400, {"code": -2025, "msg": "Reach max open order limit."})
    _, opened = call(sim, "GET", "/fapi/v1/openOrders", {"symbol": SOL}, signed=True)
    assert len(opened) == 200
    call(sim, "DELETE", "/fapi/v1/allOpenOrders", {"symbol": SOL}, signed=True)
    assert call(sim, "POST", "/fapi/v1/order", order, signed=True)[0] == 200
    call(sim, "DELETE", "/fapi/v1/allOpenOrders", {"symbol": SOL}, signed=True)
    alive(sim)


def test_websocket_message_rate_stream_cap_and_unknown_streams(sim: SimExchange) -> None:
    symbols = [i.symbol.lower() for i in sim.exchange.source.instruments]
    intervals = list(sim.exchange.intervals)
    names = [f"{s}@{kind}" for s in symbols for kind in
             ("aggTrade", "trade", "bookTicker", "ticker", "miniTicker", "forceOrder", "markPrice", "markPrice@1s",
              *(f"kline_{iv}" for iv in intervals))]
    names += [f"{s}_perpetual@continuousKline_{iv}" for s in symbols for iv in intervals]
    assert len(names) > 1024

    async def go() -> None:
        async with websockets.connect(f"{sim.ws_url}/ws", max_size=None) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": names[:1025], "id": 1}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert reply["id"] == 1 and reply["error"]["code"] == 2 and "1024" in reply["error"]["msg"]
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 30)) == {"result": [], "id": 2}  # all or nothing
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@nosuch"], "id": 3}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 30)) == {
                "error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 3}
        async with websockets.connect(f"{sim.ws_url}/ws", max_size=None) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": names[:1024], "id": 4}))
            reply = None
            while reply is None or "id" not in reply:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert reply == {"result": None, "id": 4}
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [names[1024]], "id": 5}))
            while reply.get("id") != 5:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert reply["error"]["code"] == 2
        async with websockets.connect(f"{sim.ws_url}/ws") as ws:  # 11 messages within a second: closed
            for n in range(11):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": n}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert closed.value.rcvd.reason == "Too many requests"
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@aggtrade") as ws:  # a typo: told, then closed
            error = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert error["error"] == {"code": 2, "msg": "Invalid request: invalid stream"}
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@aggTrade") as ws:  # and the server serves on
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["e"] == "aggTrade"

    asyncio.run(go())
    assert sim.status()["rateDisconnects"] >= 1
    alive(sim)


def _orders(sim: SimExchange) -> int:
    return len(call(sim, "GET", "/fapi/v1/allOrders", {"symbol": "ETHUSDT", "limit": 1000}, signed=True)[1])


def test_rest_faults_answer_like_binance_and_acks_can_be_lost(sim: SimExchange) -> None:
    buy = {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    before = _orders(sim)
    admin(sim, "", spec="error:status=503,code=-1001,path=/fapi/v1/order,method=POST,count=1")
    assert call(sim, "POST", "/fapi/v1/order", buy, signed=True) == (503, {
        "code": -1001, "msg": "Internal error; unable to process your request. Please try again."})
    assert _orders(sim) == before  # a failed request placed nothing
    admin(sim, "", spec="error:status=429,code=-1003,path=/fapi/v1/depth")
    req = urllib.request.Request(f"{sim.rest_url}/fapi/v1/depth?symbol=ETHUSDT")
    with pytest.raises(urllib.error.HTTPError) as limited:
        urllib.request.urlopen(req, timeout=30)
    assert limited.value.code == 429 and limited.value.headers["Retry-After"] == "1"
    assert json.loads(limited.value.read())["code"] == -1003
    admin(sim, "", spec="error:status=502,code=0,path=/fapi/v1/time")
    with pytest.raises(urllib.error.HTTPError) as gateway:
        urllib.request.urlopen(f"{sim.rest_url}/fapi/v1/time", timeout=30)
    assert gateway.value.code == 502 and gateway.value.headers.get_content_type() == "text/html"

    admin(sim, "", spec="ack:mode=drop")  # the order is placed, its answer never comes
    with pytest.raises((urllib.error.URLError, http.client.RemoteDisconnected, ConnectionError)):
        call(sim, "POST", "/fapi/v1/order", {**buy, "newClientOrderId": "lost-ack"}, signed=True)
    status, found = call(sim, "GET", "/fapi/v1/order", {"symbol": "ETHUSDT", "origClientOrderId": "lost-ack"},
                         signed=True)
    assert status == 200 and found["status"] == "FILLED"
    status, dup = call(sim, "POST", "/fapi/v1/order", {**buy, "newClientOrderId": "lost-ack"}, signed=True)
    assert (status, dup["code"]) == (400, -4116)  # a blind retry cannot fill twice
    admin(sim, "", spec="ack:mode=unknown")
    status, unknown = call(sim, "POST", "/fapi/v1/order", {**buy, "newClientOrderId": "unknown-ack"}, signed=True)
    assert (status, unknown["code"]) == (503, -1007)
    assert call(sim, "GET", "/fapi/v1/order", {"symbol": "ETHUSDT", "origClientOrderId": "unknown-ack"},
                signed=True)[1]["status"] == "FILLED"
    admin(sim, "", spec="ack:mode=delay,delay_ms=300")
    started = time.monotonic()
    status, late = call(sim, "POST", "/fapi/v1/order", buy, signed=True)
    assert status == 200 and late["status"] == "FILLED" and time.monotonic() - started >= 0.3
    faults = admin(sim, "", method="GET")
    assert faults["rules"] == [] and faults["fired"]["error"] == 3 and faults["fired"]["ack"] == 3
    call(sim, "POST", "/fapi/v1/order", {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.040",
                                         "reduceOnly": "true"}, signed=True)
    alive(sim)


def test_partial_fills_ws_drops_and_early_listen_key_expiry(sim: SimExchange) -> None:
    status, key = call(sim, "POST", "/fapi/v1/listenKey", key_only=True)
    listen_key = key["listenKey"]

    async def go() -> None:
        async with websockets.connect(f"{sim.ws_url}/private/ws?listenKey={listen_key}") as user, \
                websockets.connect(f"{sim.ws_url}/ws/btcusdt@bookTicker") as market:
            assert json.loads(await asyncio.wait_for(market.recv(), 30))["e"] == "bookTicker"
            events: list[dict] = []

            async def read(until: Any) -> None:
                while not until():
                    events.append(json.loads(await asyncio.wait_for(user.recv(), 30)))

            admin(sim, "", spec="partial:ratio=0.5,delay_ms=400")
            status, order = call(sim, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                                 "quantity": "0.020"}, signed=True)
            assert status == 200 and order["status"] == "PARTIALLY_FILLED" and order["executedQty"] == "0.010"

            def fills() -> list[dict]:
                return [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["i"] == order["orderId"]
                        and e["o"]["x"] == "TRADE"]

            await read(lambda: any(f["X"] == "FILLED" for f in fills()))
            done = fills()  # the first half now, the rest 400 ms later (each may take several book levels)
            assert [f["X"] for f in done[:-1]] == ["PARTIALLY_FILLED"] * (len(done) - 1) and len(done) >= 2
            assert done[-1]["z"] == "0.020" and sum(float(f["l"]) for f in done) == pytest.approx(0.02)
            assert any(f["z"] == "0.010" for f in done)
            assert call(sim, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]},
                        signed=True)[1]["status"] == "FILLED"
            assert admin(sim, "/ws-drop", target="market") == {"dropped": 1}
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(market.recv(), 30)
            admin(sim, "", spec="listenkey:ttl_ms=1000,count=-1")
            assert call(sim, "PUT", "/fapi/v1/listenKey", key_only=True)[1] == {"listenKey": listen_key}
            await read(lambda: events[-1]["e"] == "listenKeyExpired")
            assert events[-1]["listenKey"] == listen_key
        status, gone = call(sim, "PUT", "/fapi/v1/listenKey", key_only=True)
        assert (status, gone["code"]) == (400, -1125)
        status, fresh = call(sim, "POST", "/fapi/v1/listenKey", key_only=True)
        assert status == 200 and fresh["listenKey"] != listen_key
        assert admin(sim, "", method="DELETE")["cleared"] == 1
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@bookTicker") as market:
            assert json.loads(await asyncio.wait_for(market.recv(), 30))["e"] == "bookTicker"

    asyncio.run(go())
    call(sim, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.020",
                                         "reduceOnly": "true"}, signed=True)
    wait_sync(lambda: sim.status()["kills"] >= 1, 30, "the drop to be counted")
    alive(sim)


def test_order_requests_are_stamped_on_arrival(sim: SimExchange) -> None:
    """`GET /sim/v1/orders/received`: each order request with the wall time its handler was entered (the live
    latency benchmark's "order on the wire"); other requests are not listed."""
    def received() -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{sim.rest_url}/sim/v1/orders/received", timeout=30) as resp:
            return list(json.loads(resp.read()))

    order = {"symbol": SOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1",
             "price": far_bid(sim), "newClientOrderId": "stamp-test-1"}
    before = time.time()
    assert call(sim, "POST", "/fapi/v1/order", order, signed=True)[0] == 200
    after = time.time()
    rows = received()
    mine = [r for r in rows if r["client_order_id"] == "stamp-test-1"]
    assert len(mine) == 1 and mine[0]["path"] == "/fapi/v1/order" and mine[0]["symbol"] == SOL
    assert before <= mine[0]["received_s"] <= after
    alive(sim)
    call(sim, "GET", "/fapi/v1/openOrders", {"symbol": SOL}, signed=True)
    assert received() == rows
    call(sim, "DELETE", "/fapi/v1/allOpenOrders", {"symbol": SOL}, signed=True)
