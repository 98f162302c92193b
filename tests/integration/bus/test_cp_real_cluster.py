"""What the CP subsystem of community Hazelcast 5.7.0 guarantees: nothing — found by test.

* A member configured with CP members refuses to start: the CP subsystem is a licensed
  (Enterprise) feature since 5.5.
* Without CP members (the only way a community member starts) there is no "unsafe
  mode" either: every CP call — creating the group of an AtomicReference or a
  FencedLock — is answered UnsupportedOperation at once, naming Enterprise.

So on a community cluster the posture AtomicReference ``DOLPHIN_SAFETY`` and the ACB
FencedLock ``DOLPHIN_ACB_WRITER`` do not exist: posture lives in the IMap
``DOLPHIN_SAFETY["latest"]`` (eventually consistent, one synchronous backup) and ACB
writes go unguarded (test_bus_layer.py runs both fallbacks on this cluster). The
embedded member's ``--no-cp`` answers the same way.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hazelcast.errors import UnsupportedOperationError

from dolphin.bus import schema
from dolphin.bus.cluster_config import MemberConfigSpec, member_config_xml
from tests.hzcluster import RealCluster, RealMember, require_real_cluster
from tests.integration.bus.support import free_port

ENTERPRISE = r"CP subsystem is an Enterprise feature"


def test_every_cp_call_is_refused_on_a_community_cluster(real_cluster: RealCluster) -> None:
    client = real_cluster.client()
    try:
        with pytest.raises(UnsupportedOperationError, match=ENTERPRISE):
            client.cp_subsystem.get_atomic_reference(schema.SAFETY_REF)
        with pytest.raises(UnsupportedOperationError, match=ENTERPRISE):
            client.cp_subsystem.get_lock(schema.ACB_WRITER_LOCK)
        with pytest.raises(UnsupportedOperationError, match=ENTERPRISE):
            client.cp_subsystem.get_atomic_reference(f"{schema.SAFETY_REF}@posture")  # a custom group too
        client.get_map(schema.SAFETY).blocking().set(schema.LATEST, '{"posture": "APEX"}')  # maps are unaffected
    finally:
        client.shutdown()


def test_the_asyncio_client_gets_the_same_answer(real_cluster: RealCluster) -> None:
    from hazelcast.asyncio import HazelcastClient as AsyncClient

    async def scenario() -> None:
        client = await AsyncClient.create_and_start(cluster_members=list(real_cluster.addresses),
                                                    cluster_name=real_cluster.cluster_name,
                                                    cluster_connect_timeout=10)
        try:
            with pytest.raises(UnsupportedOperationError, match=ENTERPRISE):
                await client.cp_subsystem.get_lock(schema.ACB_WRITER_LOCK)
        finally:
            await client.shutdown()

    asyncio.run(scenario())


def test_a_member_configured_with_cp_members_refuses_to_start(tmp_path: Path) -> None:
    require_real_cluster()
    port = free_port()
    spec = MemberConfigSpec(cluster_name="cp-probe", host="127.0.0.1", port=port, members=(f"127.0.0.1:{port}",),
                            fast_failure_detection=True)
    with_cp = member_config_xml(spec).replace("<cp-member-count>0</cp-member-count>",
                                              "<cp-member-count>3</cp-member-count>")
    member = RealMember("cp-member", "127.0.0.1", port, tmp_path, spec, config_xml=with_cp)
    try:
        member.start()
        assert member.proc is not None and member.proc.wait(120) != 0
    finally:
        member.kill9()
    log = member.log_text()
    assert "CP subsystem is a licensed feature" in log and "Enterprise license" in log
