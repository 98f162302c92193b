"""DOLPHIN's bus: Hazelcast through the official client, everywhere.

Services import from here::

    from dolphin.bus import connect, Bus, schema, EigenScan, LatestState, subscribe

* connection: `BusSettings` (from ``DOLPHIN_HZ_*``), `connect`, `connect_async`;
* schema: `schema` (map and key names), payload Structs, `BusCodec` / `default_codec`;
* typed access: `Bus`, `AsyncBus`; posture: `PostureStore`, `AsyncPostureStore`;
* the ACB writer guard: `WriterLock`; OBF shards: `ShardedFeatureStore`, `shard_index`;
* listeners: `subscribe`, `subscribe_async`, `LatestState`, `AsyncQueue`, `ThreadQueue`;
* the embedded member: `EmbeddedMember`, `MemberConfig` (also `dolphin hz serve`).

Names resolve lazily (PEP 562): importing one payload type does not load the
Hazelcast client, so the store, the backtester and the CLI stay quick to start.

See ``docs/bus.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dolphin.bus import schema
    from dolphin.bus.access import AsyncBus, Bus
    from dolphin.bus.client import PINNED_CLIENT_VERSION, client_options, connect, connect_async
    from dolphin.bus.codec import BusCodec, PayloadError, Rejections, default_codec
    from dolphin.bus.errors import BusConfigError, BusError, BusUnavailableError, MemberStartError
    from dolphin.bus.listeners import (
        AsyncQueue,
        BusEvent,
        EventSink,
        LatestState,
        Subscription,
        ThreadQueue,
        subscribe,
        subscribe_async,
    )
    from dolphin.bus.member import EmbeddedMember, MemberConfig
    from dolphin.bus.payloads import (
        POSTURES,
        AcbBoost,
        DailyResult,
        EigenScan,
        EigenScanNG7,
        ExfLatest,
        Heartbeat,
        HzKeyStatus,
        McForewarner,
        MetaHealth,
        NautilusState,
        ObfAssetHealth,
        ObFeatures,
        ObfStatus,
        ObfUniverse,
        ObMacro,
        ObSnapshot,
        OpenPositionView,
        Payload,
        ProbeTimestamp,
        RecoveryEvent,
        SafetyState,
        StrategyState,
        TradeView,
        WindowStats,
        iso_utc,
        parse_time,
    )
    from dolphin.bus.posture import DEFAULT_POSTURE, AsyncPostureStore, PostureReading, PostureStore
    from dolphin.bus.settings import BusSettings
    from dolphin.bus.shards import ShardedFeatureStore, shard_index, shard_map_name, symbols_in_keys
    from dolphin.bus.status import BusStatus, collect_status
    from dolphin.bus.writer_lock import LockToken, WriterLock

#: exported name → the module that defines it
_EXPORTS: dict[str, str] = {
    "AcbBoost": "dolphin.bus.payloads",
    "AsyncBus": "dolphin.bus.access",
    "AsyncPostureStore": "dolphin.bus.posture",
    "AsyncQueue": "dolphin.bus.listeners",
    "Bus": "dolphin.bus.access",
    "BusCodec": "dolphin.bus.codec",
    "BusConfigError": "dolphin.bus.errors",
    "BusError": "dolphin.bus.errors",
    "BusEvent": "dolphin.bus.listeners",
    "BusSettings": "dolphin.bus.settings",
    "BusStatus": "dolphin.bus.status",
    "BusUnavailableError": "dolphin.bus.errors",
    "client_options": "dolphin.bus.client",
    "collect_status": "dolphin.bus.status",
    "connect": "dolphin.bus.client",
    "connect_async": "dolphin.bus.client",
    "DailyResult": "dolphin.bus.payloads",
    "default_codec": "dolphin.bus.codec",
    "DEFAULT_POSTURE": "dolphin.bus.posture",
    "EigenScan": "dolphin.bus.payloads",
    "EigenScanNG7": "dolphin.bus.payloads",
    "EmbeddedMember": "dolphin.bus.member",
    "EventSink": "dolphin.bus.listeners",
    "ExfLatest": "dolphin.bus.payloads",
    "Heartbeat": "dolphin.bus.payloads",
    "HzKeyStatus": "dolphin.bus.payloads",
    "iso_utc": "dolphin.bus.payloads",
    "LatestState": "dolphin.bus.listeners",
    "LockToken": "dolphin.bus.writer_lock",
    "McForewarner": "dolphin.bus.payloads",
    "MemberConfig": "dolphin.bus.member",
    "MemberStartError": "dolphin.bus.errors",
    "MetaHealth": "dolphin.bus.payloads",
    "NautilusState": "dolphin.bus.payloads",
    "ObfAssetHealth": "dolphin.bus.payloads",
    "ObFeatures": "dolphin.bus.payloads",
    "ObMacro": "dolphin.bus.payloads",
    "ObfStatus": "dolphin.bus.payloads",
    "ObfUniverse": "dolphin.bus.payloads",
    "ObSnapshot": "dolphin.bus.payloads",
    "OpenPositionView": "dolphin.bus.payloads",
    "parse_time": "dolphin.bus.payloads",
    "Payload": "dolphin.bus.payloads",
    "PayloadError": "dolphin.bus.codec",
    "PINNED_CLIENT_VERSION": "dolphin.bus.client",
    "PostureReading": "dolphin.bus.posture",
    "POSTURES": "dolphin.bus.payloads",
    "PostureStore": "dolphin.bus.posture",
    "ProbeTimestamp": "dolphin.bus.payloads",
    "RecoveryEvent": "dolphin.bus.payloads",
    "Rejections": "dolphin.bus.codec",
    "SafetyState": "dolphin.bus.payloads",
    "schema": "dolphin.bus.schema",
    "shard_index": "dolphin.bus.shards",
    "shard_map_name": "dolphin.bus.shards",
    "ShardedFeatureStore": "dolphin.bus.shards",
    "StrategyState": "dolphin.bus.payloads",
    "subscribe": "dolphin.bus.listeners",
    "subscribe_async": "dolphin.bus.listeners",
    "Subscription": "dolphin.bus.listeners",
    "symbols_in_keys": "dolphin.bus.shards",
    "ThreadQueue": "dolphin.bus.listeners",
    "TradeView": "dolphin.bus.payloads",
    "WindowStats": "dolphin.bus.payloads",
    "WriterLock": "dolphin.bus.writer_lock",
}



def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value = loaded if module == f"{__name__}.{name}" else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "AcbBoost",
    "AsyncBus",
    "AsyncPostureStore",
    "AsyncQueue",
    "Bus",
    "BusCodec",
    "BusConfigError",
    "BusError",
    "BusEvent",
    "BusSettings",
    "BusStatus",
    "BusUnavailableError",
    "DEFAULT_POSTURE",
    "DailyResult",
    "EigenScan",
    "EigenScanNG7",
    "EmbeddedMember",
    "EventSink",
    "ExfLatest",
    "Heartbeat",
    "HzKeyStatus",
    "LatestState",
    "LockToken",
    "McForewarner",
    "MemberConfig",
    "MemberStartError",
    "MetaHealth",
    "NautilusState",
    "ObFeatures",
    "ObMacro",
    "ObSnapshot",
    "ObfAssetHealth",
    "ObfStatus",
    "ObfUniverse",
    "OpenPositionView",
    "PINNED_CLIENT_VERSION",
    "POSTURES",
    "Payload",
    "PayloadError",
    "PostureReading",
    "PostureStore",
    "ProbeTimestamp",
    "RecoveryEvent",
    "Rejections",
    "SafetyState",
    "ShardedFeatureStore",
    "StrategyState",
    "Subscription",
    "ThreadQueue",
    "TradeView",
    "WindowStats",
    "WriterLock",
    "client_options",
    "collect_status",
    "connect",
    "connect_async",
    "default_codec",
    "iso_utc",
    "parse_time",
    "schema",
    "shard_index",
    "shard_map_name",
    "subscribe",
    "subscribe_async",
    "symbols_in_keys",
]
