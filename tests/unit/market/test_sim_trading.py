"""Orders beyond MARKET/LIMIT: the Algo Order API and its triggers, modify, caps, account settings, hedge mode,
isolated margin, funding income, margin calls and liquidation — with Binance's codes and user-data events."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from dolphin.market.errors import BinanceAPIError
from dolphin.market.sim.exchange import Exchange

from .test_sim_clock import HandClock, exchange

BTC = "BTCUSDT"


def code(call: Any) -> int:
    with pytest.raises(BinanceAPIError) as info:
        call()
    return info.value.code


def listen(ex: Exchange) -> list[dict]:
    """Capture the user-data events of an active listen key."""
    seen: list[dict] = []
    ex.userdata.publish = lambda key, payload: seen.append(json.loads(payload))
    ex.userdata.create({})
    return seen


def last_price(ex: Exchange, symbol: str = BTC) -> float:
    return ex.mark_of(ex.source.by_symbol[symbol], ex.now())


def market(ex: Exchange, side: str, qty: str, symbol: str = BTC, **extra: str) -> dict:
    return ex.new_order({"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty, **extra})


@pytest.fixture
def venue() -> tuple[Exchange, HandClock]:
    return exchange(10, balance=1_000_000.0)


def test_algo_orders_validate_like_binance(venue: tuple[Exchange, HandClock]) -> None:
    ex, _ = venue
    tr = ex.trading
    market(ex, "BUY", "0.050")
    last = last_price(ex)
    base = {"algoType": "CONDITIONAL", "symbol": BTC, "side": "SELL", "type": "STOP_MARKET"}
    below, above = f"{last * 0.9:.1f}", f"{last * 1.1:.1f}"
    assert code(lambda: tr.new_algo_order({**base, "triggerPrice": above, "quantity": "0.010"})) == -2021
    assert code(lambda: tr.new_algo_order({**base, "triggerPrice": below, "closePosition": "true",
                                           "quantity": "0.010"})) == -1106
    assert code(lambda: tr.new_algo_order({**base, "triggerPrice": below, "closePosition": "true",
                                           "reduceOnly": "true"})) == -1106
    assert code(lambda: tr.new_algo_order({**base, "algoType": "VP", "triggerPrice": below})) == -1130
    assert code(lambda: tr.new_algo_order({**base, "type": "TRAILING_STOP_MARKET", "triggerPrice": below})) == -1116
    assert code(lambda: tr.new_algo_order({**base, "type": "STOP", "triggerPrice": below, "quantity": "0.01"})) == -1102
    first = tr.new_algo_order({**base, "triggerPrice": below, "closePosition": "true"})
    assert first["algoStatus"] == "NEW" and first["closePosition"] is True
    assert code(lambda: tr.new_algo_order({**base, "triggerPrice": below, "closePosition": "true"})) == -4130
    for k in range(9):
        tr.new_algo_order({**base, "triggerPrice": f"{last * (0.8 - k / 100):.1f}", "quantity": "0.001",
                           "reduceOnly": "true"})
    assert code(lambda: tr.new_algo_order({**base, "triggerPrice": below, "quantity": "0.001"})) == -4045
    assert len(tr.open_algos({"symbol": BTC})) == 10
    assert tr.cancel_all_algos({"symbol": BTC})["code"] == 200 and tr.open_algos({}) == []
    assert code(lambda: tr.cancel_algo({"algoId": str(first["algoId"])})) == -2011
    assert tr.query_algo({"clientAlgoId": first["clientAlgoId"]})["algoStatus"] == "CANCELED"


def test_conditional_orders_trigger_on_the_price_path(venue: tuple[Exchange, HandClock]) -> None:
    ex, hand = venue
    seen = listen(ex)
    market(ex, "BUY", "0.050")
    last = last_price(ex)
    tick = 0.1
    stop = ex.trading.new_algo_order({"algoType": "CONDITIONAL", "symbol": BTC, "side": "SELL",
                                      "type": "STOP_MARKET", "triggerPrice": f"{last - 3 * tick:.1f}",
                                      "closePosition": "true"})
    take = ex.trading.new_algo_order({"algoType": "CONDITIONAL", "symbol": BTC, "side": "SELL",
                                      "type": "TAKE_PROFIT", "triggerPrice": f"{last + 3 * tick:.1f}",
                                      "price": f"{last * 0.98:.1f}", "quantity": "0.050", "reduceOnly": "true"})
    for _ in range(600):
        hand.advance_ms(1000)
        ex.on_tick(ex.now())
        if not ex.ledger.open_algos(BTC):
            break
    states = {a["aid"]: [e["o"]["X"] for e in seen if e["e"] == "ALGO_UPDATE" and e["o"]["aid"] == a["aid"]]
              for a in ({"aid": stop["algoId"]}, {"aid": take["algoId"]})}
    fired = [aid for aid, s in states.items() if s[-1] == "FINISHED"]
    assert len(fired) == 1, states
    assert states[fired[0]] == ["NEW", "TRIGGERING", "TRIGGERED", "FINISHED"]
    other = stop["algoId"] if fired[0] == take["algoId"] else take["algoId"]
    assert ex.ledger.position(BTC).amt == 0
    # the position is gone when the other one triggers: a close-position/reduce-only order is rejected
    for _ in range(3600):
        if ex.trading.query_algo({"algoId": str(other)})["algoStatus"] != "NEW":
            break
        hand.advance_ms(1000)
        ex.on_tick(ex.now())
    assert ex.trading.query_algo({"algoId": str(other)})["algoStatus"] in ("REJECTED", "NEW")
    child = ex.trading.query_algo({"algoId": str(fired[0])})
    assert child["triggerTime"] > 0
    orders = [e["o"] for e in seen if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["c"] == child["clientAlgoId"]]
    assert orders and orders[0]["ot"] == child["orderType"] and orders[-1]["X"] == "FILLED"
    assert float(orders[0]["sp"]) == float(child["triggerPrice"])


def test_modify_batch_countdown_and_the_open_order_cap(venue: tuple[Exchange, HandClock]) -> None:
    ex, hand = venue
    seen = listen(ex)
    tr = ex.trading
    bids = ex.books.compute(np.array([0]), ex.now(), levels=5).row(0)[0]
    price = f"{bids[-1][0] - 50:.1f}"
    rest = ex.new_order({"symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
                         "price": price, "newClientOrderId": "mod-1"})
    same = {"symbol": BTC, "side": "BUY", "orderId": str(rest["orderId"]), "quantity": "0.010", "price": price}
    assert code(lambda: tr.modify_order(same)) == -5027
    assert code(lambda: tr.modify_order({**same, "side": "SELL"})) == -1130
    moved = tr.modify_order({**same, "quantity": "0.020", "price": f"{float(price) - 10:.1f}"})
    assert (moved["orderId"], moved["origQty"], moved["status"]) == (rest["orderId"], "0.020", "NEW")
    assert [e["o"]["x"] for e in seen if e["e"] == "ORDER_TRADE_UPDATE"][-1] == "AMENDMENT"
    out = tr.batch_new({"batchOrders": json.dumps([{"symbol": BTC, "side": "BUY", "type": "LIMIT",
                                                    "timeInForce": "GTC", "quantity": "0.010", "price": price}] * 4
                                                  + [{"symbol": BTC, "side": "UP"}])})
    assert [("orderId" in o, o.get("code")) for o in out] == [(True, None)] * 4 + [(False, -1117)]
    assert code(lambda: tr.batch_new({"batchOrders": json.dumps([{}] * 6)})) == -1130
    cancelled = tr.batch_cancel({"symbol": BTC, "orderIdList": json.dumps([out[0]["orderId"], 999_999])})
    assert cancelled[0]["status"] == "CANCELED" and cancelled[1]["code"] == -2011
    for _ in range(200 - len(ex.ledger.open_orders(BTC))):
        ex.new_order({"symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
                      "price": price})
    assert code(lambda: market(ex, "BUY", "0.010")) == -2025
    assert tr.countdown_cancel_all({"symbol": BTC, "countdownTime": "5000"}) == {"symbol": BTC,
                                                                                 "countdownTime": "5000"}
    hand.advance_ms(4000)
    ex.on_tick(ex.now())
    assert len(ex.ledger.open_orders(BTC)) == 200
    hand.advance_ms(1500)
    ex.on_tick(ex.now())
    assert ex.ledger.open_orders(BTC) == []


def test_margin_type_position_mode_and_hedged_positions(venue: tuple[Exchange, HandClock]) -> None:
    ex, _ = venue
    vw = ex.views
    assert code(lambda: vw.change_margin_type({"symbol": BTC, "marginType": "CROSSED"})) == -4046
    market(ex, "BUY", "0.010")
    assert code(lambda: vw.change_margin_type({"symbol": BTC, "marginType": "ISOLATED"})) == -4048
    assert code(lambda: vw.change_position_mode({"dualSidePosition": "true"})) == -4068
    assert code(lambda: vw.change_position_mode({"dualSidePosition": "false"})) == -4059
    market(ex, "SELL", "0.010", reduceOnly="true")
    bids = ex.books.compute(np.array([0]), ex.now(), levels=5).row(0)[0]
    ex.new_order({"symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
                  "price": f"{bids[-1][0] - 50:.1f}"})
    assert code(lambda: vw.change_margin_type({"symbol": BTC, "marginType": "ISOLATED"})) == -4047
    assert code(lambda: vw.change_position_mode({"dualSidePosition": "true"})) == -4067
    ex.cancel_all({"symbol": BTC})
    assert vw.change_position_mode({"dualSidePosition": "true"}) == {"code": 200, "msg": "success"}
    assert vw.position_mode({}) == {"dualSidePosition": True}
    assert code(lambda: market(ex, "BUY", "0.010")) == -4061  # hedge mode needs LONG or SHORT
    assert code(lambda: market(ex, "BUY", "0.010", positionSide="LONG", reduceOnly="true")) == -1106
    market(ex, "BUY", "0.020", positionSide="LONG")
    market(ex, "SELL", "0.030", positionSide="SHORT")
    assert (ex.ledger.position(BTC, "LONG").amt, ex.ledger.position(BTC, "SHORT").amt) == (0.02, -0.03)
    closed = market(ex, "SELL", "0.050", positionSide="LONG")  # closing more than held: capped at the position
    assert closed["executedQty"] == "0.020" and ex.ledger.position(BTC, "LONG").amt == 0
    assert code(lambda: market(ex, "SELL", "0.010", positionSide="LONG")) == -2022
    rows = [(r["positionSide"], r["positionAmt"]) for r in ex.position_risk({"symbol": BTC})]
    assert rows == [("LONG", "0.000"), ("SHORT", "-0.030")]


def test_isolated_margin_is_held_apart_and_released(venue: tuple[Exchange, HandClock]) -> None:
    ex, _ = venue
    ex.change_leverage({"symbol": "ETHUSDT", "leverage": "10"})
    assert ex.views.change_margin_type({"symbol": "ETHUSDT", "marginType": "ISOLATED"})["code"] == 200
    available = ex.ledger.margins(ex.marks(ex.now()))["available"]
    order = market(ex, "BUY", "10.000", symbol="ETHUSDT")
    held = ex.ledger.position("ETHUSDT").isolated_wallet
    assert held == pytest.approx(10 * float(order["avgPrice"]) / 10, rel=1e-9)
    m = ex.ledger.margins(ex.marks(ex.now()))
    fee = float(order["cumQuote"]) * 0.0005
    assert m["available"] == pytest.approx(available - held - fee, abs=1e-6)
    assert m["cross_wallet"] == pytest.approx(m["wallet"] - held)
    risk = ex.position_risk({"symbol": "ETHUSDT"})[0]
    assert risk["marginType"] == "isolated" and float(risk["isolatedWallet"]) == pytest.approx(held)
    assert 0 < float(risk["liquidationPrice"]) < float(order["avgPrice"])
    market(ex, "SELL", "4.000", symbol="ETHUSDT", reduceOnly="true")
    assert ex.ledger.position("ETHUSDT").isolated_wallet == pytest.approx(held * 0.6)
    market(ex, "SELL", "6.000", symbol="ETHUSDT", reduceOnly="true")
    assert ex.ledger.position("ETHUSDT").isolated_wallet == 0.0


def test_funding_income_and_fills_are_recorded(venue: tuple[Exchange, HandClock]) -> None:
    ex, hand = venue
    seen = listen(ex)
    buy = market(ex, "BUY", "0.100")
    sell = market(ex, "SELL", "0.040", reduceOnly="true")
    boundary = ex.source.next_funding_ms(ex.now())
    hand.advance_ms(boundary - ex.now() + 1)
    ex.on_tick(ex.now())
    trades = ex.views.user_trades({"symbol": BTC})
    assert [t["orderId"] for t in trades] == [buy["orderId"]] * len([t for t in trades if t["side"] == "BUY"]) + \
        [sell["orderId"]] * len([t for t in trades if t["side"] == "SELL"])
    assert sum(float(t["qty"]) for t in trades if t["side"] == "SELL") == pytest.approx(0.04)
    income = ex.views.income({"symbol": BTC})
    kinds = [r["incomeType"] for r in income]
    assert kinds.count("COMMISSION") == len(trades) and "REALIZED_PNL" in kinds and kinds[-1] == "FUNDING_FEE"
    paid = float(income[-1]["income"])
    assert paid != 0 and ex.views.income({"incomeType": "TRANSFER"})[0]["income"] == "1000000.00000000"
    funding = [e for e in seen if e["e"] == "ACCOUNT_UPDATE" and e["a"]["m"] == "FUNDING_FEE"]
    assert len(funding) == 1 and float(funding[0]["a"]["B"][0]["bc"]) == pytest.approx(paid)
    assert code(lambda: ex.views.user_trades({"symbol": BTC, "fromId": "1", "startTime": "1"})) == -4133


def test_margin_call_then_liquidation(venue: tuple[Exchange, HandClock]) -> None:
    ex, hand = venue
    seen = listen(ex)
    ex.change_leverage({"symbol": BTC, "leverage": "100"})
    market(ex, "BUY", "1.000")
    pos = ex.ledger.position(BTC)
    mark = last_price(ex)
    maint = mark * 0.004
    upnl = pos.amt * (mark - pos.entry_price)
    ex.state.wallet_balance = maint / 0.85 - upnl  # losses took the wallet down to a margin ratio of 85 %
    ex.on_tick(ex.now())
    calls = [e for e in seen if e["e"] == "MARGIN_CALL"]
    assert len(calls) == 1 and calls[0]["p"][0]["s"] == BTC
    ex.on_tick(ex.now())
    assert len([e for e in seen if e["e"] == "MARGIN_CALL"]) == 1  # once per episode
    ex.state.wallet_balance = maint * 0.5 - upnl
    hand.advance_ms(100)
    ex.on_tick(ex.now())
    assert ex.ledger.position(BTC).amt == 0
    forced = ex.views.force_orders({})
    assert len(forced) == 1 and forced[0]["clientOrderId"].startswith("autoclose-") and forced[0]["status"] == "FILLED"
    assert ex.liquidations and ex.liquidations[0][1] == "SELL"
    fills = [e["o"] for e in seen if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["c"].startswith("autoclose-")]
    assert fills[-1]["o"] == "LIQUIDATION" and fills[-1]["X"] == "FILLED"
