"""`backtest --ob`'s provider: OBF history written by the real writer, read as-of each bar's close."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dolphin.backtest.ob_replay import ReplaySpan, history_provider, replay_span
from dolphin.bus import ob_codec
from dolphin.engine.ob import NEUTRAL_ASSET, NEUTRAL_MACRO
from dolphin.enums import ObRegime
from dolphin.errors import DataError
from dolphin.market.ob_features import AssetFeatures, MacroFeatures, Snapshot
from dolphin.store.ob_history import FEATURES, MACRO, ObHistoryWriter

pytestmark = [pytest.mark.data_integrity]

T0 = 1_767_657_600_000      # 2026-01-06 00:00 UTC
BAR = 5_000                 # scan bars (open time) of 5 s
SNAP = Snapshot(best_bid=99.9, best_ask=100.1, mid=100.0, spread_bps=20.0, bid_usd=1e5, ask_usd=1e5,
                n_bid_levels=5, n_ask_levels=5)


def feats(k: float) -> AssetFeatures:
    """Features whose every field tells which OB bar they came from."""
    return AssetFeatures(snapshot=SNAP, depth_quality=1.0 + k, fill_probability=k / 100, imbalance_ma5=k / 10,
                         imbalance_persistence=k / 20, withdrawal_velocity=-k / 50, cascading=False)


def expected(k: float) -> tuple[float, ...]:
    """What the bus carried for bar ``k`` (its shard document: imbalance_ma5 past 1 clipped), which the history holds."""
    return ob_codec.asset_values(ob_codec.features_payload(feats(k), bar_ms=0, regime_signal=None, timestamp=0.0))


def write_history(root: Path, bars: list[tuple[int, list[tuple[str, float]], float]]) -> None:
    """OB bars (close ms, [(symbol, k)], macro cascade count) through the OBF daemon's writer."""
    writer = ObHistoryWriter(root / "ob_history")
    writer.recover()
    for bar_ms, items, cascades in bars:
        writer.add_rows(FEATURES, ob_codec.feature_rows(bar_ms, [(s, feats(k)) for s, k in items]))
        writer.add_rows(MACRO, ob_codec.macro_rows(bar_ms, MacroFeatures(int(cascades), ObRegime.STRESS, 0.25,
                                                                         len(items))))
    writer.flush()


def test_each_bar_reads_the_latest_ob_bar_at_or_before_its_close(tmp_path: Path) -> None:
    # OB bars close at T0+10 s, +20 s, +30 s (BTC and ETH), +40 s (BTC only); +200 s (BTC, after a gap)
    write_history(tmp_path, [(T0 + 10_000, [("BTCUSDT", 1), ("ETHUSDT", 11)], 1),
                             (T0 + 20_000, [("BTCUSDT", 2), ("ETHUSDT", 12)], 2),
                             (T0 + 30_000, [("BTCUSDT", 3), ("ETHUSDT", 13)], 3),
                             (T0 + 40_000, [("BTCUSDT", 4)], 4),
                             (T0 + 200_000, [("BTCUSDT", 5)], 5)])
    span = ReplaySpan(first_ts=T0, last_ts=T0 + 200_000, bar_ms=BAR)
    provider = history_provider(tmp_path, span, ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    # scan bars by open time; each reads OB as of its close (open + 5 s)
    opens = np.array([T0,            # closes at +5 s: before the first OB bar → neutral
                      T0 + 5_000,    # closes exactly at +10 s → that bar
                      T0 + 20_000,   # closes at +25 s: between +20 and +30 → +20, never +30
                      T0 + 40_000,   # closes at +45 s: BTC +40; ETH has no +40 row → its own +30
                      T0 + 90_000,   # closes at +95 s: BTC's +40 is 55 s old (≤ 60 s); ETH's +30 is 65 s → neutral
                      T0 + 120_000,  # closes at +125 s: everything older than 60 s → neutral
                      T0 + 195_000])  # closes exactly at +200 s → BTC's +200, ETH neutral
    block = provider.block(opens, ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    btc, eth, sol = block.asset[:, 0], block.asset[:, 1], block.asset[:, 2]
    neutral = tuple(NEUTRAL_ASSET)
    assert [tuple(r) for r in btc] == [neutral, expected(1), expected(2), expected(4), expected(4), neutral,
                                       expected(5)]
    assert [tuple(r) for r in eth] == [neutral, expected(11), expected(12), expected(13), neutral, neutral, neutral]
    assert all(tuple(r) == neutral for r in sol)                 # no history for it at all
    assert [tuple(m) for m in block.macro] == [tuple(NEUTRAL_MACRO), (1, 1.0, 0.25), (2, 1.0, 0.25),
                                               (4, 1.0, 0.25), (4, 1.0, 0.25), tuple(NEUTRAL_MACRO),
                                               (5, 1.0, 0.25)]


def test_the_span_and_the_bar_length_come_from_the_scans() -> None:
    ts = T0 + np.arange(10, dtype=np.int64) * BAR
    ts[6:] += 60_000                                             # a gap: the bar length is the smallest step
    pieces = [(ts[:1], np.arange(1)), (ts[1:4], np.arange(1, 4)), (ts[4:], np.arange(4, 10))]
    span = replay_span(iter(pieces), 2, 9)
    assert span == ReplaySpan(first_ts=int(ts[2]), last_ts=int(ts[8]), bar_ms=BAR)


def test_no_history_for_the_span_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no OB feature history"):
        history_provider(tmp_path, ReplaySpan(T0, T0 + BAR, BAR), ["BTCUSDT"])
    write_history(tmp_path, [(T0 + 10_000, [("BTCUSDT", 1)], 0)])
    with pytest.raises(DataError, match="no bar of these assets between"):   # a day later: nothing recorded then
        history_provider(tmp_path, ReplaySpan(T0 + 86_400_000, T0 + 86_410_000, BAR), ["BTCUSDT"])
    with pytest.raises(DataError, match="no OB feature rows"):   # none of the scan's assets
        history_provider(tmp_path, ReplaySpan(T0, T0 + BAR, BAR), ["ETHUSDT"])
