"""Order-book features on hand-built books (docs/obf.md), and their bounds under hypothesis."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolphin.enums import ObRegime
from dolphin.market.ob_features import (
    AssetTracker,
    RollingMedian,
    book_problem,
    macro_of,
    snapshot_of,
)

pytestmark = [pytest.mark.data_integrity]

BALANCED_BIDS = [(99.9, 10.0), (99.8, 10.0), (99.0, 10.0), (98.0, 10.0), (97.0, 50.0)]
BALANCED_ASKS = [(100.1, 10.0), (100.2, 10.0), (101.0, 10.0), (102.0, 10.0), (103.0, 50.0)]


def test_a_balanced_book_by_hand() -> None:
    snap = snapshot_of(BALANCED_BIDS, BALANCED_ASKS)
    assert snap.mid == 100.0 and snap.spread_bps == pytest.approx(20.0)         # 0.2 / 100 · 10⁴
    # within 1 % of mid (99 .. 101): bids 99.9, 99.8, 99.0 and asks 100.1, 100.2, 101.0
    assert snap.bid_usd == pytest.approx(999.0 + 998.0 + 990.0)
    assert snap.ask_usd == pytest.approx(1001.0 + 1002.0 + 1010.0)
    assert snap.depth_usd == pytest.approx(6000.0)
    assert snap.imbalance == pytest.approx((2987.0 - 3013.0) / 6000.0)
    assert (snap.n_bid_levels, snap.n_ask_levels) == (5, 5)


def test_a_one_sided_pressure_book() -> None:
    bids = [(99.9, 100.0), (99.8, 100.0)]
    asks = [(100.1, 1.0)]
    snap = snapshot_of(bids, asks)
    assert snap.imbalance == pytest.approx((9990.0 + 9980.0 - 100.1) / (9990.0 + 9980.0 + 100.1))
    assert snap.imbalance > 0.98


@pytest.mark.parametrize(("bids", "asks", "why"), [
    ([], BALANCED_ASKS, "one-sided"), (BALANCED_BIDS, [], "one-sided"),
    ([(100.0, 1.0)], [(100.0, 1.0)], "crossed"), ([(100.5, 1.0)], [(100.0, 1.0)], "crossed"),
    ([(math.nan, 1.0)], [(100.0, 1.0)], "bad level"), ([(99.0, -1.0)], [(100.0, 1.0)], "bad level"),
    ([(99.0, 1.0)], [(100.0, math.inf)], "bad level"),
])
def test_books_that_are_not_books(bids, asks, why: str) -> None:
    assert book_problem(bids, asks) == why


def test_a_thinning_book_withdraws_and_a_halved_moving_book_cascades() -> None:
    tracker = AssetTracker()
    for _ in range(10):
        steady = tracker.close_bar(snapshot_of(BALANCED_BIDS, BALANCED_ASKS))
    assert steady.withdrawal_velocity == 0.0 and steady.depth_quality == pytest.approx(1.0)
    assert not steady.cascading
    thin = [(p, q * 0.4) for p, q in BALANCED_BIDS], [(p, q * 0.4) for p, q in BALANCED_ASKS]
    f = tracker.close_bar(snapshot_of(*thin))
    assert f.withdrawal_velocity == pytest.approx(-0.6)          # depth 0.4× of five bars ago
    assert f.depth_quality == pytest.approx(0.4)                 # the median of its bars is the steady depth
    assert not f.cascading                                       # thin, but the price has not moved
    moved = [(p * 0.99, q * 0.4) for p, q in BALANCED_BIDS], [(p * 0.99, q * 0.4) for p, q in BALANCED_ASKS]
    c = tracker.close_bar(snapshot_of(*moved))
    assert c.cascading                                           # depth −60 % in 3 bars and mid −1 %


def test_imbalance_ma5_persistence_and_fill_probability() -> None:
    tracker = AssetTracker()
    heavy_bid = [(99.9, 30.0)], [(100.1, 10.0)]                  # imbalance ≈ +0.5
    heavy_ask = [(99.9, 10.0)], [(100.1, 30.0)]                  # ≈ −0.5
    for book in (heavy_ask, heavy_bid, heavy_bid, heavy_bid, heavy_bid, heavy_bid):
        f = tracker.close_bar(snapshot_of(*book))
    assert f.imbalance_ma5 == pytest.approx(snapshot_of(*heavy_bid).imbalance)   # the last five are bid-heavy
    assert f.imbalance_persistence == pytest.approx(5 / 6)       # 5 of the 6 bars share ma5's sign
    assert f.fill_probability == 0.0                             # the mid never moved
    jumpy = AssetTracker()
    for i in range(5):                                           # the mid moves a whole spread every bar
        f = jumpy.close_bar(snapshot_of([(99.9 + 0.2 * i, 1.0)], [(100.1 + 0.2 * i, 1.0)]))
    assert f.fill_probability == 1.0


def test_macro_regimes() -> None:
    calm = AssetTracker()
    for _ in range(6):
        steady = calm.close_bar(snapshot_of(BALANCED_BIDS, BALANCED_ASKS))
    m = macro_of([steady] * 10)
    assert m.regime is ObRegime.CALM and m.regime_signal == -1.0 and m.cascade_count == 0
    thinning = AssetTracker()
    for _ in range(6):
        thinning.close_bar(snapshot_of(BALANCED_BIDS, BALANCED_ASKS))
    withdrawn = thinning.close_bar(snapshot_of([(p, q * 0.5) for p, q in BALANCED_BIDS],
                                               [(p, q * 0.5) for p, q in BALANCED_ASKS]))
    stress = macro_of([withdrawn] * 3 + [steady] * 7)            # 30 % withdrawing faster than −0.2
    assert stress.regime is ObRegime.STRESS and stress.regime_signal == 1.0
    neutral = macro_of([withdrawn] + [steady] * 9)               # 10 %: neither calm nor stressed
    assert neutral.regime is ObRegime.NEUTRAL and macro_of([]).assets == 0


_price = st.floats(1e-6, 1e7)
_qty = st.floats(0.0, 1e6)


@settings(max_examples=300, deadline=None)
@given(mid=_price, spread=st.floats(1e-9, 0.2), bids=st.lists(st.tuples(st.floats(0, 0.05), _qty), min_size=1,
                                                                   max_size=5),
       asks=st.lists(st.tuples(st.floats(0, 0.05), _qty), min_size=1, max_size=5))
def test_feature_bounds(mid: float, spread: float, bids: list[tuple[float, float]],
                        asks: list[tuple[float, float]]) -> None:
    bid_levels = sorted(((mid * (1 - spread / 2) * (1 - off), q) for off, q in bids), reverse=True)
    ask_levels = sorted((mid * (1 + spread / 2) * (1 + off), q) for off, q in asks)
    if book_problem(bid_levels, ask_levels) is not None:
        return
    snap = snapshot_of(bid_levels, ask_levels)
    assert -1.0 <= snap.imbalance <= 1.0 and snap.spread_bps >= 0.0 and snap.depth_usd >= 0.0
    tracker = AssetTracker()
    for _ in range(3):
        f = tracker.close_bar(snap)
    assert 0.0 <= f.depth_quality <= 4.0 and 0.0 <= f.fill_probability <= 1.0
    assert -1.0 <= f.imbalance_ma5 <= 1.0 and 0.0 <= f.imbalance_persistence <= 1.0
    assert -1.0 <= f.withdrawal_velocity <= 5.0


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(0.0, 1e9), min_size=1, max_size=60), size=st.integers(1, 12))
def test_the_rolling_median_is_the_median_of_its_window(values: list[float], size: int) -> None:
    rolling = RollingMedian(size)
    for i, v in enumerate(values):
        rolling.append(v)
        window = sorted(values[max(0, i + 1 - size):i + 1])
        n = len(window)
        expected = window[n // 2] if n % 2 else (window[n // 2 - 1] + window[n // 2]) / 2.0
        assert rolling.median() == expected and len(rolling) == n and rolling[-1] == v
