"""The OB codec: every conversion of order-book features, in one module (one codec per payload family).

`dolphin.market.ob_features` computes `AssetFeatures` (per symbol and bar) and
`MacroFeatures` (market-wide); this module is the only place that turns them into
something else:

* **bus payloads** — `features_payload` (the shard document `ObFeatures`, §15.1),
  `macro_payload` (`ObMacro`, ``DOLPHIN_FEATURES["ob_macro_latest"]``), `asset_health` and
  `universe_payload` (`ObfUniverse`, ``DOLPHIN_FEATURES["obf_universe_latest"]``, §26.2);
* **Parquet rows** — `feature_rows`, `macro_rows`, `universe_rows`: columns in the order
  and types of `dolphin.store.ob_history.SCHEMAS`;
* **engine values** — `asset_values` / `macro_values`: a payload's numbers in the engine's
  column order (`dolphin.engine.ob.OB_ASSET_FIELDS`, `OB_MACRO_FIELDS`).

Features are clipped into their payload ranges (imbalance in [−1, 1], probabilities in
[0, 1]) only against floating-point rounding: the formulas keep them there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dolphin.bus.payloads import ObfAssetHealth, ObFeatures, ObfUniverse, ObMacro
from dolphin.engine.ob import OB_ASSET_FIELDS, OB_MACRO_FIELDS
from dolphin.market.ob_features import AssetFeatures, MacroFeatures


def _unit(x: float) -> float:
    return -1.0 if x < -1.0 else 1.0 if x > 1.0 else x


def _prob(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def features_payload(f: AssetFeatures, *, bar_ms: int, regime_signal: float | None, timestamp: float) -> ObFeatures:
    """The shard document of one symbol at one bar (``timestamp`` = wall clock of the push)."""
    snap = f.snapshot
    return ObFeatures(imbalance=_unit(snap.imbalance), fill_probability=_prob(f.fill_probability),
                      depth_quality=max(0.0, f.depth_quality), regime_signal=regime_signal,
                      imbalance_ma5=_unit(f.imbalance_ma5), imbalance_persistence=_prob(f.imbalance_persistence),
                      withdrawal_velocity=f.withdrawal_velocity, timestamp=timestamp, bar_ms=bar_ms,
                      cascading=f.cascading, spread_bps=max(0.0, snap.spread_bps),
                      depth_1pct_usd=max(0.0, snap.depth_usd))


def macro_payload(m: MacroFeatures, *, bar_ms: int, pushed_at: float) -> ObMacro:
    return ObMacro(bar_ms=bar_ms, cascade_count=m.cascade_count, regime_signal=m.regime_signal,
                   market_imbalance=_unit(m.market_imbalance), assets=m.assets, pushed_at=pushed_at)


def asset_health(f: AssetFeatures) -> ObfAssetHealth:
    """§26.2 L2 health of one symbol from its latest bar."""
    snap = f.snapshot
    return ObfAssetHealth(spread_bps=max(0.0, snap.spread_bps), depth_1pct_usd=max(0.0, snap.depth_usd),
                          depth_quality=max(0.0, f.depth_quality), fill_probability=_prob(f.fill_probability),
                          imbalance=_unit(snap.imbalance), best_bid=snap.best_bid, best_ask=snap.best_ask,
                          n_bid_levels=snap.n_bid_levels, n_ask_levels=snap.n_ask_levels)


def universe_payload(features: Mapping[str, AssetFeatures], *, snapshot_utc: float) -> ObfUniverse:
    assets = {symbol: asset_health(f) for symbol, f in features.items()}
    return ObfUniverse(snapshot_utc=snapshot_utc, n_assets=len(assets), assets=assets)


# ---------------------------------------------------------------- Parquet rows (dolphin.store.ob_history)
_FEATURE_COLUMNS = ("imbalance", "imbalance_ma5", "imbalance_persistence", "withdrawal_velocity", "depth_quality",
                    "fill_probability", "spread_bps", "depth_1pct_usd", "cascading")


def feature_rows(bar_ms: int, items: Iterable[tuple[str, AssetFeatures]]) -> dict[str, list[Any]]:
    """History rows holding exactly the shard documents' values (clipped alike), so a replay on the history
    reads the numbers a trader read from the bus (`backtest --journal --ob` compares them exactly)."""
    rows: dict[str, list[Any]] = {k: [] for k in ("bar_ms", "symbol", *_FEATURE_COLUMNS)}
    for symbol, f in items:
        doc = features_payload(f, bar_ms=bar_ms, regime_signal=None, timestamp=0.0)
        rows["bar_ms"].append(bar_ms)
        rows["symbol"].append(symbol)
        for name in _FEATURE_COLUMNS:
            rows[name].append(getattr(doc, name))
    return rows


def macro_rows(bar_ms: int, m: MacroFeatures) -> dict[str, list[Any]]:
    return {"bar_ms": [bar_ms], "cascade_count": [m.cascade_count], "regime_signal": [m.regime_signal],
            "market_imbalance": [_unit(m.market_imbalance)], "assets": [m.assets]}


def universe_rows(bar_ms: int, universe: ObfUniverse) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {k: [] for k in (
        "bar_ms", "snapshot_utc", "symbol", "spread_bps", "depth_1pct_usd", "depth_quality", "fill_probability",
        "imbalance", "best_bid", "best_ask", "n_bid_levels", "n_ask_levels")}
    for symbol, a in universe.assets.items():
        rows["bar_ms"].append(bar_ms)
        rows["snapshot_utc"].append(universe.snapshot_utc)
        rows["symbol"].append(symbol)
        for name in ("spread_bps", "depth_1pct_usd", "depth_quality", "fill_probability", "imbalance", "best_bid",
                     "best_ask", "n_bid_levels", "n_ask_levels"):
            rows[name].append(getattr(a, name))
    return rows


# ---------------------------------------------------------------- engine values (dolphin.engine.ob)
def asset_values(f: ObFeatures) -> tuple[float, ...]:
    """A shard document's numbers in `OB_ASSET_FIELDS` order (NaN where the writer left one out)."""
    return tuple(float("nan") if (v := getattr(f, name)) is None else float(v) for name in OB_ASSET_FIELDS)


def macro_values(m: ObMacro) -> tuple[float, ...]:
    """The macro's numbers in `OB_MACRO_FIELDS` order."""
    return tuple(float(getattr(m, name)) for name in OB_MACRO_FIELDS)


__all__ = ["asset_health", "asset_values", "feature_rows", "features_payload", "macro_payload", "macro_rows",
           "macro_values", "universe_payload", "universe_rows"]
