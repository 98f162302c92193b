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


def test_connector_trading_day_with_user_data() -> None:
    """binance-futures-connector: a bot's day, and a user-data event for every fill on its WebSocket client."""
    with small_sim(symbols=10, speed=2.0) as sim:
        client = UMFutures(KEY, SECRET, base_url=sim.rest_url)
        assert float(client.ticker_24hr_price_change("BTCUSDT")["volume"]) > 0
        assert float(client.ticker_price("BTCUSDT")["price"]) > 0
        quote = client.book_ticker("BTCUSDT")
        assert float(quote["askPrice"]) > float(quote["bidPrice"])
        assert len(client.agg_trades("BTCUSDT", limit=20)) == 20 and len(client.trades("BTCUSDT", limit=20)) == 20
        assert len(client.continuous_klines("BTCUSDT", "PERPETUAL", "1m", limit=5)) == 5
        assert float(client.balance()[0]["balance"]) == 25_000.0
        assert client.leverage_brackets(symbol="BTCUSDT")[0]["brackets"][0]["initialLeverage"] == 125
        assert client.change_margin_type("ETHUSDT", "ISOLATED") == {"code": 200, "msg": "success"}
        with pytest.raises(ClientError) as same:
            client.change_margin_type("ETHUSDT", "ISOLATED")
        assert same.value.error_code == -4046
        assert client.get_position_mode() == {"dualSidePosition": False}
        assert client.commission_rate("BTCUSDT")["takerCommissionRate"] == "0.000500"

        key = client.new_listen_key()["listenKey"]
        assert client.renew_listen_key(key) == {"listenKey": key}
        events: list[dict] = []
        ws = UMFuturesWebsocketClient(stream_url=sim.ws_url, on_message=lambda _, m: events.append(json.loads(m)))
        try:
            ws.user_data(listen_key=key, id=1)
            wait_sync(lambda: any(m.get("id") == 1 for m in events), 30, "the user-data subscription")
            orders = [client.new_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity=0.05),
                      client.new_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity=0.02,
                                       reduceOnly="true")]
            book = client.depth("ETHUSDT", limit=5)
            resting = client.new_order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity=0.05,
                                       price=round(float(book["bids"][-1][0]) * 0.98, 2))
            moved = client.modify_order(symbol="ETHUSDT", side="BUY", orderId=resting["orderId"], quantity=0.06,
                                        price=round(float(book["bids"][-1][0]) * 0.97, 2))
            assert moved["orderId"] == resting["orderId"] and moved["origQty"] == "0.060"
            client.cancel_order(symbol="ETHUSDT", orderId=resting["orderId"])

            def trades() -> list[dict]:
                return [m["o"] for m in events if m.get("e") == "ORDER_TRADE_UPDATE" and m["o"]["x"] == "TRADE"]

            fills = client.get_account_trades("ETHUSDT")
            wait_sync(lambda: len(trades()) == len(fills), 30, "a user-data event for every fill")
            assert sorted((t["i"], t["t"]) for t in trades()) == sorted((f["orderId"], f["id"]) for f in fills)
            assert {t["i"] for t in trades()} == {o["orderId"] for o in orders}
            assert all(float(t["n"]) > 0 and t["N"] == "USDT" for t in trades())
            assert float(trades()[-1]["rp"]) != 0  # the reduce-only sell realised PnL
            def execs() -> set[tuple[int, str]]:
                return {(m["o"]["i"], m["o"]["x"]) for m in events if m.get("e") == "ORDER_TRADE_UPDATE"}

            # the resting order's events come on their own schedule, not with the fills': wait for all three
            wanted = {(resting["orderId"], x) for x in ("NEW", "AMENDMENT", "CANCELED")}
            wait_sync(lambda: wanted <= execs(), 30, "the resting order's NEW, AMENDMENT and CANCELED events")
            wait_sync(lambda: any(m.get("e") == "ACCOUNT_UPDATE" for m in events), 30, "ACCOUNT_UPDATE")
            update = next(m for m in events if m.get("e") == "ACCOUNT_UPDATE")
            assert update["a"]["m"] == "ORDER" and update["a"]["P"][0]["mt"] == "isolated"
        finally:
            ws.stop()
        income = client.get_income_history(symbol="ETHUSDT")
        assert {r["incomeType"] for r in income} == {"COMMISSION", "REALIZED_PNL"}
        assert len(client.get_all_orders("ETHUSDT")) == 3
        client.close_listen_key(key)
        with pytest.raises(ClientError) as gone:
            client.renew_listen_key(key)
        assert gone.value.error_code == -1125
