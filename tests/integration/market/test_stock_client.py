"""A stock Binance client pointed at the simulator's base URLs works unchanged.

``binance-futures-connector`` (Binance's own Python connector) signs with the host's wall
clock and sends POST parameters in the query string; its WebSocket client subscribes on
``/ws`` with SUBSCRIBE messages.
"""

from __future__ import annotations

import json

import pytest
from binance.error import ClientError
from binance.um_futures import UMFutures
from binance.websocket.um_futures.websocket_client import UMFuturesWebsocketClient

from dolphin.market.sim import SimExchange

from .conftest import KEY, SECRET, small_sim, wait_sync


def test_rest_with_binance_futures_connector() -> None:
    with small_sim() as sim:
        client = UMFutures(KEY, SECRET, base_url=sim.rest_url)
        server = client.time()["serverTime"]
        assert abs(server - sim.now_ms()) < 60_000
        info = client.exchange_info()
        assert [s["symbol"] for s in info["symbols"]][:2] == ["BTCUSDT", "ETHUSDT"]
        klines = client.klines("BTCUSDT", "1m", limit=10)
        assert len(klines) == 10 and klines[-1][0] - klines[0][0] == 9 * 60_000
        depth = client.depth("BTCUSDT", limit=10)
        assert len(depth["bids"]) == 10 and float(depth["asks"][0][0]) > float(depth["bids"][0][0])
        price = round(float(depth["bids"][-1][0]) - 200, 1)
        order = client.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", quantity=0.01, price=price,
                                 timeInForce="GTC")
        assert order["status"] == "NEW"
        assert client.query_order(symbol="BTCUSDT", orderId=order["orderId"])["price"] == f"{price:.1f}"
        assert client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])["status"] == "CANCELED"
        filled = client.new_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity=0.01)
        assert filled["status"] == "FILLED"
        account = client.account()  # /fapi/v3/account
        short = [p for p in account["positions"] if p["symbol"] == "BTCUSDT"]
        assert len(short) == 1 and float(short[0]["positionAmt"]) == -0.01
        assert float(client.get_position_risk(symbol="BTCUSDT")[0]["positionAmt"]) == -0.01
        assert client.change_leverage(symbol="BTCUSDT", leverage=3)["leverage"] == 3
        with pytest.raises(ClientError) as bad:
            UMFutures(KEY, "not-the-secret", base_url=sim.rest_url).account()
        assert (bad.value.status_code, bad.value.error_code) == (400, -1022)


def test_websocket_client_of_binance_futures_connector(sim540: SimExchange) -> None:
    messages: list[dict] = []
    ws = UMFuturesWebsocketClient(stream_url=sim540.ws_url, on_message=lambda _, m: messages.append(json.loads(m)))
    try:
        ws.agg_trade(symbol="btcusdt")
        ws.partial_book_depth(symbol="ethusdt", level=5, speed=100)
        ws.kline(symbol="solusdt", interval="1m")
        wait_sync(lambda: {m.get("e") for m in messages} >= {"aggTrade", "depthUpdate", "kline"}, 60,
                  "aggTrade, depth and kline events")
    finally:
        ws.stop()
    replies = [m for m in messages if "result" in m]
    assert len(replies) == 3 and all(r["result"] is None for r in replies)
    depth = next(m for m in messages if m.get("e") == "depthUpdate")
    assert depth["s"] == "ETHUSDT" and len(depth["b"]) == len(depth["a"]) == 5
