"""What `dolphin hz status` reports: members, partition health, cluster, maps with sizes, key ages.

Works against any Hazelcast cluster (only public client calls). Ages come from each
payload's publish time (`Payload.published_s()`, the wall clock of the write), so
"age" means "how old is the data", not "when was the key last written".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from dolphin.bus import schema
from dolphin.bus.client import client_version
from dolphin.bus.cluster_health import ClusterHealth, cluster_health
from dolphin.bus.codec import BusCodec, PayloadError
from dolphin.bus.settings import BusSettings

MAP_SERVICE = "hz:impl:mapService"


class MemberView(msgspec.Struct, frozen=True):
    address: str
    uuid: str
    version: str
    partitions: int = 0  # partitions this member owns in the client's table


class MapView(msgspec.Struct, frozen=True):
    name: str
    size: int


class KeyView(msgspec.Struct, frozen=True):
    """One monitored key: absent, valid with an age, or present but rejected (with why)."""

    map_name: str
    key: str
    present: bool
    valid: bool
    age_s: float | None
    problem: str | None


class BusStatus(msgspec.Struct, frozen=True):
    cluster_name: str
    members: list[MemberView]
    client_version: str
    embedded: bool
    maps: list[MapView]
    keys: list[KeyView]
    cluster: ClusterHealth | None = None


def collect_status(client: Any, settings: BusSettings, *, codec: BusCodec | None = None,
                   clock: Callable[[], float] = time.time) -> BusStatus:
    """Read-only: lists the maps that exist, sizes them, decodes the monitored keys.

    Maps that do not exist are not touched (asking for a proxy would create them).
    """
    use_codec = codec if codec is not None else BusCodec(max_future_s=None)
    partition_service = client.partition_service
    owners = [partition_service.get_partition_owner(pid) for pid in range(partition_service.get_partition_count())]
    members = [
        MemberView(address=f"{m.address.host}:{m.address.port}", uuid=str(m.uuid),
                   version=f"{m.version.major}.{m.version.minor}.{m.version.patch}",
                   partitions=sum(1 for owner in owners if owner == m.uuid))
        for m in client.cluster_service.get_members()
    ]
    names = sorted({o.name for o in client.get_distributed_objects() if o.service_name == MAP_SERVICE})
    maps = [MapView(name, client.get_map(name).blocking().size()) for name in names]
    now = clock()
    keys: list[KeyView] = []
    for map_name, key in schema.MONITORED_KEYS:
        raw = client.get_map(map_name).blocking().get(key) if map_name in names else None
        if raw is None:
            keys.append(KeyView(map_name, key, False, False, None, None))
            continue
        try:
            payload = use_codec.decode(map_name, key, raw)
        except PayloadError as exc:
            keys.append(KeyView(map_name, key, True, False, None, str(exc)))
            continue
        ts = payload.published_s() if hasattr(payload, "published_s") else None
        keys.append(KeyView(map_name, key, True, True, None if ts is None else max(0.0, now - ts), None))
    return BusStatus(cluster_name=settings.cluster_name, members=members, client_version=client_version(),
                     embedded=settings.embedded, maps=maps, keys=keys, cluster=cluster_health(client, settings))
