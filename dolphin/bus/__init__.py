"""DOLPHIN's bus: Hazelcast through the official client, everywhere.

Services import from here::

    from dolphin.bus import connect, Bus, schema, EigenScan, LatestState, subscribe

* connection: `BusSettings` (from ``DOLPHIN_HZ_*``), `connect`, `connect_async`;
* schema: `schema` (map and key names), payload Structs, `BusCodec` / `default_codec`;
* typed access: `Bus`, `AsyncBus`; posture: `PostureStore`, `AsyncPostureStore`;
* the ACB writer guard: `WriterLock`; OBF shards: `ShardedFeatureStore`, `shard_index`;
* listeners: `subscribe`, `subscribe_async`, `LatestState`, `AsyncQueue`, `ThreadQueue`;
* the embedded member: `EmbeddedMember`, `MemberConfig` (also `dolphin hz serve`).

See ``docs/bus.md``.
"""

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
    ObfUniverse,
    ObSnapshot,
    OpenPositionView,
    Payload,
    ProbeTimestamp,
    SafetyState,
    ScanView,
    StrategyState,
    TradeView,
    WindowStats,
    iso_utc,
    parse_time,
    scan_view,
)
from dolphin.bus.posture import DEFAULT_POSTURE, AsyncPostureStore, PostureReading, PostureStore
from dolphin.bus.settings import BusSettings
from dolphin.bus.shards import ShardedFeatureStore, shard_index, shard_map_name, symbols_in_keys
from dolphin.bus.status import BusStatus, collect_status
from dolphin.bus.writer_lock import LockToken, WriterLock

__all__ = [
    "DEFAULT_POSTURE",
    "PINNED_CLIENT_VERSION",
    "POSTURES",
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
    "ObSnapshot",
    "OpenPositionView",
    "ObfAssetHealth",
    "ObfUniverse",
    "Payload",
    "PayloadError",
    "PostureReading",
    "PostureStore",
    "ProbeTimestamp",
    "Rejections",
    "SafetyState",
    "ScanView",
    "ShardedFeatureStore",
    "StrategyState",
    "TradeView",
    "Subscription",
    "ThreadQueue",
    "WindowStats",
    "WriterLock",
    "client_options",
    "collect_status",
    "connect",
    "connect_async",
    "default_codec",
    "iso_utc",
    "parse_time",
    "scan_view",
    "schema",
    "shard_index",
    "shard_map_name",
    "subscribe",
    "subscribe_async",
    "symbols_in_keys",
]
