"""REST history sources: kline rows placed on the bar grid, aggTrades paged and bucketed, refused symbols."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from dolphin.market.errors import BinanceAPIError, MarketUnavailableError
from dolphin.market.rest import AggTradeRow
from dolphin.services.scanner.history import KlineHistory, TradeHistory, interval_name

pytestmark = [pytest.mark.data_integrity]

T0 = 1_767_657_600_000
BAR = 5_000


@dataclass
class Row:
    open_time: int
    close: float


class FakeRest:
    def __init__(self) -> None:
        self.trades: dict[str, list[AggTradeRow]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.down = False

    async def klines_range(self, symbol: str, interval: str, start: int, end: int, *, page_limit: int) -> list[Row]:
        self.calls.append(("klines_range", symbol, interval, start, end, page_limit))
        if self.down:
            raise MarketUnavailableError("away")
        if symbol == "NEWUSDT":
            return [Row(T0 + 2 * BAR, 7.0)]           # listed later: earlier bars are NaN
        if symbol == "BADUSDT":
            raise BinanceAPIError(-1121, "Invalid symbol.", 400)
        return [Row(T0 + k * BAR, 100.0 + k) for k in range(4)] + [Row(T0 + 2 * BAR + 1, 1.0)]  # off-grid: ignored

    async def klines(self, symbol: str, interval: str, start: int, end: int, limit: int) -> list[Row]:
        return [Row(start, 55.0)] if symbol != "NEWUSDT" else []

    async def agg_trades(self, symbol: str, *, start_ms: int, end_ms: int, limit: int) -> list[AggTradeRow]:
        self.calls.append(("agg_trades", symbol, start_ms, end_ms, limit))
        rows = [t for t in self.trades[symbol] if start_ms <= t.trade_time <= end_ms]
        return rows[:limit]


def agg(i: int, ts: int, price: float) -> AggTradeRow:
    return AggTradeRow(agg_id=i, price=price, qty=1.0, first_trade_id=i, last_trade_id=i, trade_time=ts,
                       buyer_is_maker=False)


def test_interval_names() -> None:
    assert interval_name(5_000) == "5s" and interval_name(60_000) == "1m" and interval_name(7_000) == "7s"
    with pytest.raises(ValueError):
        interval_name(1_500)


def test_kline_history_on_the_grid_with_nan_where_there_is_no_candle(caplog: pytest.LogCaptureFixture) -> None:
    rest = FakeRest()
    h = KlineHistory(rest, ["BTCUSDT", "NEWUSDT", "BADUSDT"], BAR)
    out = asyncio.run(h.fetch(T0, T0 + 4 * BAR))
    assert out.shape == (5, 3)
    assert out[:4, 0].tolist() == [100.0, 101.0, 102.0, 103.0] and math.isnan(out[4, 0])
    assert np.isnan(out[[0, 1, 3, 4], 1]).all() and out[2, 1] == 7.0
    assert np.isnan(out[:, 2]).all() and "BADUSDT" in caplog.text
    assert rest.calls[0] == ("klines_range", "BTCUSDT", "5s", T0, T0 + 4 * BAR, 499)
    assert asyncio.run(h.repair(T0, [0, 1])) == {0: 55.0}
    rest.down = True
    with pytest.raises(MarketUnavailableError):
        asyncio.run(h.fetch(T0, T0 + BAR))


def test_trade_history_pages_dedupes_buckets_and_carries_forward() -> None:
    rest = FakeRest()
    # 2,500 trades in bucket 0 (three pages, same-ms trades across a page boundary), none in bucket 1, one in 2
    rest.trades["BTCUSDT"] = ([agg(i, T0 + i // 2, 100.0 + i / 10_000) for i in range(2_500)]
                              + [agg(5_000, T0 + 2 * BAR + 10, 200.0)])
    rest.trades["ETHUSDT"] = [agg(1, T0 + 3 * BAR + 5, 3.0)]   # nothing before bucket 3
    h = TradeHistory(rest, ["BTCUSDT", "ETHUSDT"], BAR)
    out = asyncio.run(h.fetch(T0, T0 + 3 * BAR))
    assert out[0, 0] == 100.0 + 2_499 / 10_000       # the last trade of bucket 0
    assert out[1, 0] == out[0, 0]                     # no trade: carried forward
    assert out[2, 0] == 200.0 and out[3, 0] == 200.0
    assert np.isnan(out[:3, 1]).all() and out[3, 1] == 3.0
    pages = [c for c in rest.calls if c[1] == "BTCUSDT"]
    assert len(pages) == 3 and all(c[4] == 1_000 for c in pages)
    assert TradeHistory.carry_forward and asyncio.run(h.repair(T0, [0])) == {}
