"""Every documented Binance payload decodes into the adapter's typed structs; bad ones raise at the edge."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from dolphin.market import payloads as P

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "binance"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(("fixture", "kind"), [
    ("time.json", P.ServerTime), ("exchangeInfo.json", P.ExchangeInfo), ("klines.json", list[P.Kline]),
    ("depth.json", P.OrderBook), ("premiumIndex.json", P.PremiumIndex), ("premiumIndex_all.json", list[P.PremiumIndex]),
    ("fundingRate.json", list[P.FundingRate]), ("takerlongshortRatio.json", list[P.TakerRatio]),
    ("order_new.json", P.Order), ("order_query.json", P.Order), ("order_cancel.json", P.Order),
    ("openOrders.json", list[P.Order]), ("account_v2.json", P.Account), ("positionRisk_v2.json", list[P.Position]),
    ("leverage.json", P.LeverageInfo), ("error.json", P.ApiErrorBody)])
def test_documented_rest_examples_decode(fixture: str, kind: object) -> None:
    value = P.decode(kind, raw(fixture))
    assert value


def test_decoded_values_are_numbers_not_strings() -> None:
    book = P.decode(P.OrderBook, raw("depth.json"))
    assert book.bids == ((4.0, 431.0),) and book.asks == ((4.000002, 12.0),)
    (k,) = P.decode(list[P.Kline], raw("klines.json"))
    assert (k.open_time, k.open, k.trades, k.close_time) == (1499040000000, 0.0163479, 308, 1499644799999)
    info = P.decode(P.ExchangeInfo, raw("exchangeInfo.json"))
    blz = info.symbol("BLZUSDT")
    assert blz is not None and (blz.tick_size, blz.step_size, blz.min_qty, blz.min_notional) == (0.0001, 1.0, 1.0, 5.0)
    ratio = P.decode(list[P.TakerRatio], raw("takerlongshortRatio.json"))[0]
    assert ratio.timestamp == 1585614900000 and ratio.buy_sell_ratio == 1.5586
    acct = P.decode(P.Account, raw("account_v2.json"))
    assert acct.total_wallet_balance == 23.72469206 and acct.position("BTCUSDT").leverage == 100  # type: ignore[union-attr]
    order = P.decode(P.Order, raw("order_query.json"))
    assert order.is_open and order.orig_qty == 0.4 and order.time == 1579276756075


@pytest.mark.parametrize(("fixture", "kind", "stream"), [
    ("ws_aggTrade.json", P.AggTrade, "btcusdt@aggTrade"), ("ws_kline.json", P.KlineEvent, "btcusdt@kline_1m"),
    ("ws_depth5.json", P.DepthUpdate, "btcusdt@depth5@100ms"),
    ("ws_markPrice.json", P.MarkPrice, "btcusdt@markPrice@1s")])
def test_documented_stream_examples_decode_raw_and_combined(fixture: str, kind: type, stream: str) -> None:
    payload = raw(fixture)
    assert type(P.RAW_PAYLOAD_DECODER.decode(payload)) is kind
    env = P.ENVELOPE_DECODER.decode(b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}")
    assert env.stream == stream and type(env.data) is kind and env.data.symbol == "BTCUSDT"
    assert P.stream_kind(stream) == {"AggTrade": "aggTrade", "KlineEvent": "kline", "DepthUpdate": "depth",
                                     "MarkPrice": "markPrice"}[kind.__name__]


def test_depth_example_is_not_crossed_and_a_crossed_one_is() -> None:
    book = P.RAW_PAYLOAD_DECODER.decode(raw("ws_depth5.json"))
    assert isinstance(book, P.DepthUpdate) and not book.is_crossed()
    data = json.loads(raw("ws_depth5.json"))
    data["a"][0][0] = "7403.89"
    crossed = P.RAW_PAYLOAD_DECODER.decode(json.dumps(data))
    assert crossed.is_crossed()
    data["b"] = []
    assert P.RAW_PAYLOAD_DECODER.decode(json.dumps(data)).is_crossed()


@pytest.mark.parametrize("bad", [
    b"", b"{", b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1', b"[1,2,3]", b'"text"',
    b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":"x","s":"BTCUSDT"}}',
    b'{"stream":"btcusdt@aggTrade","data":{"e":"noSuchEvent","E":1}}',
    b'{"stream":"btcusdt@depth5","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["abc","1"]],"a":[]}}',
    b'{"data":{"e":"aggTrade"}}'])
def test_malformed_and_truncated_frames_raise_decode_errors(bad: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        P.ENVELOPE_DECODER.decode(bad)


def test_control_replies_decode() -> None:
    reply = P.CONTROL_DECODER.decode(raw("ws_subscribe_reply.json"))
    assert reply.id == 1 and reply.result is None and reply.code is None
    assert P.CONTROL_DECODER.decode(raw("ws_list_subscriptions_reply.json")).result == ["btcusdt@aggTrade"]


def test_stream_kinds() -> None:
    assert [P.stream_kind(s) for s in ("a@depth5@500ms", "a@depth20", "a@kline_5s", "a@markPrice", "a@aggTrade",
                                       "a@trade", "nonsense")] == ["depth", "depth", "kline", "markPrice", "aggTrade",
                                                                   "", ""]
