"""The tape: trades that rebuild the klines exactly, and klines of any interval over simulated history."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.market.sim.source import replay_path
from dolphin.market.sim.tape import Tape

from .test_sim_clock import DAY_MS, source


@pytest.fixture(scope="module")
def tape() -> Tape:
    return Tape(7, source(10))


def test_trades_rebuild_each_bar_exactly(tape: Tape) -> None:
    src = tape.source
    start = src.bar_at(src.first_ms + DAY_MS)
    for bar in range(start, start + 40):
        bt = tape.bar_trades(bar)
        block = src.bars(bar, 1)
        assert bt.times[0] == src.bar_open_ms(bar) and bt.times[-1] == src.bar_open_ms(bar + 1) - 1
        assert np.array_equal(bt.prices[0], block.open[0]) and np.array_equal(bt.prices[-1], block.close[0])
        assert np.array_equal(bt.prices.max(axis=0), block.high[0])
        assert np.array_equal(bt.prices.min(axis=0), block.low[0])
        assert np.allclose(bt.qty.sum(axis=0), block.volume[0], rtol=0, atol=1e-9)
        assert (bt.qty >= 0).all() and list(bt.ids) == list(range(bar * 6, bar * 6 + 6))


def test_taker_side_follows_the_days_share(tape: Tape) -> None:
    src = tape.source
    start = src.bar_at(src.first_ms + DAY_MS)
    buys = total = 0.0
    for bar in range(start, start + 400):
        bt = tape.bar_trades(bar)
        buys += float((bt.qty * ~bt.buyer_is_maker).sum())
        total += float(bt.qty.sum())
    share = src.taker_buy_share(src.first_ms + DAY_MS)
    assert abs(buys / total - share) < 0.08


def test_klines_aggregate_native_bars(tape: Tape) -> None:
    src = tape.source
    now = src.first_ms + DAY_MS + 3_600_000
    forming = tape.klines(2, 60_000, None, None, 30, now)
    assert forming[-1].open_time == now and not forming[-1].closed and forming[-1].trades == 1
    rows = tape.klines(2, 60_000, None, now - 1, 30, now)
    assert len(rows) == 30 and rows[-1].open_time == now - 60_000 and rows[-1].closed
    for r in rows:
        block = src.bars(src.bar_at(r.open_time), 12)
        assert r.open == block.open[0, 2] and r.close == block.close[-1, 2]
        assert r.high == block.high[:, 2].max() and r.low == block.low[:, 2].min()
        assert r.volume == pytest.approx(block.volume[:, 2].sum(), abs=1e-9)
        assert r.trades == int((tape.bar_trades(src.bar_at(r.open_time)).qty[:, 2] > 0).sum()) + sum(
            int((tape.bar_trades(src.bar_at(r.open_time) + k).qty[:, 2] > 0).sum()) for k in range(1, 12))
        assert r.close_time == r.open_time + 59_999
    assert [b.open_time - a.open_time for a, b in zip(rows, rows[1:])] == [60_000] * 29


def test_forming_kline_counts_only_trades_printed_so_far(tape: Tape) -> None:
    src = tape.source
    open_ms = src.first_ms + DAY_MS
    row = tape.kline_at(0, 5_000, open_ms, open_ms + 2_500)
    assert row is not None and not row.closed and row.trades == 3
    bt = tape.bar_trades(src.bar_at(open_ms))
    assert row.close == bt.prices[2, 0] and row.volume == pytest.approx(bt.qty[:3, 0].sum(), abs=1e-9)
    assert row.first_trade_id == bt.ids[0] and row.last_trade_id == bt.ids[2]
    full = tape.kline_at(0, 5_000, open_ms, open_ms + 5_000)
    assert full is not None and full.closed and full.trades == 6


def test_history_window_semantics(tape: Tape) -> None:
    src = tape.source
    now = src.first_ms + DAY_MS + 123_456
    latest = tape.klines(0, 5_000, None, None, 10, now)
    assert latest[-1].open_time == now - now % 5_000 and not latest[-1].closed
    fwd = tape.klines(0, 5_000, src.first_ms + 1, None, 3, now)
    assert [r.open_time for r in fwd] == [src.first_ms + 5_000 * k for k in (1, 2, 3)]
    bounded = tape.klines(0, 5_000, None, src.first_ms + 60_000, 5, now)
    assert bounded[-1].open_time == src.first_ms + 60_000
    assert tape.klines(0, 5_000, now + 10_000, None, 5, now) == []
    assert tape.klines(0, 5_000, None, src.first_ms - 10_000, 5, now) == []


def test_replayed_bar_paths_go_through_open_high_low_close() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        k = 20
        o = np.round(rng.uniform(10, 20, k), 2)
        c = np.round(rng.uniform(10, 20, k), 2)
        h = np.maximum(o, c) + np.round(rng.uniform(0, 2, k), 2)
        lo = np.minimum(o, c) - np.round(rng.uniform(0, 2, k), 2)
        p = replay_path(7, np.arange(k), int(rng.integers(1000)), o, h, lo, c, 60, np.full(k, 100.0))
        assert np.array_equal(p[0], o) and np.array_equal(p[-1], c)
        assert np.array_equal(p.max(axis=0), h) and np.array_equal(p.min(axis=0), lo)
        assert np.allclose(np.rint(p * 100) / 100, p)
    same = replay_path(7, np.arange(3), 5, o[:3], h[:3], lo[:3], c[:3], 60, np.full(3, 100.0))
    again = replay_path(7, np.arange(3), 5, o[:3], h[:3], lo[:3], c[:3], 60, np.full(3, 100.0))
    assert np.array_equal(same, again)
