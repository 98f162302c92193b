"""The venue's rules: order validation with Binance's codes, matching against the book, account views, funding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dolphin.market.errors import (
    BadPrecisionError,
    BadRequestError,
    BadSymbolError,
    BinanceAPIError,
    ClientOrderIdInvalidError,
    DuplicateClientOrderIdError,
    InsufficientMarginError,
    OrderRejectedError,
    UnknownOrderError,
)
from dolphin.market.sim.config import MAKER_FEE, TAKER_FEE
from dolphin.market.sim.exchange import Exchange

from .test_sim_clock import DAY_MS, HandClock, exchange


@pytest.fixture
def venue() -> tuple[Exchange, HandClock]:
    """A well-funded account: the book-walking tests trade several depth5 levels of BTC and ETH."""
    ex, hand = exchange(10, balance=10_000_000.0)
    for symbol in ("BTCUSDT", "ETHUSDT"):  # 1x: the position cap (31.25 M / leverage) allows a whole depth5 side
        ex.change_leverage({"symbol": symbol, "leverage": "1"})
    return ex, hand


def book(ex: Exchange, symbol: str = "BTCUSDT") -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    ins = ex.source.by_symbol[symbol]
    return ex.books.compute(np.array([ins.column]), ex.now(), levels=5).row(0)


def code_of(exc: pytest.ExceptionInfo[BinanceAPIError]) -> int:
    return exc.value.code


@pytest.mark.parametrize(("params", "cls", "code"), [
    ({"symbol": "NOPEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}, BadSymbolError, -1121),
    ({"side": "BUY", "type": "MARKET", "quantity": "1"}, BadRequestError, -1102),
    ({"symbol": "BTCUSDT", "side": "UP", "type": "MARKET", "quantity": "1"}, BadRequestError, -1117),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "ICEBERG", "quantity": "1"}, BadRequestError, -1116),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "1", "stopPrice": "1"},
     OrderRejectedError, -4120),  # conditional orders go to the Algo Order API, as on the live venue
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}, BadRequestError, -1102),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0"}, BadPrecisionError, -4003),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0001"}, BadPrecisionError, -1111),
    ({"symbol": "DOGEUSDT", "side": "BUY", "type": "MARKET", "quantity": "10"}, BadPrecisionError, -4164),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "100000"}, BadPrecisionError, -4005),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01"}, BadRequestError, -1102),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "timeInForce": "XYZ", "price": "1"},
     BadRequestError, -1115),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "timeInForce": "GTC",
      "price": "90000.05"}, BadPrecisionError, -1111),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "timeInForce": "GTC",
      "price": "999999.9"}, BadPrecisionError, -4016),
    ({"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.01", "timeInForce": "GTC",
      "price": "1000.0"}, BadPrecisionError, -4024),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01", "price": "1"}, BadRequestError, -1106),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01", "newClientOrderId": "bad id!"},
     ClientOrderIdInvalidError, -4015),
    ({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01", "reduceOnly": "true"},
     OrderRejectedError, -2022),
    ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01", "positionSide": "LONG"},
     OrderRejectedError, -4061),
])
def test_bad_orders_are_rejected_with_binance_codes(venue: tuple[Exchange, HandClock], params: dict, cls: type,
                                                   code: int) -> None:
    ex, _ = venue
    with pytest.raises(cls) as info:
        ex.new_order(params)
    assert code_of(info) == code and not ex.state.orders


def test_insufficient_margin_and_duplicate_client_ids() -> None:
    ex, _ = exchange(10)  # the default 25,000 USDT
    ex.change_leverage({"symbol": "BTCUSDT", "leverage": "1"})
    with pytest.raises(InsufficientMarginError) as info:
        ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"})
    assert info.value.msg == "Margin is insufficient."
    ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01", "newClientOrderId": "x1"})
    with pytest.raises(DuplicateClientOrderIdError) as dup:
        ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01",
                      "newClientOrderId": "x1"})
    assert dup.value.code == -4116 and dup.value.msg == "ClientOrderId is duplicated."
    with pytest.raises(BadRequestError):
        ex.change_leverage({"symbol": "BTCUSDT"})
    with pytest.raises(OrderRejectedError, match="Leverage 126 is not valid"):
        ex.change_leverage({"symbol": "BTCUSDT", "leverage": "126"})


def test_market_order_walks_the_book_level_by_level(venue: tuple[Exchange, HandClock]) -> None:
    ex, _ = venue
    bids, asks = book(ex)
    qty = round(asks[0][1] + asks[1][1] / 2, 3)
    view = ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": f"{qty:.3f}"})
    assert view["status"] == "FILLED" and view["executedQty"] == f"{qty:.3f}"
    second = round(qty - asks[0][1], 3)
    avg = (asks[0][0] * asks[0][1] + asks[1][0] * second) / qty
    assert float(view["avgPrice"]) == pytest.approx(avg, abs=1e-5)  # avgPrice is printed with 5 decimals
    pos = ex.ledger.position("BTCUSDT")
    assert pos.amt == qty and pos.entry_price == pytest.approx(avg)
    assert ex.state.fees_paid == pytest.approx(qty * avg * TAKER_FEE)


def test_market_order_beyond_depth5_fills_the_rest_further_out(venue: tuple[Exchange, HandClock]) -> None:
    ex, _ = venue
    bids, _ = book(ex, "ETHUSDT")
    total = sum(q for _, q in bids)
    qty = round(total + 5.0, 3)
    view = ex.new_order({"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": f"{qty:.3f}"})
    assert view["status"] == "FILLED"
    beyond = bids[-1][0] - (bids[0][0] - bids[-1][0])
    expected = (sum(p * q for p, q in bids) + beyond * (qty - total)) / qty
    assert float(view["avgPrice"]) == pytest.approx(expected, abs=1e-5)
    vwap5 = sum(p * q for p, q in bids) / total
    assert float(view["avgPrice"]) < vwap5  # the remainder went below the 5th level


def test_limit_orders_gtc_ioc_fok_gtx(venue: tuple[Exchange, HandClock]) -> None:
    ex, hand = venue
    bids, asks = book(ex)
    best_bid = bids[0][0]
    rest = ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010",
                         "timeInForce": "GTC", "price": f"{best_bid:.1f}"})
    assert rest["status"] == "NEW" and ex.open_orders({"symbol": "BTCUSDT"})[0]["orderId"] == rest["orderId"]
    with pytest.raises(OrderRejectedError) as gtx:
        ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010", "timeInForce": "GTX",
                      "price": f"{asks[0][0]:.1f}"})
    assert gtx.value.code == -5022
    total = sum(q for _, q in asks[:2])
    with pytest.raises(OrderRejectedError) as fok:
        ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": f"{total + 1:.3f}",
                      "timeInForce": "FOK", "price": f"{asks[1][0]:.1f}"})
    assert fok.value.code == -5021
    ioc = ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": f"{total + 1:.3f}",
                        "timeInForce": "IOC", "price": f"{asks[1][0]:.1f}"})
    assert ioc["status"] == "EXPIRED" and float(ioc["executedQty"]) == pytest.approx(total)
    # The resting bid fills as maker, in full at its price, once the best ask reaches it.
    start = ex.now()
    for _ in range(20_000):
        hand.advance_ms(100)
        _, a = book(ex)
        if a[0][0] <= best_bid:
            break
    else:
        pytest.fail("the ask never came down to the resting bid within 30 minutes")
    fees_before = ex.state.fees_paid
    ex.on_tick(ex.now())
    done = ex.query_order({"symbol": "BTCUSDT", "orderId": str(rest["orderId"])})
    assert done["status"] == "FILLED" and float(done["avgPrice"]) == best_bid and done["time"] <= start
    assert ex.state.fees_paid - fees_before == pytest.approx(0.01 * best_bid * MAKER_FEE)


def test_query_cancel_and_unknown_orders(venue: tuple[Exchange, HandClock]) -> None:
    ex, _ = venue
    bids, _ = book(ex)
    o = ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010", "timeInForce": "GTC",
                      "price": f"{bids[-1][0]:.1f}", "newClientOrderId": "mine-1"})
    assert ex.query_order({"symbol": "BTCUSDT", "origClientOrderId": "mine-1"})["orderId"] == o["orderId"]
    cancelled = ex.cancel_order({"symbol": "BTCUSDT", "orderId": str(o["orderId"])})
    assert cancelled["status"] == "CANCELED" and "avgPrice" not in cancelled and "cumQty" in cancelled
    with pytest.raises(UnknownOrderError) as again:
        ex.cancel_order({"symbol": "BTCUSDT", "orderId": str(o["orderId"])})
    assert again.value.code == -2011
    with pytest.raises(UnknownOrderError) as missing:
        ex.query_order({"symbol": "BTCUSDT", "orderId": "999999"})
    assert missing.value.code == -2013
    with pytest.raises(BadRequestError):
        ex.query_order({"symbol": "BTCUSDT"})
    with pytest.raises(DuplicateClientOrderIdError):  # used ids stay used, even after a cancel
        ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01",
                      "newClientOrderId": "mine-1"})


def test_positions_pnl_and_account_views(venue: tuple[Exchange, HandClock]) -> None:
    ex, hand = venue
    ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.05"})
    hand.advance_ms(60_000)
    mark = ex.mark_of(ex.source.by_symbol["BTCUSDT"], ex.now())
    pos = ex.ledger.position("BTCUSDT")
    acct = ex.account(2)
    row = next(p for p in acct["positions"] if p["symbol"] == "BTCUSDT")
    assert float(row["unrealizedProfit"]) == pytest.approx(0.05 * (mark - pos.entry_price), abs=1e-6)
    assert float(acct["totalMarginBalance"]) == pytest.approx(
        float(acct["totalWalletBalance"]) + float(acct["totalUnrealizedProfit"]), abs=1e-6)
    risk = ex.position_risk({"symbol": "BTCUSDT"})
    assert len(risk) == 1 and float(risk[0]["positionAmt"]) == 0.05 and float(risk[0]["markPrice"]) == mark
    assert len(ex.position_risk({}, 3)) == 1 and len(ex.account(3)["positions"]) == 1
    assert len(ex.position_risk({})) == 10
    wallet = ex.state.wallet_balance
    close = ex.new_order({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.05",
                          "reduceOnly": "true"})
    realized = (float(close["avgPrice"]) - pos.entry_price) * 0.05
    assert ex.state.wallet_balance == pytest.approx(wallet + realized - 0.05 * float(close["avgPrice"]) * TAKER_FEE)
    assert ex.ledger.position("BTCUSDT").amt == 0


def test_funding_is_settled_every_eight_hours(venue: tuple[Exchange, HandClock]) -> None:
    ex, hand = venue
    ex.new_order({"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "1.000"})
    wallet = ex.state.wallet_balance
    boundary = ex.source.next_funding_ms(ex.now())
    hand.advance_ms(boundary - ex.now() - 1)
    ex.on_tick(ex.now())
    assert ex.state.wallet_balance == wallet
    hand.advance_ms(2)
    ex.on_tick(ex.now())
    col = ex.source.by_symbol["ETHUSDT"].column
    rate = float(ex.source.funding_rates(boundary - 1)[col])
    mark = float(ex.source.price_at(boundary)[col])
    assert ex.state.wallet_balance == pytest.approx(wallet + 1.0 * mark * rate)  # a short receives positive funding
    assert ex.state.last_funding_ms == boundary


def test_account_state_survives_a_restart(tmp_path: Path) -> None:
    ex, _ = exchange(10, state_dir=tmp_path / "s")
    ex.store.lock()
    ex.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.02", "newClientOrderId": "k1"})
    ex.change_leverage({"symbol": "ETHUSDT", "leverage": "7"})
    ex.store.unlock()
    again, _ = exchange(10, state_dir=tmp_path / "s")
    assert again.ledger.position("BTCUSDT").amt == 0.02 and again.ledger.leverage("ETHUSDT") == 7
    with pytest.raises(DuplicateClientOrderIdError):
        again.new_order({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01",
                         "newClientOrderId": "k1"})
    assert again.query_order({"symbol": "BTCUSDT", "origClientOrderId": "k1"})["status"] == "FILLED"


def test_market_data_is_deterministic() -> None:
    a, _ = exchange(10)
    b, _ = exchange(10)
    params = {"symbol": "SOLUSDT", "interval": "1m", "limit": "50"}
    assert a.klines(params) == b.klines(params)
    assert a.depth({"symbol": "SOLUSDT", "limit": "20"}) == b.depth({"symbol": "SOLUSDT", "limit": "20"})
    assert a.funding_history({"symbol": "SOLUSDT"}) == b.funding_history({"symbol": "SOLUSDT"})


def test_market_data_parameter_errors(venue: tuple[Exchange, HandClock]) -> None:
    ex, _ = venue
    for params, code in (({"symbol": "BTCUSDT", "interval": "7m"}, -1120), ({"symbol": "BTCUSDT"}, -1102),
                         ({"symbol": "BTCUSDT", "interval": "1m", "limit": "5000"}, -1130),
                         ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "10", "endTime": "5"}, -1023)):
        with pytest.raises(BinanceAPIError) as info:
            ex.klines(params)
        assert info.value.code == code
    with pytest.raises(BinanceAPIError) as depth:
        ex.depth({"symbol": "BTCUSDT", "limit": "7"})
    assert depth.value.code == -4021
    with pytest.raises(BinanceAPIError):
        ex.taker_ratio({"symbol": "BTCUSDT", "period": "7m"})
    assert "5s" in ex.intervals and ex.intervals["1d"] == DAY_MS


def test_taker_ratio_and_funding_history_shapes(venue: tuple[Exchange, HandClock]) -> None:
    ex, _ = venue
    rows = ex.taker_ratio({"symbol": "BTCUSDT", "period": "5m", "limit": "12"})
    assert len(rows) == 12
    stamps = [int(r["timestamp"]) for r in rows]
    assert stamps == sorted(stamps) and stamps[-1] + 300_000 <= ex.now()
    for r in rows:
        assert float(r["buySellRatio"]) == pytest.approx(float(r["buyVol"]) / float(r["sellVol"]), abs=1e-4)
    hist = ex.funding_history({"symbol": "BTCUSDT", "limit": "1000"})
    assert [h["fundingTime"] for h in hist] == [ex.source.first_ms + k * 28_800_000 for k in range(1, 4)]
    everyone = ex.funding_history({"limit": "5"})
    assert len(everyone) == 5 and everyone[-1]["fundingTime"] == hist[-1]["fundingTime"]
