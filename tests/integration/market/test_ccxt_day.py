"""ccxt's ``binanceusdm`` runs a trading bot's day against the simulator, unchanged but for its base URLs.

REST (``ccxt.binanceusdm``): markets, market data, balance, positions, leverage, margin and
position mode, every order type (market, limit GTC/IOC/FOK/post-only, stop-market and
take-profit-market through the Algo Order API with closePosition/reduceOnly), query, edit,
cancel, fills, ledger, funding, leverage tiers. WebSocket (``ccxt.pro``): tickers, trades,
candles, the order book kept from the diff stream, bids/asks, mark price, and the
user-data stream — every fill reaches ``watch_my_trades``, every order state
``watch_orders``, and balances and positions follow.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import ccxt
import ccxt.pro as ccxtpro
import pytest

from dolphin.market.sim import SimExchange

from .conftest import KEY, SECRET, small_sim

S = "BTC/USDT:USDT"
E = "ETH/USDT:USDT"


# ccxt's own client-side throttle (cost × 50 ms per call) would only slow the test down;
# the simulator enforces Binance's request weights itself.
OPTIONS = {"apiKey": KEY, "secret": SECRET, "enableRateLimit": False}


def point(exchange: Any, sim: SimExchange) -> Any:
    """Only the base URLs change: every REST API group and the USD-M WebSocket base."""
    for name, url in list(exchange.urls["api"].items()):
        if isinstance(url, str) and url.startswith("https://"):
            exchange.urls["api"][name] = sim.rest_url + "/" + url.split("/", 3)[3]
    if "ws" in exchange.urls["api"]:
        exchange.urls["api"]["ws"]["linear"] = sim.ws_url + "/ws"
    return exchange


@pytest.fixture(scope="module")
def sim() -> Iterator[SimExchange]:
    with small_sim(symbols=10, speed=4.0) as s:
        yield s


def test_rest_trading_day(sim: SimExchange) -> None:
    ex = point(ccxt.binanceusdm(OPTIONS), sim)
    markets = ex.load_markets()
    btc = markets[S]
    assert btc["swap"] and btc["linear"] and btc["settle"] == "USDT" and btc["precision"]["price"] == 0.1
    assert abs(ex.fetch_time() - sim.now_ms()) < 60_000
    ticker = ex.fetch_ticker(S)
    assert ticker["last"] > 0 and ticker["high"] >= ticker["last"] >= ticker["low"] and ticker["baseVolume"] > 0
    assert len(ex.fetch_tickers()) == 10
    book = ex.fetch_order_book(S, 20)
    assert len(book["bids"]) == 20 and book["bids"][0][0] < book["asks"][0][0] and book["nonce"] > 0
    trades = ex.fetch_trades(S, limit=30)
    assert len(trades) == 30 and all(t["price"] > 0 and t["amount"] > 0 for t in trades)
    candles = ex.fetch_ohlcv(S, "1m", limit=20)
    assert len(candles) == 20 and all(c[2] >= max(c[1], c[4]) and c[3] <= min(c[1], c[4]) for c in candles)
    assert ex.fetch_bids_asks([S])[S]["bid"] > 0
    assert ex.fetch_funding_rate(S)["fundingRate"] is not None
    assert ex.fetch_balance()["USDT"]["total"] == 25_000.0
    assert ex.fetch_trading_fee(S)["taker"] == 0.0005

    ex.set_leverage(10, E)
    ex.set_margin_mode("isolated", E)
    assert ex.fetch_leverage(E)["longLeverage"] == 10 and ex.fetch_margin_mode(E)["marginMode"] == "isolated"
    ex.set_position_mode(True)
    assert ex.fetch_position_mode()["hedged"] is True
    ex.set_position_mode(False)
    with pytest.raises(ccxt.ExchangeError):  # -4059: nothing to change, exactly as the live venue says
        ex.set_position_mode(False)

    bought = ex.create_order(S, "market", "buy", 0.01)
    assert bought["status"] == "closed" and bought["filled"] == 0.01 and bought["average"] > 0
    last = ex.fetch_ticker(S)["last"]
    resting = ex.create_order(S, "limit", "buy", 0.01, round(last * 0.97, 1))
    assert resting["status"] == "open"
    edited = ex.edit_order(resting["id"], S, "limit", "buy", 0.02, round(last * 0.96, 1))
    assert edited["amount"] == 0.02 and edited["price"] == round(last * 0.96, 1) and edited["id"] == resting["id"]
    ioc = ex.create_order(S, "limit", "buy", 0.01, round(last * 0.97, 1), {"timeInForce": "IOC"})
    assert ex.fetch_order(ioc["id"], S)["status"] in ("expired", "canceled")
    with pytest.raises(ccxt.InvalidOrder, match="-5021"):  # FOK not fillable
        ex.create_order(S, "limit", "buy", 0.01, round(last * 0.97, 1), {"timeInForce": "FOK"})
    with pytest.raises(ccxt.InvalidOrder, match="-5022"):  # post-only would take
        ex.create_order(S, "limit", "buy", 0.01, round(last * 1.02, 1), {"postOnly": True})
    maker = ex.create_order(S, "limit", "sell", 0.01, round(last * 1.03, 1), {"postOnly": True})
    assert maker["postOnly"] and maker["status"] == "open"
    stop = ex.create_order(S, "market", "sell", 0.01, None, {"stopLossPrice": round(last * 0.9, 1),
                                                             "reduceOnly": True})
    take = ex.create_order(S, "market", "sell", None, None, {"takeProfitPrice": round(last * 1.1, 1),
                                                             "closePosition": True})
    assert stop["status"] == take["status"] == "open"
    triggers = ex.fetch_open_orders(S, params={"trigger": True})
    assert {o["id"] for o in triggers} == {stop["id"], take["id"]}
    assert ex.fetch_order(stop["id"], S, {"trigger": True})["triggerPrice"] == round(last * 0.9, 1)
    ex.cancel_order(stop["id"], S, {"trigger": True})
    assert ex.fetch_order(stop["id"], S, {"trigger": True})["status"] == "canceled"
    assert {o["id"] for o in ex.fetch_open_orders(S)} == {resting["id"], maker["id"]}
    ex.cancel_order(resting["id"], S)
    ex.cancel_all_orders(S)
    ex.cancel_all_orders(S, {"trigger": True})
    assert ex.fetch_open_orders(S) == [] and ex.fetch_open_orders(S, params={"trigger": True}) == []

    positions = [p for p in ex.fetch_positions() if p["contracts"]]
    assert [(p["symbol"], p["side"], p["contracts"]) for p in positions] == [(S, "long", 0.01)]
    assert positions[0]["entryPrice"] == bought["average"] and ex.fetch_leverage(S)["longLeverage"] == 20
    mine = ex.fetch_my_trades(S)
    assert [t["order"] for t in mine] == [bought["id"]] and mine[0]["fee"]["cost"] > 0
    assert {o["id"] for o in ex.fetch_orders(S)} >= {bought["id"], resting["id"], maker["id"]}
    ledger = ex.fetch_ledger()
    assert {e["type"] for e in ledger} >= {"transfer", "commission"}
    assert ex.fetch_funding_history(S) == []  # no 8 h boundary passed yet
    tiers = ex.fetch_leverage_tiers([S])[S]
    assert tiers[0]["maxLeverage"] == 125 and tiers[-1]["maxLeverage"] == 1
    closed = ex.create_order(S, "market", "sell", 0.01, None, {"reduceOnly": True})
    assert closed["status"] == "closed" and not [p for p in ex.fetch_positions([S]) if p["contracts"]]


def test_websocket_day(sim: SimExchange) -> None:
    async def go() -> None:
        ex = point(ccxtpro.binanceusdm(OPTIONS), sim)
        try:
            await ex.load_markets()
            ticker = await asyncio.wait_for(ex.watch_ticker(S), 30)
            assert ticker["symbol"] == S and ticker["last"] > 0
            trades = await asyncio.wait_for(ex.watch_trades(S), 30)
            assert trades and trades[-1]["symbol"] == S
            candles = await asyncio.wait_for(ex.watch_ohlcv(S, "1m"), 30)
            assert candles[-1][0] % 60_000 == 0
            quotes = await asyncio.wait_for(ex.watch_bids_asks([S]), 30)
            assert quotes[S]["ask"] > quotes[S]["bid"]
            assert (await asyncio.wait_for(ex.watch_mark_price(S), 30))["markPrice"] > 0
            for _ in range(5):  # kept from @depth diffs over the REST snapshot
                book = await asyncio.wait_for(ex.watch_order_book(S), 30)
            assert len(book["bids"]) >= 100 and book["bids"][0][0] < book["asks"][0][0]

            fills: list[dict] = []
            states: list[tuple[str, str]] = []
            balances: list[float] = []
            held: list[float] = []

            async def follow(watch: Any, sink: Any) -> None:
                while True:
                    sink(await watch())

            tasks = [asyncio.create_task(follow(lambda: ex.watch_my_trades(S), fills.extend)),
                     asyncio.create_task(follow(lambda: ex.watch_orders(S),
                                                lambda os: states.extend((o["id"], o["status"]) for o in os))),
                     asyncio.create_task(follow(ex.watch_balance, lambda b: balances.append(b["USDT"]["total"]))),
                     asyncio.create_task(follow(lambda: ex.watch_positions([S]),
                                                lambda ps: held.extend(p["contracts"] for p in ps)))]
            await asyncio.sleep(1.0)  # the user-data stream is open (listen key created)
            orders = [await ex.create_order(S, "market", "buy", 0.01) for _ in range(3)]

            def filled(side: str) -> dict[str, float]:
                """Quantity per order id of the fills seen (an order may fill at several levels)."""
                out: dict[str, float] = {}
                for t in fills:
                    if t["side"] == side:
                        out[t["order"]] = round(out.get(t["order"], 0.0) + t["amount"], 6)
                return out

            deadline = time.monotonic() + 60
            while sum(filled("buy").values()) < 0.03 - 1e-9 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert filled("buy") == {o["id"]: 0.01 for o in orders}
            assert all(t["fee"]["cost"] > 0 for t in fills)
            assert {(o["id"], "closed") for o in orders} <= set(states)
            while (not held or held[-1] != pytest.approx(0.03)) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert held[-1] == pytest.approx(0.03)
            # a stop that the market reaches within seconds closes the position through the algo service
            last = (await ex.fetch_ticker(S))["last"]
            near = [await ex.create_order(S, "market", "sell", None, None, {key: price, "closePosition": True})
                    for key, price in (("stopLossPrice", round(last - 3.0, 1)),
                                       ("takeProfitPrice", round(last + 3.0, 1)))]
            deadline = time.monotonic() + 60
            while sum(filled("sell").values()) < 0.03 - 1e-9 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert list(filled("sell").values()) == [0.03]  # one order closed the whole position
            assert balances and balances[-1] < 25_000.0
            statuses = {(await ex.fetch_order(o["id"], S, {"trigger": True}))["status"] for o in near}
            assert "closed" in statuses
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await ex.close()

    asyncio.run(go())
