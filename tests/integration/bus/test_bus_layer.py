"""The bus layer services use, through the official client, on the embedded member and a real cluster.

Where the two differ the test says so: community Hazelcast 5.5+ has no CP subsystem, so
posture and the ACB writer lock run on their fallbacks there (`backend.cp`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator

import hazelcast
import pytest
from typer.testing import CliRunner

from commands.app import app
from dolphin.bus import (
    AcbBoost,
    AsyncBus,
    AsyncPostureStore,
    Bus,
    BusCodec,
    BusSettings,
    EigenScan,
    ObFeatures,
    PostureStore,
    SafetyState,
    ShardedFeatureStore,
    WriterLock,
    collect_status,
    connect,
    connect_async,
    schema,
    shard_map_name,
)
from dolphin.bus.member import EmbeddedMember
from tests.integration.bus.conftest import Backend


def _settings(member: EmbeddedMember) -> BusSettings:
    return BusSettings(members=(member.address,), connect_timeout_s=10.0, embedded=True)


@pytest.fixture
def client(backend: Backend) -> Iterator[hazelcast.HazelcastClient]:
    c = connect(backend.settings(), client_name="bus-layer-test")
    yield c
    c.shutdown()


@pytest.fixture
def no_cp_member() -> Iterator[EmbeddedMember]:
    with EmbeddedMember(cp_enabled=False) as m:
        yield m


def _scan(n: int) -> EigenScan:
    return EigenScan(scan_number=n, timestamp_ns=time.time_ns(), vel_div=-0.031, w50_velocity=-0.01,
                     w750_velocity=0.021, asset_prices={"BTCUSDT": 71281.03, "ETHUSDT": 3550.5},
                     timestamp=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), bridge_ts=time.time())


def test_typed_put_get_through_the_schema(client: hazelcast.HazelcastClient) -> None:
    bus = Bus(client, codec=BusCodec())
    scan = _scan(7315)
    bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, scan)
    assert bus.get(schema.FEATURES, schema.LATEST_EIGEN_SCAN) == scan
    raw = client.get_map(schema.FEATURES).blocking().get(schema.LATEST_EIGEN_SCAN)
    assert isinstance(raw, str) and json.loads(raw)["asset_prices"]["BTCUSDT"] == 71281.03  # JSON on the wire
    with pytest.raises(TypeError):
        bus.put(schema.FEATURES, schema.ACB_BOOST, scan)  # wrong payload type for the key


def test_bad_values_written_by_others_read_as_none_and_are_counted(client: hazelcast.HazelcastClient) -> None:
    codec = BusCodec()
    bus = Bus(client, codec=codec)
    raw = client.get_map(schema.FEATURES).blocking()
    raw.put(schema.ACB_BOOST, '{"boost": NaN, "beta": 0.2}')
    assert bus.get(schema.FEATURES, schema.ACB_BOOST) is None
    raw.put(schema.ACB_BOOST, 17)  # not even a string
    assert bus.get(schema.FEATURES, schema.ACB_BOOST) is None
    assert codec.rejections.count(f"{schema.FEATURES}[{schema.ACB_BOOST}]") == 2


@pytest.mark.embedded_only
def test_posture_reads_cp_first_then_imap_then_default(client: hazelcast.HazelcastClient) -> None:
    codec = BusCodec()
    store = PostureStore(client, codec=codec)
    client.cp_subsystem.get_atomic_reference(schema.SAFETY_REF).blocking().set(None)
    client.get_map(schema.SAFETY).blocking().delete(schema.LATEST)
    assert (store.read().posture, store.read().source) == ("APEX", "default")
    state = SafetyState(posture="STALKER", rm=0.8, sensors={"cat1": 1.0}, timestamp=time.time())
    assert store.write(state) is True
    reading = store.read()
    assert (reading.posture, reading.source, reading.state) == ("STALKER", "cp", state)
    client.cp_subsystem.get_atomic_reference(schema.SAFETY_REF).blocking().set("garbage")  # bad CP value
    reading = store.read()
    assert (reading.posture, reading.source) == ("STALKER", "imap")
    assert codec.rejections.total == 1


def test_posture_round_trip_on_either_bus(backend: Backend, client: hazelcast.HazelcastClient,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """CP where the bus has it (embedded), the IMap where it has not (community cluster), one WARNING."""
    store = PostureStore(client, cp_retry_s=3600)
    state = SafetyState(posture="TURTLE", rm=0.55, timestamp=time.time())
    with caplog.at_level(logging.WARNING, logger="dolphin.bus"):
        assert store.write(state) is backend.cp
        reading = store.read()
        assert (reading.posture, reading.state) == ("TURTLE", state)
        assert reading.source == ("cp" if backend.cp else "imap")
        assert store.read().posture == "TURTLE"
    notices = [r for r in caplog.records if "CP subsystem unavailable" in r.getMessage()]
    assert len(notices) == (0 if backend.cp else 1)
    if not backend.cp:
        assert "Enterprise" in notices[0].getMessage()  # the cluster's own reason reaches the log


def test_posture_falls_back_to_the_imap_without_cp_and_says_so_once(
        no_cp_member: EmbeddedMember, caplog: pytest.LogCaptureFixture) -> None:
    c = connect(_settings(no_cp_member))
    try:
        store = PostureStore(c, cp_retry_s=3600)
        with caplog.at_level(logging.WARNING, logger="dolphin.bus"):
            assert store.write(SafetyState(posture="TURTLE", rm=0.6, timestamp=time.time())) is False
            for _ in range(3):
                reading = store.read()
                assert (reading.posture, reading.source) == ("TURTLE", "imap")
            store.write(SafetyState(posture="HIBERNATE", rm=0.2, timestamp=time.time()))
            assert store.read().posture == "HIBERNATE"
        notices = [r for r in caplog.records if "CP subsystem unavailable" in r.getMessage()]
        assert len(notices) == 1
        assert store.cp.degraded
    finally:
        c.shutdown()


def test_async_posture_and_bus(backend: Backend) -> None:
    import asyncio

    async def scenario() -> tuple[str, str, object]:
        c = await connect_async(backend.settings())
        try:
            store = AsyncPostureStore(c)
            await store.write(SafetyState(posture="APEX", rm=0.97, timestamp=time.time()))
            reading = await store.read()
            bus = AsyncBus(c)
            boost = AcbBoost(boost=1.35, beta=0.8, pushed_at=time.time())
            await bus.put(schema.FEATURES, schema.ACB_BOOST, boost)
            return reading.posture, reading.source, await bus.get(schema.FEATURES, schema.ACB_BOOST)
        finally:
            await c.shutdown()

    posture, source, boost = asyncio.run(scenario())
    assert (posture, source) == ("APEX", "cp" if backend.cp else "imap")
    assert isinstance(boost, AcbBoost) and boost.boost == 1.35


@pytest.mark.embedded_only
def test_writer_lock_guards_and_lets_one_writer_in(client: hazelcast.HazelcastClient, name: str) -> None:
    lock = WriterLock(client, name)
    with lock.hold() as token:
        assert token is not None and token.guarded and token.fence
        inside: list[object] = []
        t = threading.Thread(target=lambda: inside.append(_try_hold(lock)))
        t.start()
        t.join(30)
        assert inside == [None]  # another writer is busy: skip the cycle
    with lock.hold() as again:
        assert again is not None and again.fence > token.fence


def test_writer_lock_on_either_bus(backend: Backend, client: hazelcast.HazelcastClient, name: str) -> None:
    """Fenced where CP exists; on a community cluster the ACB writes go on unguarded (one writer by design)."""
    lock = WriterLock(client, name, cp_retry_s=3600)
    with lock.hold() as token:
        assert token is not None and token.guarded is backend.cp and (token.fence is not None) is backend.cp
    assert lock.cp.degraded is (not backend.cp)


def _try_hold(lock: WriterLock) -> object:
    with lock.hold() as token:
        return token


def test_writer_lock_is_unguarded_without_cp(no_cp_member: EmbeddedMember) -> None:
    c = connect(_settings(no_cp_member))
    try:
        lock = WriterLock(c)
        with lock.hold() as token:
            assert token is not None and token.guarded is False and token.fence is None
        with lock.hold() as token:
            assert token is not None and not token.guarded
        assert lock.cp.failures == 1  # CP is not retried before cp_retry_s
    finally:
        c.shutdown()


def test_sharded_feature_store(client: hazelcast.HazelcastClient) -> None:
    store = ShardedFeatureStore(client)
    store.put("BTCUSDT", "vel_div", -0.03)
    assert store.get("BTCUSDT", "vel_div") == -0.03
    raw = client.get_map(shard_map_name("BTCUSDT")).blocking().get("vel_div_BTCUSDT")
    assert raw == "-0.03"  # §15.3 key format, JSON value
    store.delete("BTCUSDT", "vel_div")
    assert store.get("BTCUSDT", "vel_div") is None
    features = ObFeatures(imbalance=0.12, fill_probability=0.8, depth_quality=1.3, regime_signal=0.0,
                          timestamp=time.time())
    store.put_assets({"ETHUSDT": features, "SOLUSDT": features})
    store.put_asset("XRPUSDT", features)
    store.put("ADAUSDT", "imbalance_ma5", 0.05)
    assert store.get_asset("ETHUSDT") == features
    assert {"ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT"} <= store.discover_assets()
    with pytest.raises(ValueError):
        store.put("btcusdt", "vel_div", 1.0)
    with pytest.raises(ValueError):
        store.put("BTCUSDT", "VelDiv", 1.0)


def test_status_reports_members_maps_and_key_ages(backend: Backend, client: hazelcast.HazelcastClient) -> None:
    bus = Bus(client)
    bus.put(schema.FEATURES, schema.ACB_BOOST, AcbBoost(boost=1.2, beta=0.2, pushed_at=time.time() - 30))
    bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, _scan(1))
    client.get_map(schema.FEATURES).blocking().put(schema.EXF_LATEST, "{not json")
    report = collect_status(client, backend.settings())
    assert sorted(m.address for m in report.members) == sorted(backend.addresses)
    assert report.cluster_name == backend.cluster_name
    assert report.cluster is not None and report.cluster.whole and report.cluster.missing == []
    assert (len(report.cluster.members), report.cluster.expected) == (len(backend.addresses),) * 2
    assert report.cluster.partitions == 271 == sum(m.partitions for m in report.members)
    if backend.cluster is not None:
        assert all(m.partitions > 0 for m in report.members)  # ownership spread over the real members
    sizes = {m.name: m.size for m in report.maps}
    assert sizes[schema.FEATURES] >= 3
    keys = {(k.map_name, k.key): k for k in report.keys}
    acb = keys[(schema.FEATURES, schema.ACB_BOOST)]
    assert acb.valid and acb.age_s is not None and 29 <= acb.age_s < 300
    exf = keys[(schema.FEATURES, schema.EXF_LATEST)]
    assert exf.present and not exf.valid and "bad_json" in (exf.problem or "")


def test_hz_status_command(backend: Backend, client: hazelcast.HazelcastClient,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    Bus(client).put(schema.HEARTBEAT, schema.LATEST, _heartbeat())
    if backend.embedded is not None:
        monkeypatch.setenv("DOLPHIN_HZ_PORT", str(backend.embedded.port))
        monkeypatch.delenv("DOLPHIN_HZ_MEMBERS", raising=False)
    else:
        monkeypatch.setenv("DOLPHIN_HZ_MEMBERS", ",".join(backend.addresses))
    monkeypatch.setenv("DOLPHIN_HZ_CLUSTER", backend.cluster_name)
    result = CliRunner().invoke(app, ["hz", "status", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(m["address"] for m in report["members"]) == sorted(backend.addresses)
    assert report["embedded"] is (backend.embedded is not None)
    assert report["cluster"]["owned"] == report["cluster"]["partitions"] == 271
    assert any(k["key"] == "latest" and k["map_name"] == schema.HEARTBEAT and k["valid"] for k in report["keys"])
    table = CliRunner().invoke(app, ["hz", "status"])
    assert table.exit_code == 0 and "latest keys" in table.stdout
    n = len(backend.addresses)
    assert f"{n}/{n} member{'s' if n > 1 else ''} · 271/271 partitions" in table.stdout


def _heartbeat():  # type: ignore[no-untyped-def]
    from dolphin.bus import Heartbeat

    return Heartbeat(ts=time.time(), service="test", phase="running")
