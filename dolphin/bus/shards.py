"""OBF shard routing (§15.2), the ShardedFeatureStore (§15.3) and asset discovery (§15.4).

Routing is ``sum(ord(c) for c in symbol) % 10``: stable across processes, Python
versions and restarts (unlike ``hash()``), so every writer and reader agrees on the
shard of a symbol without talking to each other.

A shard map holds two kinds of keys (the bible uses both):

* ``BTCUSDT`` → the asset's OB feature document (`ObFeatures`), written by OBF;
* ``vel_div_BTCUSDT`` → one scalar feature (JSON number), the §15.3 store API.

Symbols are uppercase letters and digits and feature names lowercase snake_case, so
the two never collide and discovery can tell them apart.

Reads of the shard maps go through the client's near cache (§15.3, configured for every
client in `dolphin.bus.client`): a repeated `get` is served locally until a write
anywhere invalidates it (or 300 s pass).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dolphin.bus import schema
from dolphin.bus.codec import BusCodec, default_codec
from dolphin.bus.payloads import ObFeatures

SHARD_COUNT = schema.SHARD_COUNT


def shard_index(symbol: str) -> int:
    """§15.2: sum of code points modulo 10."""
    return sum(ord(c) for c in symbol) % SHARD_COUNT


def shard_map_name(symbol: str) -> str:
    """``DOLPHIN_FEATURES_SHARD_00`` … ``_09`` for a symbol."""
    return schema.SHARD_MAPS[shard_index(symbol)]


class ShardedFeatureStore:
    """Per-symbol features spread over the ten shard maps (threaded client)."""

    def __init__(self, client: Any, *, codec: BusCodec | None = None, source: str = "sharded-store") -> None:
        self._client = client
        self._codec = codec if codec is not None else default_codec
        self._source = source
        self._maps: dict[str, Any] = {}

    def _map(self, name: str) -> Any:
        m = self._maps.get(name)
        if m is None:
            m = self._maps[name] = self._client.get_map(name).blocking()
        return m

    # ---------------------------------------------------------- scalar features (§15.3)
    def put(self, symbol: str, feature: str, value: float) -> None:
        key = schema.feature_key(symbol, feature)
        name = shard_map_name(symbol)
        self._map(name).set(key, self._codec.encode(name, key, float(value)))

    def get(self, symbol: str, feature: str) -> float | None:
        key = schema.feature_key(symbol, feature)
        name = shard_map_name(symbol)
        raw = self._map(name).get(key)
        return None if raw is None else self._codec.accept(name, key, raw, source=self._source)

    def delete(self, symbol: str, feature: str) -> None:
        key = schema.feature_key(symbol, feature)
        self._map(shard_map_name(symbol)).delete(key)

    # ---------------------------------------------------------- per-asset OB documents
    def put_asset(self, symbol: str, features: ObFeatures) -> None:
        schema.check_symbol(symbol)
        name = shard_map_name(symbol)
        self._map(name).set(symbol, self._codec.encode(name, symbol, features))

    def put_assets(self, assets: dict[str, ObFeatures]) -> None:
        """One put_all per shard: the OBF writer's batch path."""
        by_shard: dict[str, dict[str, str]] = {}
        for symbol, features in assets.items():
            schema.check_symbol(symbol)
            name = shard_map_name(symbol)
            by_shard.setdefault(name, {})[symbol] = self._codec.encode(name, symbol, features)
        for name, entries in by_shard.items():
            self._map(name).put_all(entries)

    def get_asset(self, symbol: str) -> ObFeatures | None:
        schema.check_symbol(symbol)
        name = shard_map_name(symbol)
        raw = self._map(name).get(symbol)
        return None if raw is None else self._codec.accept(name, symbol, raw, source=self._source)

    def delete_asset(self, symbol: str) -> None:
        schema.check_symbol(symbol)
        self._map(shard_map_name(symbol)).delete(symbol)

    # ---------------------------------------------------------- discovery (§15.4)
    def discover_assets(self) -> set[str]:
        """Every symbol present in any shard, under either key kind; no static list needed."""
        found: set[str] = set()
        for name in schema.SHARD_MAPS:
            found.update(symbols_in_keys(self._map(name).key_set()))
        return found


def symbols_in_keys(keys: Iterable[Any]) -> set[str]:
    """Symbols named by shard-map keys (asset documents and ``feature_SYMBOL`` scalars)."""
    symbols: set[str] = set()
    for key in keys:
        if not isinstance(key, str):
            continue
        if schema.SYMBOL_RE.match(key):
            symbols.add(key)
            continue
        parsed = schema.parse_feature_key(key)
        if parsed is not None:
            symbols.add(parsed[1])
    return symbols
