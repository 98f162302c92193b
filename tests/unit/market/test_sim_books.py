"""Order book synthesis: deterministic, well-formed, with withdrawal and cascade episodes."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.market.sim.books import BookModel
from dolphin.market.sim.source import BarBlock, Instrument, MarketSource

from .test_sim_clock import source

T0_OFFSET = 20 * 60_000  # inside the first generated hour: cheap for a 540-symbol market


def test_books_are_a_function_of_seed_symbol_and_time() -> None:
    src = source(10)
    t = src.first_ms + T0_OFFSET
    a = BookModel(7, src).compute(np.arange(10), t + 37)
    b = BookModel(7, src).compute(np.arange(10), t + 99)  # same 100 ms bucket
    assert np.array_equal(a.bid_px, b.bid_px) and np.array_equal(a.ask_qty, b.ask_qty)
    c = BookModel(8, src).compute(np.arange(10), t)
    assert not np.array_equal(a.bid_qty, c.bid_qty)
    d = BookModel(7, src).compute(np.array([3, 1]), t)
    assert np.array_equal(d.bid_px[1], a.bid_px[1]) and np.array_equal(d.ask_qty[0], a.ask_qty[3])


def test_a_50_symbol_market_books_are_the_first_columns_of_a_540_one() -> None:
    small, big = source(50), source(540)
    t = small.first_ms + T0_OFFSET
    a = BookModel(7, small).compute(np.arange(50), t)
    b = BookModel(7, big).compute(np.arange(50), t)
    assert np.array_equal(a.bid_px, b.bid_px) and np.array_equal(a.ask_qty, b.ask_qty)


def test_books_are_well_formed() -> None:
    src = source(540)
    model = BookModel(7, src)
    tick = src.tick
    for offset in range(0, 600_000, 61_700):
        books = model.compute(np.arange(540), src.first_ms + offset, levels=5)
        assert books.bid_px.shape == (540, 5)
        assert (books.ask_ticks[:, 0] - books.bid_ticks[:, 0] >= 1).all()
        assert (np.diff(books.bid_ticks, axis=1) < 0).all() and (np.diff(books.ask_ticks, axis=1) > 0).all()
        assert (books.bid_qty > 0).all() and (books.ask_qty > 0).all()
        assert np.allclose(books.bid_px, books.bid_ticks * tick[:, None])
        step = model.step[:, None]
        assert np.allclose(np.rint(books.bid_qty / step) * step, books.bid_qty)


def test_deeper_books_extend_depth5() -> None:
    src = source(10)
    model = BookModel(7, src)
    t = src.first_ms + T0_OFFSET
    five = model.compute(np.arange(10), t, levels=5)
    twenty = model.compute(np.arange(10), t, levels=20)
    assert np.array_equal(twenty.bid_ticks[:, 0], five.bid_ticks[:, 0])
    assert twenty.bid_px.shape == (10, 20) and (np.diff(twenty.ask_ticks, axis=1) > 0).all()


def test_liquidity_withdrawal_episodes_thin_books_and_widen_spreads() -> None:
    src = source(50)
    model = BookModel(7, src)
    window0 = src.first_ms // 600_000
    found = None
    for w in range(window0, window0 + 144):
        for ep in model.episodes(w):
            if ep.scope == "market":
                found = ep
                break
        if found:
            break
    assert found is not None, "a day has market-wide withdrawals"
    mid = (found.start_ms + found.end_ms) // 2
    depth, spread = model._withdrawal(model.keys, mid)
    assert (depth < 0.5).all() and (spread > 1.5).all()
    before, _ = model._withdrawal(model.keys, found.start_ms - 1)
    assert before.mean() > depth.mean()
    n_windows = sum(bool(model.episodes(w)) for w in range(window0, window0 + 144))
    assert 20 <= n_windows <= 80  # occasional: about one window in three


class _Crash(MarketSource):
    """Two symbols; the first falls 3 % in 30 s, the second is flat."""

    def __init__(self) -> None:
        ins = tuple(Instrument(f"X{i}USDT", i, i, 0.01, 2, 0.001, 3, 3, 1.0, 1_000_000.0, 2.0) for i in range(2))
        super().__init__(ins, 5, 0, None, 1 << 24)

    def _make_block(self, index: int) -> BarBlock:
        raise NotImplementedError

    def _make_path(self, bar: int) -> np.ndarray:
        raise NotImplementedError

    def price_at(self, ts_ms: int) -> np.ndarray:
        falling = 100.0 * (1.0 - 0.03 * min(max(ts_ms - 100_000, 0), 30_000) / 30_000)
        return np.array([round(falling, 2), 100.0])

    def funding_rates(self, ts_ms: int) -> np.ndarray:
        return np.zeros(2)


def test_cascades_thin_the_side_being_hit() -> None:
    model = BookModel(7, _Crash())
    calm = model.compute(np.arange(2), 90_000)
    crash = model.compute(np.arange(2), 130_000)
    assert calm.cascade[0] == 0.0 and crash.cascade[0] < -0.5 and crash.cascade[1] == 0.0
    bid_usd = (crash.bid_px * crash.bid_qty).sum(axis=1)
    ask_usd = (crash.ask_px * crash.ask_qty).sum(axis=1)
    assert bid_usd[0] < 0.5 * ask_usd[0]
    spread = crash.ask_px[:, 0] - crash.bid_px[:, 0]
    assert spread[0] > spread[1]


@pytest.mark.parametrize("levels", [1, 5, 10])
def test_any_level_count(levels: int) -> None:
    src = source(10)
    books = BookModel(7, src).compute(np.arange(3), src.first_ms + T0_OFFSET, levels=levels)
    assert books.ask_px.shape == (3, levels)
    bids, asks = books.row(0)
    assert len(bids) == len(asks) == levels and asks[0][0] > bids[0][0]
