"""How whole the cluster is, as one client sees it: members present, partitions owned.

Works with either client (threaded or asyncio): both keep the member list and the
partition table locally, pushed by the cluster, so this reads no network. "Expected"
members are the addresses the client was configured with (``DOLPHIN_HZ_MEMBERS``; one
for the embedded member): a cluster that lost a member still serves every key from the
backups, but has no spare copy until the member is back — MHS M4 and the operator
views show that as partial health rather than down.

Partitions are healthy when their owner is a member the client currently sees; right
after a member dies the table still names it for the partitions it owned, until the
cluster promotes their backups and pushes a new table (about a second).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import msgspec

from dolphin.bus.settings import BusSettings


class ClusterHealth(msgspec.Struct, frozen=True):
    members: list[str]  # host:port of the members the client sees
    expected: int  # configured member addresses
    missing: list[str]  # configured addresses not among them (when the addresses match)
    partitions: int  # the cluster's partition count (0 before the first table)
    owned: int  # partitions whose owner is a present member

    @property
    def member_score(self) -> float:
        return min(1.0, len(self.members) / self.expected) if self.expected else 1.0

    @property
    def partition_score(self) -> float:
        return self.owned / self.partitions if self.partitions else 0.0

    @property
    def score(self) -> float:
        """1.0 whole; the lower of the member and partition shares otherwise."""
        return min(self.member_score, self.partition_score)

    @property
    def whole(self) -> bool:
        return self.score >= 1.0

    def summary(self) -> str:
        """``3/3 members · 271/271 partitions`` (what the TUI header and the status line show)."""
        return (f"{len(self.members)}/{self.expected} member{'s' if self.expected != 1 else ''} · "
                f"{self.owned}/{self.partitions} partitions")


def cluster_health(client: Any, settings: BusSettings) -> ClusterHealth:
    """The client's current view of the cluster (no network round trip)."""
    members = list(client.cluster_service.get_members())
    live = {m.uuid for m in members}
    addresses = [f"{m.address.host}:{m.address.port}" for m in members]
    partition_service = client.partition_service
    count = partition_service.get_partition_count()
    owned = sum(1 for pid in range(count) if partition_service.get_partition_owner(pid) in live)
    return ClusterHealth(members=sorted(addresses), expected=len(settings.members),
                         missing=sorted(set(settings.members) - set(addresses)), partitions=count, owned=owned)


def probe_cluster(settings: BusSettings, timeout_s: float = 10.0) -> ClusterHealth:
    """Connect once, read the cluster's health, disconnect. `BusUnavailableError` (exit 10) if unreachable
    within the settings' connect timeout (at most `timeout_s`)."""
    from dolphin.bus.client import connect

    bounded = replace(settings, connect_timeout_s=min(settings.connect_timeout_s, timeout_s))
    client = connect(bounded, client_name="dolphin-probe")
    try:
        deadline = time.monotonic() + 2.0  # the partition table follows the member list by a moment
        health = cluster_health(client, settings)
        while not health.partitions and time.monotonic() < deadline:
            time.sleep(0.05)
            health = cluster_health(client, settings)
        return health
    finally:
        client.shutdown()
