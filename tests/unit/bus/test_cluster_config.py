"""The member configuration DOLPHIN deploys (and its tests run): §15 maps, join, no CP; cluster health scoring."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from dolphin.bus import schema
from dolphin.bus.cluster_config import ASSET_MAP_TTL_S, MemberConfigSpec, member_config_xml
from dolphin.bus.cluster_health import ClusterHealth

NS = {"hz": "http://www.hazelcast.com/schema/config"}


def _spec(**kw: object) -> MemberConfigSpec:
    values: dict[str, object] = {"cluster_name": "dolphin", "host": "10.0.0.5", "port": 5701,
                                 "members": ("10.0.0.5:5701", "10.0.0.6:5701", "10.0.0.7:5701")}
    values.update(kw)
    return MemberConfigSpec(**values)  # type: ignore[arg-type]


def test_every_section_15_map_has_a_backup_the_merge_policy_and_its_ttl() -> None:
    root = ET.fromstring(member_config_xml(_spec()))
    assert root.findtext("hz:cluster-name", namespaces=NS) == "dolphin"
    maps = {m.get("name"): m for m in root.findall("hz:map", NS)}
    expected = {schema.FEATURES, schema.SAFETY, schema.STATE_BLUE, schema.PNL_BLUE, schema.PNL_GREEN, schema.HEARTBEAT,
                schema.META_HEALTH, schema.ORDER_BOOK, *schema.SHARD_MAPS}
    assert set(maps) == expected
    for name, m in maps.items():
        assert m.findtext("hz:backup-count", namespaces=NS) == "1"
        assert m.findtext("hz:merge-policy", namespaces=NS).endswith("LatestUpdateMergePolicy")
        assert m.findtext("hz:per-entry-stats-enabled", namespaces=NS) == "true"  # the merge policy needs it
        ttl = int(m.findtext("hz:time-to-live-seconds", namespaces=NS))
        assert ttl == (ASSET_MAP_TTL_S if name in schema.SHARD_MAPS or name == schema.ORDER_BOOK else 0)


def test_join_bind_cp_and_properties() -> None:
    root = ET.fromstring(member_config_xml(_spec()))
    network = root.find("hz:network", NS)
    assert network is not None
    assert [m.text for m in network.findall("hz:join/hz:tcp-ip/hz:member", NS)] == list(_spec().members)
    assert network.find("hz:join/hz:multicast", NS).get("enabled") == "false"  # type: ignore[union-attr]
    assert network.findtext("hz:interfaces/hz:interface", namespaces=NS) == "10.0.0.5"
    assert root.findtext("hz:cp-subsystem/hz:cp-member-count", namespaces=NS) == "0"
    props = {p.get("name"): p.text for p in root.findall("hz:properties/hz:property", NS)}
    assert props["hazelcast.socket.bind.any"] == "false" and props["hazelcast.shutdownhook.policy"] == "GRACEFUL"
    assert "hazelcast.max.no.heartbeat.seconds" not in props  # production failure detection unless asked
    fast = {p.get("name"): p.text for p in ET.fromstring(member_config_xml(_spec(fast_failure_detection=True)))
            .findall("hz:properties/hz:property", NS)}
    assert fast["hazelcast.max.no.heartbeat.seconds"] == "8"


@pytest.mark.parametrize("bad", [{"cluster_name": ""}, {"port": 0}, {"members": ()}, {"members": ("nohost",)},
                                 {"backup_count": 7}])
def test_bad_specs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _spec(**bad)


def test_names_are_escaped() -> None:
    assert "<cluster-name>a&amp;b</cluster-name>" in member_config_xml(_spec(cluster_name="a&b"))


def test_cluster_health_scores() -> None:
    whole = ClusterHealth(members=["a:1", "b:1", "c:1"], expected=3, missing=[], partitions=271, owned=271)
    assert whole.whole and whole.score == 1.0 and whole.summary() == "3/3 members · 271/271 partitions"
    lost = ClusterHealth(members=["a:1", "c:1"], expected=3, missing=["b:1"], partitions=271, owned=271)
    assert lost.score == pytest.approx(2 / 3) and not lost.whole
    moving = ClusterHealth(members=["a:1", "c:1"], expected=3, missing=["b:1"], partitions=271, owned=90)
    assert moving.score == pytest.approx(90 / 271)  # right after a death: its partitions not yet promoted
    assert ClusterHealth(members=[], expected=1, missing=[], partitions=0, owned=0).score == 0.0
    assert ClusterHealth(members=["a:1"], expected=1, missing=[], partitions=271, owned=271).summary() == (
        "1/1 member · 271/271 partitions")


def test_member_config_command_prints_what_the_tests_run() -> None:
    from typer.testing import CliRunner

    from commands.app import app

    args = ["hz", "member-config", "--member", "10.0.0.5:5701", "--member", "10.0.0.6:5701", "--host", "10.0.0.6",
            "--cluster-name", "prod"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = member_config_xml(MemberConfigSpec(cluster_name="prod", host="10.0.0.6", port=5701,
                                                  members=("10.0.0.5:5701", "10.0.0.6:5701")))
    assert result.stdout == expected
