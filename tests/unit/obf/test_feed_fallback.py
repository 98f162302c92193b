"""The trader's OB during a bus outage: OBF's fallback file, read only while the bus is behind (§15.6)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dolphin.bus.ob_feed import STALE_MS, ObFeed
from dolphin.bus.payloads import ObFeatures, ObMacro
from dolphin.store.ob_cache import FallbackReader, cache_path

pytestmark = [pytest.mark.data_integrity]

T = 1_775_390_400_000      # a step's bar close (market ms)


def bus_features(bar_ms: int, depth_quality: float) -> ObFeatures:
    return ObFeatures(imbalance=0.0, fill_probability=0.5, depth_quality=depth_quality, imbalance_ma5=0.0,
                      bar_ms=bar_ms)


def hand_written(home: Path, *, btc_bar: int, eth_bar: int, macro_bar: int, written_at: float = 1.0) -> None:
    """The file exactly as docs/obf.md describes it, written by hand (not by the daemon's encoder)."""
    def feats(bar_ms: int, dq: float) -> dict:
        return {"imbalance": 0.2, "fill_probability": 0.7, "depth_quality": dq, "regime_signal": 1.0,
                "imbalance_ma5": 0.15, "imbalance_persistence": 0.8, "withdrawal_velocity": -0.4,
                "timestamp": 1775390400.2, "bar_ms": bar_ms, "cascading": False, "spread_bps": 3.1,
                "depth_1pct_usd": 250000.0}
    doc = {"version": 1, "written_at": written_at, "bar_ms": max(btc_bar, eth_bar), "circuit": "open",
           "features": {"BTCUSDT": feats(btc_bar, 0.3), "ETHUSDT": feats(eth_bar, 0.6)},
           "macro": {"bar_ms": macro_bar, "cascade_count": 2, "regime_signal": 1.0, "market_imbalance": -0.1,
                     "assets": 2, "_pushed_at": 1775390400.3},
           "universe": None}
    path = cache_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def test_a_fresh_bus_wins_and_the_file_is_not_read(tmp_path: Path) -> None:
    hand_written(tmp_path, btc_bar=T, eth_bar=T, macro_bar=T)
    feed = ObFeed()
    feed.note("BTCUSDT", bus_features(T - 5_000, 1.1))
    reads: list[int] = []

    def reader() -> None:
        reads.append(1)

    view, fallback = feed.at_or_fallback(T, reader)
    assert not fallback and reads == [] and view.features["BTCUSDT"].depth_quality == 1.1


def test_during_an_outage_the_newer_file_is_used_as_of_the_close(tmp_path: Path) -> None:
    feed = ObFeed()
    feed.note("BTCUSDT", bus_features(T - 40_000, 1.1))          # the bus stopped 40 s ago
    feed.note_macro(ObMacro(bar_ms=T - 40_000, cascade_count=0, regime_signal=0.0, market_imbalance=0.0, assets=1,
                            pushed_at=0.0))
    read = FallbackReader(tmp_path)
    view, fallback = feed.at_or_fallback(T, read)                # no file yet: the (stale) bus view
    assert not fallback and view.features["BTCUSDT"].depth_quality == 1.1

    # BTC's file bar is the step's close, ETH's is from the step's future: never used
    hand_written(tmp_path, btc_bar=T, eth_bar=T + 5_000, macro_bar=T - 5_000)
    view, fallback = feed.at_or_fallback(T, read)
    assert fallback
    assert set(view.features) == {"BTCUSDT"} and view.features["BTCUSDT"].depth_quality == 0.3
    assert view.features["BTCUSDT"].withdrawal_velocity == -0.4
    assert view.macro is not None and view.macro.bar_ms == T - 5_000 and view.macro.cascade_count == 2

    # a file older than what the bus has: the bus stays
    hand_written(tmp_path, btc_bar=T - 50_000, eth_bar=T - 50_000, macro_bar=T - 50_000, written_at=2.0)
    view, fallback = feed.at_or_fallback(T, read)
    assert not fallback and view.features["BTCUSDT"].depth_quality == 1.1

    # the bus is back with a bar within STALE_MS: the bus again, whatever the file says
    hand_written(tmp_path, btc_bar=T, eth_bar=T, macro_bar=T, written_at=3.0)
    feed.note("BTCUSDT", bus_features(T - STALE_MS, 0.9))
    view, fallback = feed.at_or_fallback(T, read)
    assert not fallback and view.features["BTCUSDT"].depth_quality == 0.9


def test_no_bus_and_a_file_too_old_or_invalid_leave_the_step_without_ob(tmp_path: Path) -> None:
    feed = ObFeed()
    read = FallbackReader(tmp_path)
    hand_written(tmp_path, btc_bar=T - 61_000, eth_bar=T - 61_000, macro_bar=T - 61_000)   # past the 60 s max age
    view, fallback = feed.at_or_fallback(T, read)
    assert not fallback and view.features == {} and view.macro is None
    cache_path(tmp_path).write_text('{"version": 1, "written_at": "noon"')               # truncated, not a cache
    view, fallback = feed.at_or_fallback(T, read)
    assert not fallback and view.features == {}
    hand_written(tmp_path, btc_bar=T, eth_bar=T, macro_bar=T)                           # a new valid file is read
    view, fallback = feed.at_or_fallback(T, read)
    assert fallback and set(view.features) == {"BTCUSDT", "ETHUSDT"}
