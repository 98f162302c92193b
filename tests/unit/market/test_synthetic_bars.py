"""Bars, 1 s paths, klines table, symbol properties and argument validation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dolphin.market.synthetic import (
    DEFAULT_START_MS,
    KLINE_SCHEMA,
    Bars,
    SyntheticConfig,
    SyntheticMarket,
)


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(SyntheticConfig(seed=7, n_symbols=50))


@pytest.fixture(scope="module")
def bars(market: SyntheticMarket) -> Bars:
    return market.generate(0, 4 * market.config.bars_per_chunk)


def on_grid(values: np.ndarray, decimals: np.ndarray) -> bool:
    """Every value is the nearest double to a multiple of 10**-decimals (per column)."""
    ok = True
    for col, d in enumerate(decimals.tolist()):
        scale = float(10**d) if d >= 0 else 1.0 / 10 ** (-d)
        v = values[:, col]
        ok &= bool(np.array_equal(v, np.rint(v * scale) / scale))
    return ok


def test_ohlc_is_consistent_positive_and_continuous(bars: Bars) -> None:
    o, h, lo, c, v = bars.open, bars.high, bars.low, bars.close, bars.volume
    assert o.shape == h.shape == lo.shape == c.shape == v.shape == (bars.n_bars, 50)
    assert np.all(lo > 0)
    assert np.all(lo <= np.minimum(o, c)) and np.all(h >= np.maximum(o, c))
    assert np.all(v >= 0) and np.all(np.isfinite(v))
    assert np.array_equal(o[1:], c[:-1]), "each bar opens at the previous close"
    assert np.mean(h > lo) > 0.9, "bars have a range"


def test_timestamps_are_bar_open_times(market: SyntheticMarket, bars: Bars) -> None:
    assert bars.ts_ms.dtype == np.int64
    assert bars.ts_ms[0] == DEFAULT_START_MS == 1_767_571_200_000
    assert np.all(np.diff(bars.ts_ms) == 5_000)
    assert market.bar_open_ms(17) == bars.ts_ms[17]
    assert market.bar_at(int(bars.ts_ms[17]) + 4_999) == 17
    assert market.day_of(market.bars_per_day) == 1


def test_prices_and_volumes_sit_on_tick_and_step_grids(market: SyntheticMarket, bars: Bars) -> None:
    price_dec = np.array([s.price_decimals for s in market.specs])
    qty_dec = np.array([s.qty_decimals for s in market.specs])
    for field in (bars.open, bars.high, bars.low, bars.close):
        assert on_grid(field, price_dec)
    assert on_grid(bars.volume, qty_dec)


def test_symbol_specs_are_realistic(market: SyntheticMarket) -> None:
    btc, eth = market.spec("BTCUSDT"), market.spec("ETHUSDT")
    assert 60_000 <= btc.base_price <= 110_000 and btc.tick_size == 0.1 and btc.step_size == 0.001
    assert 2_000 <= eth.base_price <= 4_000 and eth.tick_size == 0.01
    assert market.spec("DOGEUSDT").base_price < 1 and market.spec("ADAUSDT").base_price < 1
    for s in market.specs:
        assert s.spread_bps >= 1e4 * s.tick_size / s.base_price * (1 - 1e-9)
        assert s.depth_usd > 0 and s.daily_volume_usd > 0 and s.beta > 0 and s.idio_vol_bps > 0
        assert s.tick_size == pytest.approx(10.0 ** -s.price_decimals)
        assert s.base_price / s.tick_size >= 1_000, "tick at most 10 bp of price"
    assert btc.spread_bps < market.specs[-1].spread_bps and btc.depth_usd > market.specs[-1].depth_usd
    with pytest.raises(ValueError, match="not one of"):
        market.spec("SYN999USDT")


def test_calm_btc_moves_a_few_bp_per_bar(market: SyntheticMarket, bars: Bars) -> None:
    r = np.diff(np.log(bars.close[:, 0]))
    assert 1.5e-4 <= np.median(np.abs(r)) / 0.6745 <= 4e-4  # robust sigma: calm dominates


def test_intrabar_path_starts_at_open_ends_at_close_and_touches_the_range(
        market: SyntheticMarket, bars: Bars) -> None:
    start = market.config.bars_per_chunk - 50  # spans a chunk boundary
    paths = market.intrabar_paths(start, 100)
    assert paths.shape == (100, 6, 50)
    sl = slice(start, start + 100)
    assert np.array_equal(paths[:, 0], bars.open[sl])
    assert np.array_equal(paths[:, -1], bars.close[sl])
    assert np.array_equal(paths.max(axis=1), bars.high[sl])
    assert np.array_equal(paths.min(axis=1), bars.low[sl])
    assert np.array_equal(market.intrabar_path(start + 3), paths[3])
    assert np.array_equal(market.mark_prices(start + 3), bars.close[start + 3])


@pytest.mark.parametrize("bar_seconds", [1, 60])
def test_other_bar_sizes_keep_every_invariant(bar_seconds: int) -> None:
    m = SyntheticMarket(SyntheticConfig(seed=2, n_symbols=7, bar_seconds=bar_seconds))
    n = m.config.bars_per_chunk + 10
    b = m.generate(0, n)
    assert np.all(np.diff(b.ts_ms) == bar_seconds * 1000)
    assert np.all(b.low <= np.minimum(b.open, b.close)) and np.all(b.high >= np.maximum(b.open, b.close))
    paths = m.intrabar_paths(0, n)
    assert paths.shape == (n, bar_seconds + 1, 7)
    assert np.array_equal(paths.max(axis=1), b.high) and np.array_equal(paths.min(axis=1), b.low)


def test_klines_table_is_long_and_sorted(market: SyntheticMarket, bars: Bars) -> None:
    table = market.klines_table(n_bars=300)
    assert table.schema == KLINE_SCHEMA
    assert table.num_rows == 300 * 50
    ts = table.column("ts").to_numpy()
    sym = np.array(table.column("symbol").to_pylist())
    order = np.lexsort((sym, ts))
    assert np.array_equal(order, np.arange(ts.size)), "sorted by ts then symbol"
    first = table.slice(0, 50).to_pydict()
    btc = first["symbol"].index("BTCUSDT")
    assert first["close"][btc] == bars.close[0, 0] and first["ts"][btc] == DEFAULT_START_MS
    day = market.klines_table(days=1 / 24)
    assert day.num_rows == market.config.bars_per_chunk * 50
    assert isinstance(day.column("symbol").type, type(pa.string()))


@pytest.mark.parametrize("kwargs, match", [
    ({}, "exactly one"),
    ({"days": 1, "n_bars": 5}, "exactly one"),
    ({"days": 0}, "positive"),
    ({"days": -1.5}, "positive"),
    ({"n_bars": -1}, "n_bars"),
])
def test_klines_table_validates_its_range(market: SyntheticMarket, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        market.klines_table(**kwargs)


@pytest.mark.parametrize("call, match", [
    (lambda m: m.generate(-1, 5), "start_bar"),
    (lambda m: m.generate(0, -5), "n_bars"),
    (lambda m: m.generate(1.5, 5), "start_bar must be an integer"),
    (lambda m: m.intrabar_path(-1), "start_bar"),
    (lambda m: m.bar_at(DEFAULT_START_MS - 1), "ts_ms"),
    (lambda m: m.external_factors(-1), "day"),
    (lambda m: m.day(0, 0), "n_days"),
])
def test_methods_validate_arguments(market: SyntheticMarket, call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(market)


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"n_symbols": 0}, "n_symbols"),
    ({"n_symbols": 541}, "n_symbols"),
    ({"bar_seconds": 7}, "bar_seconds"),
    ({"start_ms": 1_767_571_200_001}, "start_ms"),
    ({"market_vol_bps": float("nan")}, "finite"),
    ({"episodes_per_day": -1.0}, "episodes_per_day"),
    ({"reversion_min": 0.9, "reversion_max": 0.5}, "reversion"),
    ({"down_share": 1.5}, "down_share"),
])
def test_config_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SyntheticConfig(**kwargs)


def test_empty_range_is_allowed(market: SyntheticMarket) -> None:
    empty = market.generate(100, 0)
    assert empty.n_bars == 0 and empty.close.shape == (0, 50)
