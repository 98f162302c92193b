"""Bar builders: completion by every symbol, lost and late closes, bursts, deadlines, dead symbols, aggTrade buckets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dolphin.market import payloads as P
from dolphin.market.bars import BarTiming, KlineBarBuilder, TradeBarBuilder, make_builder

pytestmark = [pytest.mark.data_integrity]

T0 = 1_767_657_600_000  # a bar open on the 5 s grid
BAR = 5_000
SYMS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def kline(symbol: str, open_ms: int, close: float, closed: bool, event_ms: int | None = None) -> P.KlineEvent:
    event = event_ms if event_ms is not None else (open_ms + BAR if closed else open_ms + 2_500)
    bar = P.KlineBar(start_time=open_ms, close_time=open_ms + BAR - 1, symbol=symbol, interval="5s",
                     first_trade_id=0, last_trade_id=0, open=close, close=close, high=close, low=close, volume=1.0,
                     trades=1, closed=closed, quote_volume=1.0, taker_buy_volume=0.5, taker_buy_quote_volume=0.5)
    return P.KlineEvent(event_time=event, symbol=symbol, kline=bar)


def trade(symbol: str, ts: int, price: float, agg_id: int = 1) -> P.AggTrade:
    return P.AggTrade(event_time=ts, symbol=symbol, agg_id=agg_id, price=price, qty=1.0, first_trade_id=agg_id,
                      last_trade_id=agg_id, trade_time=ts, buyer_is_maker=False)


def kline_builder(clock: Clock, **timing: object) -> KlineBarBuilder:
    return KlineBarBuilder(SYMS, BarTiming(**{"bar_ms": BAR, "grace_ms": 1_000, "settle_s": 0.5, **timing}),
                           clock=clock)


def feed(builder: object, messages: list[object]) -> list:
    out = []
    for m in messages:
        out.extend(builder.on_message(m))  # type: ignore[attr-defined]
    return out


# ------------------------------------------------------------------ kline bars

def test_a_bar_completes_on_the_last_final_kline_labelled_by_its_open() -> None:
    clock = Clock()
    b = kline_builder(clock)
    assert b.streams() == ["btcusdt@kline_5s", "ethusdt@kline_5s", "solusdt@kline_5s"]
    assert feed(b, [kline("BTCUSDT", T0, 100.0, False), kline("BTCUSDT", T0, 101.0, True),
                    kline("ETHUSDT", T0, 10.0, True)]) == []
    clock.now = 101.25
    bars = feed(b, [kline("SOLUSDT", T0, 1.5, True)])
    assert len(bars) == 1
    bar = bars[0]
    assert bar.open_ms == T0 and bar.open_ns == T0 * 1_000_000
    assert bar.closes.tolist() == [101.0, 10.0, 1.5]
    assert bar.missing == 0 and not bar.forced and bar.completed_at == 101.25
    assert b.counters.bars == 1 and b.counters.forced == 0


def test_a_lost_close_is_missing_as_soon_as_that_symbol_moved_on() -> None:
    clock = Clock()
    b = kline_builder(clock)
    feed(b, [kline("BTCUSDT", T0, 101.0, True), kline("ETHUSDT", T0, 10.0, True)])
    # SOL's final kline of T0 was lost (reconnect): its next bar's forming kline resolves T0
    bars = feed(b, [kline("SOLUSDT", T0 + BAR, 1.6, False)])
    assert len(bars) == 1 and not bars[0].forced
    assert bars[0].missing == 1 and math.isnan(bars[0].closes[2])


def test_a_silent_symbol_is_forced_out_by_the_deadline_then_its_close_is_late() -> None:
    clock = Clock()
    b = kline_builder(clock)
    feed(b, [kline("BTCUSDT", T0, 101.0, True), kline("ETHUSDT", T0, 10.0, True)])
    assert b.poll() == []  # market time = bar end: not due yet
    feed(b, [kline("BTCUSDT", T0 + BAR, 102.0, False, event_ms=T0 + BAR + 1_000)])
    assert b.poll() == []  # due now (end + grace) — the settle period starts
    clock.now += 0.4
    assert b.poll() == []
    clock.now += 0.2
    bars = b.poll()
    assert len(bars) == 1 and bars[0].forced and bars[0].open_ms == T0
    assert bars[0].closes.tolist()[:2] == [101.0, 10.0] and math.isnan(bars[0].closes[2])
    assert b.counters.forced == 1 and b.counters.missing == 1
    assert feed(b, [kline("SOLUSDT", T0, 1.5, True)]) == []
    assert b.counters.late == 1


def test_a_burst_of_an_accelerated_market_is_not_mistaken_for_silence() -> None:
    """One emission tick at high speed: BTC's closes of two bars arrive before SOL's first one."""
    clock = Clock()
    b = kline_builder(clock)
    out = feed(b, [kline("BTCUSDT", T0, 101.0, True), kline("BTCUSDT", T0 + BAR, 102.0, True),
                   kline("BTCUSDT", T0 + 2 * BAR, 102.5, False, event_ms=T0 + 2 * BAR + 1_900),
                   kline("ETHUSDT", T0, 10.0, True), kline("ETHUSDT", T0 + BAR, 10.1, True)])
    assert out == []
    assert b.poll() == []  # market time is past T0's deadline, but the wall-clock settle has not run
    out = feed(b, [kline("SOLUSDT", T0, 1.5, True), kline("SOLUSDT", T0 + BAR, 1.6, True)])
    assert [bar.open_ms for bar in out] == [T0, T0 + BAR]
    assert not any(bar.forced for bar in out) and all(bar.missing == 0 for bar in out)
    assert out[1].closes.tolist() == [102.0, 10.1, 1.6]


def test_bars_are_emitted_in_open_order_whatever_order_symbols_report() -> None:
    clock = Clock()
    b = kline_builder(clock)
    out = feed(b, [kline("ETHUSDT", T0 + BAR, 10.1, True),   # ETH's T0 close arrives after its T0+5 (lost order)
                   kline("BTCUSDT", T0, 101.0, True), kline("SOLUSDT", T0, 1.5, True),
                   kline("BTCUSDT", T0 + BAR, 102.0, True), kline("SOLUSDT", T0 + BAR, 1.6, True)])
    assert [bar.open_ms for bar in out] == [T0, T0 + BAR]
    assert math.isnan(out[0].closes[1])  # ETH resolved for T0 by its later close, without one for T0


def test_a_dead_symbol_stops_being_waited_for_and_counts_again_when_it_speaks() -> None:
    clock = Clock()
    b = kline_builder(clock, dead_after=2)
    for k in range(2):  # SOL silent for two bars: each forced by the deadline
        t = T0 + k * BAR
        feed(b, [kline("BTCUSDT", t, 100.0 + k, True), kline("ETHUSDT", t, 10.0 + k, True),
                 kline("BTCUSDT", t + BAR, 100.0, False, event_ms=t + BAR + 1_500)])
        b.poll()
        clock.now += 1.0
        assert [bar.forced for bar in b.poll()] == [True]
    assert b.counters.dead == 1
    t = T0 + 2 * BAR
    out = feed(b, [kline("BTCUSDT", t, 103.0, True), kline("ETHUSDT", t, 13.0, True)])
    assert len(out) == 1 and not out[0].forced and math.isnan(out[0].closes[2])  # not waited for
    feed(b, [kline("SOLUSDT", t + BAR, 1.9, False)])  # SOL speaks: waited for again
    assert b.counters.dead == 0
    out = feed(b, [kline("BTCUSDT", t + BAR, 104.0, True), kline("ETHUSDT", t + BAR, 14.0, True)])
    assert out == []
    assert len(feed(b, [kline("SOLUSDT", t + BAR, 2.0, True)])) == 1


def test_bars_already_scanned_from_history_are_skipped_quietly() -> None:
    clock = Clock()
    b = kline_builder(clock)
    feed(b, [kline("BTCUSDT", T0, 101.0, True)])
    b.skip_through(T0)
    assert feed(b, [kline("ETHUSDT", T0, 10.0, True), kline("SOLUSDT", T0, 1.5, True)]) == []
    assert b.counters.late == 0
    out = feed(b, [kline(s, T0 + BAR, 1.0, True) for s in SYMS])
    assert [bar.open_ms for bar in out] == [T0 + BAR]


def test_other_kinds_and_symbols_are_ignored() -> None:
    b = kline_builder(Clock())
    assert feed(b, [kline("DOGEUSDT", T0, 0.1, True), trade("BTCUSDT", T0 + 1, 100.0)]) == []
    assert b.counters.ignored == 2 and b.counters.messages == 0


# ------------------------------------------------------------------ trade bars

def trade_builder(clock: Clock, **timing: object) -> TradeBarBuilder:
    return TradeBarBuilder(SYMS, BarTiming(**{"bar_ms": BAR, "grace_ms": 1_000, "settle_s": 0.5, **timing}),
                           clock=clock)


def test_trades_bucket_by_time_and_the_last_trade_is_the_close() -> None:
    clock = Clock()
    b = trade_builder(clock)
    assert b.streams() == ["btcusdt@aggTrade", "ethusdt@aggTrade", "solusdt@aggTrade"]
    out = feed(b, [trade("BTCUSDT", T0 + 10, 100.0), trade("BTCUSDT", T0 + 4_999, 101.0),
                   trade("ETHUSDT", T0 + 3_000, 10.0), trade("SOLUSDT", T0 + 2_000, 1.5),
                   trade("BTCUSDT", T0 + 5_000, 99.0),   # the next bucket's open: BTC is done with T0
                   trade("ETHUSDT", T0 + 5_001, 10.2)])
    assert out == []
    out = feed(b, [trade("SOLUSDT", T0 + 7_000, 1.7)])
    assert len(out) == 1 and out[0].open_ms == T0 and not out[0].forced
    assert out[0].closes.tolist() == [101.0, 10.0, 1.5]
    out = feed(b, [trade(s, T0 + 10_000, 1.0) for s in SYMS])
    assert len(out) == 1 and out[0].closes.tolist() == [99.0, 10.2, 1.7]


def test_a_symbol_without_trades_is_closed_by_the_deadline_with_no_close() -> None:
    clock = Clock()
    b = trade_builder(clock)
    feed(b, [trade("BTCUSDT", T0 + 1_000, 100.0), trade("ETHUSDT", T0 + 1_000, 10.0),
             trade("SOLUSDT", T0 + 1_000, 1.5)])
    feed(b, [trade("BTCUSDT", T0 + 6_000, 100.5), trade("ETHUSDT", T0 + 6_500, 10.1)])  # SOL quiet
    assert b.poll() == []
    feed(b, [trade("BTCUSDT", T0 + 11_000, 100.6)])   # market time passes T0+5's deadline too
    assert b.poll() == [] and b.poll() == []
    clock.now += 1.0
    out = b.poll()
    assert [bar.open_ms for bar in out] == [T0, T0 + BAR]
    # SOL traded in T0 but nothing after it: only the deadline tells its T0 trade was the last
    assert out[0].closes.tolist() == [100.0, 10.0, 1.5] and out[0].forced
    assert out[1].forced and math.isnan(out[1].closes[2]) and out[1].closes[0] == 100.5


def test_empty_buckets_between_trades_are_emitted_in_order() -> None:
    clock = Clock()
    b = trade_builder(clock)
    feed(b, [trade(s, T0 + 100, 1.0) for s in SYMS])
    out = feed(b, [trade(s, T0 + 3 * BAR + 100, 2.0) for s in SYMS])
    assert [bar.open_ms for bar in out] == [T0, T0 + BAR, T0 + 2 * BAR]
    assert out[0].closes.tolist() == [1.0, 1.0, 1.0]
    assert np.isnan(out[1].closes).all() and np.isnan(out[2].closes).all()   # the scanner carries forward


def test_a_late_trade_is_counted_and_an_older_one_does_not_move_the_close() -> None:
    clock = Clock()
    b = trade_builder(clock)
    feed(b, [trade(s, T0 + 100, 1.0) for s in SYMS])
    feed(b, [trade("BTCUSDT", T0 + 4_000, 1.4), trade("BTCUSDT", T0 + 3_000, 9.9)])  # the older one is ignored
    out = feed(b, [trade(s, T0 + BAR + 1, 2.0) for s in SYMS])
    assert out[0].closes[0] == 1.4
    feed(b, [trade("ETHUSDT", T0 + 4_500, 3.0)])
    assert b.counters.late == 1


def test_the_venue_clock_closes_a_bucket_when_nobody_trades() -> None:
    clock = Clock()
    b = trade_builder(clock)
    feed(b, [trade(s, T0 + 100, 1.0) for s in SYMS])
    assert b.poll(market_now_ms=T0 + BAR + 999) == []
    assert b.poll(market_now_ms=T0 + BAR + 1_000) == []
    clock.now += 0.6
    out = b.poll(market_now_ms=T0 + BAR + 1_200)
    assert [bar.open_ms for bar in out] == [T0] and out[0].forced is True
    assert out[0].closes.tolist() == [1.0, 1.0, 1.0]


def test_make_builder_and_timing_validation() -> None:
    assert isinstance(make_builder("kline", SYMS, BarTiming()), KlineBarBuilder)
    assert isinstance(make_builder("trade", SYMS, BarTiming()), TradeBarBuilder)
    with pytest.raises(ValueError):
        make_builder("depth", SYMS, BarTiming())
    with pytest.raises(ValueError):
        BarTiming(bar_ms=0)
