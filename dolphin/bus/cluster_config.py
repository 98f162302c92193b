"""The member configuration of a real Hazelcast 5.x cluster for DOLPHIN's maps (bible §15).

One renderer serves the test fixtures that start real members, the benchmark and the
operator (`dolphin hz member-config`, docs/deploy.md), so what is tested is what is
deployed. The XML it writes is a plain Hazelcast member configuration:

* cluster name, TCP-IP join to an explicit member list (no multicast, no auto-detection),
  bound to one interface only (``hazelcast.socket.bind.any=false``);
* every §15 map with one synchronous backup, so losing one member loses no entry;
* the latest-wins merge policy after a split brain (the newest write of a key survives;
  DOLPHIN's keys are "latest state" documents), which needs per-entry statistics;
* time-to-live: none on the state maps (readers judge freshness by the payload's own
  timestamp, and an expired key would turn "stale" into "absent"); a day on the order
  book and feature shard maps, so an asset that stops trading leaves discovery (§15.4);
* no CP members: CP is an Enterprise feature of Hazelcast 5.5+ (a community member
  refuses to start with CP members configured, and answers every CP call
  UnsupportedOperation). DOLPHIN falls back to the IMap then (docs/bus.md);
* graceful shutdown on SIGTERM, so rolling a member migrates its partitions first;
* near-cache invalidations flushed every second (default 10 s), so a near-cached shard
  read lags a write elsewhere by about a second at most.

Failure detection keeps Hazelcast's production defaults unless `fast_failure_detection`
is set (tests: heartbeat 1 s, member declared dead after 8 s, split-brain merge checks
every 5 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from dolphin.bus import schema

HAZELCAST_VERSION = "5.7.0"

#: Seconds an entry lives on maps whose keys are per asset (0 = forever).
ASSET_MAP_TTL_S = 86_400


@dataclass(frozen=True, slots=True)
class MapSettings:
    name: str
    backup_count: int = 1
    ttl_s: int = 0
    why: str = ""


def dolphin_maps(backup_count: int = 1) -> tuple[MapSettings, ...]:
    """The §15 maps and what each keeps: one backup each, TTL only on per-asset maps."""
    state = "latest-state documents; readers judge age by the payload timestamp"
    maps = [
        MapSettings(schema.FEATURES, backup_count, 0, "scan, ACB, ExF, OBF universe, MC: " + state),
        MapSettings(schema.SAFETY, backup_count, 0, "posture (the CP reference's IMap twin)"),
        MapSettings(schema.STATE_BLUE, backup_count, 0, "trader state and per-run snapshots"),
        MapSettings(schema.PNL_BLUE, backup_count, 0, "daily results"),
        MapSettings(schema.PNL_GREEN, backup_count, 0, "daily results (green)"),
        MapSettings(schema.HEARTBEAT, backup_count, 0, "service heartbeats; MHS computes their age"),
        MapSettings(schema.META_HEALTH, backup_count, 0, "the MHS report"),
        MapSettings(schema.ORDER_BOOK, backup_count, ASSET_MAP_TTL_S, "raw order books, one key per asset"),
    ]
    maps += [MapSettings(name, backup_count, ASSET_MAP_TTL_S, "OB features per asset (§15.2); near cache client-side")
             for name in schema.SHARD_MAPS]
    return tuple(maps)


PRODUCTION_PROPERTIES: dict[str, str] = {
    "hazelcast.phone.home.enabled": "false",
    "hazelcast.socket.bind.any": "false",
    "hazelcast.shutdownhook.policy": "GRACEFUL",
    "hazelcast.logging.type": "jdk",
    # near-cache invalidations are batched per member; the default flush every 10 s would
    # let a near-cached shard read (§15.3) lag a write by up to 10 s: bound it to ~1 s
    "hazelcast.map.invalidation.batchfrequency.seconds": "1",
}

FAST_FAILURE_DETECTION: dict[str, str] = {
    "hazelcast.heartbeat.interval.seconds": "1",
    "hazelcast.max.no.heartbeat.seconds": "8",
    "hazelcast.merge.first.run.delay.seconds": "5",
    "hazelcast.merge.next.run.delay.seconds": "5",
    "hazelcast.wait.seconds.before.join": "0",
    "hazelcast.graceful.shutdown.max.wait": "30",
    # TTL expiry (and its EXPIRED events) within ~1 s instead of ~5 s
    "hazelcast.internal.map.expiration.task.period.seconds": "1",
}


@dataclass(frozen=True, slots=True)
class MemberConfigSpec:
    """One member: where it binds and whom it joins."""

    cluster_name: str
    host: str
    port: int
    members: tuple[str, ...]
    backup_count: int = 1
    fast_failure_detection: bool = False
    properties: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.cluster_name:
            raise ValueError("the cluster name must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is outside 1..65535")
        if not self.members:
            raise ValueError("a member needs the member list to join (its own address at least)")
        for address in self.members:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"member address {address!r} is not host:port")
        if not 0 <= self.backup_count <= 6:
            raise ValueError("backup count must be 0..6")


def member_config_xml(spec: MemberConfigSpec) -> str:
    """A complete ``hazelcast.xml`` for one member of a DOLPHIN cluster."""
    props = dict(PRODUCTION_PROPERTIES)
    if spec.fast_failure_detection:
        props.update(FAST_FAILURE_DETECTION)
    props.update(spec.properties)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<!-- DOLPHIN member configuration (Hazelcast {HAZELCAST_VERSION}), rendered by dolphin.bus.cluster_config -->",
        '<hazelcast xmlns="http://www.hazelcast.com/schema/config"',
        '           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
        '           xsi:schemaLocation="http://www.hazelcast.com/schema/config '
        'http://www.hazelcast.com/schema/config/hazelcast-config-5.7.xsd">',
        f"  <cluster-name>{escape(spec.cluster_name)}</cluster-name>",
        "  <properties>",
        *(f'    <property name="{escape(k)}">{escape(v)}</property>' for k, v in props.items()),
        "  </properties>",
        "  <network>",
        f'    <port auto-increment="false">{spec.port}</port>',
        "    <join>",
        '      <auto-detection enabled="false"/>',
        '      <multicast enabled="false"/>',
        '      <tcp-ip enabled="true">',
        *(f"        <member>{escape(m)}</member>" for m in spec.members),
        "      </tcp-ip>",
        "    </join>",
        '    <interfaces enabled="true">',
        f"      <interface>{escape(spec.host)}</interface>",
        "    </interfaces>",
        "  </network>",
        '  <jet enabled="false"/>',
        "  <cp-subsystem>",
        "    <cp-member-count>0</cp-member-count>",
        "  </cp-subsystem>",
    ]
    for m in dolphin_maps(spec.backup_count):
        lines += [
            f'  <map name="{escape(m.name)}">',
            f"    <!-- {escape(m.why)} -->",
            "    <in-memory-format>BINARY</in-memory-format>",
            f"    <backup-count>{m.backup_count}</backup-count>",
            "    <async-backup-count>0</async-backup-count>",
            f"    <time-to-live-seconds>{m.ttl_s}</time-to-live-seconds>",
            "    <per-entry-stats-enabled>true</per-entry-stats-enabled>",
            '    <merge-policy batch-size="100">com.hazelcast.spi.merge.LatestUpdateMergePolicy</merge-policy>',
            "  </map>",
        ]
    lines.append("</hazelcast>")
    return "\n".join(lines) + "\n"
