"""Tickers and trade history agree with the klines and the tape they come from."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.market.errors import BinanceAPIError

from .test_sim_clock import exchange


def test_the_24h_ticker_sums_the_klines_of_its_window() -> None:
    ex, hand = exchange(5)
    hand.advance_ms(7_300)  # inside a bar: the window ends in a forming bar
    now = ex.now()
    row = ex.market_data.ticker_24hr({"symbol": "ETHUSDT"})
    assert isinstance(row, dict)
    bars = ex.klines({"symbol": "ETHUSDT", "interval": "5s", "startTime": str(row["openTime"]), "limit": "1500"})
    while bars[-1][0] + 5000 <= now:
        more = ex.klines({"symbol": "ETHUSDT", "interval": "5s", "startTime": str(bars[-1][0] + 5000), "limit": "1500"})
        bars += more
    assert bars[0][0] == row["openTime"] and now - 86_400_000 < row["openTime"] <= now - 86_400_000 + 5000
    assert float(row["volume"]) == pytest.approx(sum(float(b[5]) for b in bars), rel=1e-9)
    assert row["openPrice"] == bars[0][1] and row["lastPrice"] == bars[-1][4]
    assert float(row["highPrice"]) == max(float(b[2]) for b in bars)
    assert float(row["lowPrice"]) == min(float(b[3]) for b in bars)
    assert row["count"] == row["lastId"] - row["firstId"] + 1 and row["closeTime"] == now
    everyone = ex.market_data.ticker_24hr({})
    assert isinstance(everyone, list) and len(everyone) == 5 and everyone[1] == row


def test_trades_and_agg_trades_page_through_the_tape() -> None:
    ex, _ = exchange(5)
    md = ex.market_data
    latest = md.agg_trades({"symbol": "BTCUSDT", "limit": "20"})
    ids = [t["a"] for t in latest]
    assert len(ids) == 20 and ids == sorted(ids) and latest[-1]["T"] <= ex.now()
    again = md.agg_trades({"symbol": "BTCUSDT", "fromId": str(ids[5]), "limit": "5"})
    assert [t["a"] for t in again] == ids[5:10]
    window = md.agg_trades({"symbol": "BTCUSDT", "startTime": str(latest[0]["T"]), "endTime": str(latest[-1]["T"])})
    assert [t["a"] for t in window] == ids
    with pytest.raises(BinanceAPIError):
        md.agg_trades({"symbol": "BTCUSDT", "startTime": "0", "endTime": str(3_600_001)})
    raw = md.trades({"symbol": "BTCUSDT", "limit": "20"})
    assert [t["id"] for t in raw] == ids and all(t["isBuyerMaker"] == a["m"] for t, a in zip(raw, latest))
    assert md.trades({"symbol": "BTCUSDT", "fromId": str(ids[0]), "limit": "3"}, historical=True) == raw[:3]
    bars = ex.tape.bar_trades(ex.source.bar_at(latest[-1]["T"]))
    col = ex.source.by_symbol["BTCUSDT"].column
    printed = {int(i): float(q) for i, q in zip(bars.ids, bars.qty[:, col])}
    assert all(float(t["q"]) == pytest.approx(printed[t["a"]]) for t in latest if t["a"] in printed)


def test_book_ticker_is_the_top_of_the_book() -> None:
    ex, _ = exchange(5)
    top = ex.market_data.book_ticker({"symbol": "SOLUSDT"})
    book = ex.depth({"symbol": "SOLUSDT", "limit": "5"})
    assert isinstance(top, dict)
    assert (top["bidPrice"], top["bidQty"], top["askPrice"], top["askQty"]) == (*book["bids"][0], *book["asks"][0])
    assert top["lastUpdateId"] == book["lastUpdateId"]
    deep = ex.depth({"symbol": "SOLUSDT", "limit": "1000"})
    assert deep["bids"][:5] == book["bids"] and len(deep["bids"]) == 1000 and len(deep["asks"]) == 1000
    assert np.all(np.diff([float(p) for p, _ in deep["bids"]]) < 0)
