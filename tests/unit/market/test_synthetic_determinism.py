"""Determinism of the synthetic market: same seed → same bits, however a range is requested."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dolphin.market.synthetic import Bars, SyntheticConfig, SyntheticMarket

FIELDS = ("ts_ms", "open", "high", "low", "close", "volume")
PER_CHUNK = SyntheticConfig().bars_per_chunk  # 720 bars at 5 s


def assert_bars_equal(a: Bars, b: Bars) -> None:
    assert a.symbols == b.symbols
    assert a.start_bar == b.start_bar
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), f"{name} differs"


def concat(parts: list[Bars]) -> Bars:
    return Bars(parts[0].start_bar, parts[0].symbols,
                *(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))


@pytest.fixture(scope="module")
def small_whole() -> Bars:
    """Three hours of an 8-symbol market, generated in one call."""
    return SyntheticMarket(SyntheticConfig(seed=7, n_symbols=8)).generate(0, 3 * PER_CHUNK)


def test_same_seed_same_bits_across_instances(small_whole: Bars) -> None:
    again = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=8)).generate(0, 3 * PER_CHUNK)
    assert_bars_equal(small_whole, again)


def test_different_seeds_give_different_markets(small_whole: Bars) -> None:
    other = SyntheticMarket(SyntheticConfig(seed=8, n_symbols=8)).generate(0, 3 * PER_CHUNK)
    assert not np.array_equal(small_whole.close, other.close)
    # Not just a shifted level: the returns differ too.
    assert not np.allclose(np.diff(np.log(small_whole.close), axis=0),
                           np.diff(np.log(other.close), axis=0))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=3 * PER_CHUNK - 1), max_size=6, unique=True))
def test_any_chunking_equals_the_whole(small_whole: Bars, cuts: list[int]) -> None:
    market = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=8))
    edges = [0, *sorted(cuts), 3 * PER_CHUNK]
    parts = [market.generate(a, b - a) for a, b in zip(edges, edges[1:])]
    assert_bars_equal(concat(parts), small_whole)


def test_prefix_stability_and_random_access(small_whole: Bars) -> None:
    """Generating [0, N) then [N, N+K) equals [0, N+K); a late range alone equals it too."""
    n, k = PER_CHUNK + 123, 2 * PER_CHUNK - 123
    market = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=8))
    first, second = market.generate(0, n), market.generate(n, k)
    assert_bars_equal(concat([first, second]), small_whole)
    late = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=8)).generate(2 * PER_CHUNK + 5, 300)
    assert late.close.tobytes() == small_whole.close[2 * PER_CHUNK + 5: 2 * PER_CHUNK + 305].tobytes()


def test_evicted_chunks_regenerate_identically(small_whole: Bars) -> None:
    market = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=8), cache_chunks=1)
    backwards = [market.generate(c * PER_CHUNK, PER_CHUNK) for c in (2, 0, 1)]
    assert_bars_equal(concat([backwards[1], backwards[2], backwards[0]]), small_whole)


def test_columns_do_not_depend_on_the_number_of_symbols() -> None:
    """A 50-symbol market is the first 50 columns of a wider one (the simulator serves 540)."""
    narrow = SyntheticMarket(SyntheticConfig(seed=3, n_symbols=50)).generate(0, PER_CHUNK + 40)
    wide = SyntheticMarket(SyntheticConfig(seed=3, n_symbols=137)).generate(0, PER_CHUNK + 40)
    assert wide.symbols[:50] == narrow.symbols
    for name in ("open", "high", "low", "close", "volume"):
        assert getattr(wide, name)[:, :50].tobytes() == getattr(narrow, name).tobytes()


def test_intrabar_paths_are_deterministic_and_range_independent() -> None:
    cfg = SyntheticConfig(seed=5, n_symbols=6)
    a = SyntheticMarket(cfg).intrabar_paths(PER_CHUNK - 3, 6)
    b = SyntheticMarket(cfg)
    single = np.stack([b.intrabar_path(PER_CHUNK - 3 + i) for i in range(6)])
    assert a.tobytes() == single.tobytes()


def test_config_identity_is_value_based() -> None:
    assert SyntheticConfig(seed=1) == SyntheticConfig(seed=1)
    assert SyntheticConfig(seed=1) != SyntheticConfig(seed=2)
    assert hash(SyntheticConfig(seed=1)) == hash(SyntheticConfig(seed=1))
    numpy_typed = SyntheticConfig(seed=np.int64(1), episodes_per_day=np.float32(10))
    assert numpy_typed == SyntheticConfig(seed=1) and type(numpy_typed.seed) is int
