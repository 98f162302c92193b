"""Member process restarts: kill -9 and SIGTERM, reconnects, listeners, stale locks, durability."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import hazelcast
import msgspec
import pytest
from hazelcast.errors import LockOwnershipLostError

from dolphin.bus.member.persistence import SNAPSHOT_NAME, Snapshot
from tests.integration.bus.support import FAST_RECONNECT, EventLog, MemberProcess, free_port, wait_until


def _client(address: str) -> hazelcast.HazelcastClient:
    return hazelcast.HazelcastClient(cluster_members=[address], cluster_name="dolphin", cluster_connect_timeout=30,
                                     invocation_timeout=30, **FAST_RECONNECT)


def _snapshot_has(data_dir: Path, map_name: str) -> bool:
    path = data_dir / SNAPSHOT_NAME
    if not path.exists():
        return False
    snapshot = msgspec.msgpack.decode(path.read_bytes(), type=Snapshot)
    return any(m.name == map_name and m.entries for m in snapshot.maps)


def test_kill9_restart_reconnects_restores_and_fences_stale_locks(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    member = MemberProcess(free_port(), tmp_path, "--snapshot-interval", "0.1", data_dir=data_dir).start()
    first_uuid = member.ready["member_uuid"]
    writer = _client(member.address)
    reader = _client(member.address)
    try:
        events = EventLog()
        reader.get_map("features").blocking().add_entry_listener(include_value=True, added_func=events,
                                                                 updated_func=events)
        features = writer.get_map("features").blocking()
        features.put("acb_boost", '{"boost": 1.2, "beta": 0.2}')
        writer.cp_subsystem.get_atomic_reference("DOLPHIN_SAFETY").blocking().set('{"posture": "TURTLE"}')
        events.wait_for(1)
        lock = writer.cp_subsystem.get_lock("acb-writer").blocking()
        held_fence = lock.lock()
        wait_until(lambda: _snapshot_has(data_dir, "features"))

        member.kill9()
        member.start()
        assert member.ready["member_uuid"] != first_uuid  # identities never repeat

        # the client reconnects by itself and the data came back from the snapshot
        assert wait_until(lambda: features.get("acb_boost"), timeout=30) == '{"boost": 1.2, "beta": 0.2}'
        ref = writer.cp_subsystem.get_atomic_reference("DOLPHIN_SAFETY").blocking()
        assert ref.get() == '{"posture": "TURTLE"}'

        # the reader's listener was re-registered on the new member and fires again
        seen = len(events.snapshot())

        def listener_fired() -> bool:
            features.put("probe", str(time.monotonic()))
            return len(events.snapshot()) > seen

        wait_until(listener_fired, timeout=30, interval=0.2)

        # the lock's CP session died with the old member: ownership is lost, not silently kept
        with pytest.raises(LockOwnershipLostError):
            lock.unlock()
        new_fence = lock.lock()  # a new session, a new and larger fence
        assert new_fence > held_fence
        lock.unlock()
    finally:
        writer.shutdown()
        reader.shutdown()
        member.stop_quietly()


def test_sigterm_is_a_clean_stop_and_the_data_survives(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    member = MemberProcess(free_port(), tmp_path, "--snapshot-interval", "60", data_dir=data_dir).start()
    client = _client(member.address)
    try:
        m = client.get_map("DOLPHIN_STATE_BLUE").blocking()
        m.put("latest", '{"capital": 25000.0}')
        m.put("short-lived", "x", ttl=120)
        waiting: list[BaseException] = []

        def parked() -> None:  # a request parked in the member while it stops
            try:
                other = client.cp_subsystem.get_lock("busy").blocking()
                other.lock()
            except BaseException as exc:
                waiting.append(exc)

        holder = client.cp_subsystem.get_lock("busy").blocking()
        holder.lock()
        t = threading.Thread(target=parked, daemon=True)
        t.start()
        time.sleep(0.2)
        assert member.terminate() == 0
        stderr = member.stderr_path.read_text()
        assert "Traceback" not in stderr
        assert "stopped" in stderr
        assert _snapshot_has(data_dir, "DOLPHIN_STATE_BLUE")  # written on the way out (interval is 60 s)

        member.start()
        assert wait_until(lambda: m.get("latest"), timeout=30) == '{"capital": 25000.0}'
        assert m.get("short-lived") == "x"  # TTL continues from the snapshot, not reset and not lost
    finally:
        client.shutdown()
        member.stop_quietly()


def test_a_second_member_cannot_share_a_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = MemberProcess(free_port(), tmp_path, data_dir=data_dir).start()
    try:
        second = MemberProcess(free_port(), tmp_path, data_dir=data_dir)
        with pytest.raises(AssertionError, match="exited with 12"):
            second.start()
        assert "in use by another member" in second.stderr_path.read_text()
    finally:
        first.stop_quietly()


def test_without_a_data_dir_a_restart_starts_empty(tmp_path: Path) -> None:
    member = MemberProcess(free_port(), tmp_path).start()
    client = _client(member.address)
    try:
        m = client.get_map("m").blocking()
        m.put("k", "v")
        assert member.terminate() == 0
        member.start()
        wait_until(lambda: _reachable(m), timeout=30)
        assert m.get("k") is None
    finally:
        client.shutdown()
        member.stop_quietly()


def _reachable(m: object) -> bool:
    try:
        m.size()  # type: ignore[attr-defined]
        return True
    except Exception:
        return False


def test_asyncio_client_reconnects_after_kill9_and_its_listener_returns(tmp_path: Path) -> None:
    import asyncio

    from hazelcast.asyncio import HazelcastClient as AsyncClient

    data_dir = tmp_path / "data"
    member = MemberProcess(free_port(), tmp_path, "--snapshot-interval", "0.1", data_dir=data_dir).start()
    options = {"cluster_members": [member.address], "cluster_name": "dolphin", "cluster_connect_timeout": 30,
               "invocation_timeout": 30, **FAST_RECONNECT}

    async def eventually(probe, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = await probe()
                if result:
                    return result
            except Exception:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise AssertionError("condition not met")
            await asyncio.sleep(0.1)

    async def scenario() -> None:
        listener = await AsyncClient.create_and_start(**options)
        writer = await AsyncClient.create_and_start(**options)
        try:
            events: list[object] = []
            lmap = await listener.get_map("m")
            await lmap.add_entry_listener(include_value=True, added_func=events.append, updated_func=events.append)
            wmap = await writer.get_map("m")
            await wmap.put("k", "v1")

            async def snapshotted() -> bool:
                return bool(events) and _snapshot_has(data_dir, "m")

            await eventually(snapshotted)
            await asyncio.to_thread(member.kill9)
            await asyncio.to_thread(member.start)

            async def restored() -> object:
                return await wmap.get("k")

            assert await eventually(restored) == "v1"
            seen = len(events)

            async def fired() -> bool:
                await wmap.put("probe", str(time.monotonic()))
                return len(events) > seen

            await eventually(fired)
        finally:
            await listener.shutdown()
            await writer.shutdown()

    try:
        asyncio.run(scenario())
    finally:
        member.stop_quietly()


def test_real_cluster_loses_a_member_without_losing_data_and_it_rejoins(tmp_path: Path) -> None:
    """kill -9 one of three real members: its partitions' backups take over, clients keep working,
    listeners keep firing; the restarted member rejoins and the clients connect to it again."""
    from tests.hzcluster import RealCluster, require_real_cluster

    require_real_cluster()
    cluster = RealCluster(tmp_path / "hz", 3).start()
    options = {**FAST_RECONNECT, "invocation_timeout": 60}
    writer = cluster.client(**options)
    reader = cluster.client(smart_routing=False, **options)
    try:
        events = EventLog()
        reader.get_map("features").blocking().add_entry_listener(include_value=True, added_func=events,
                                                                 updated_func=events)
        features = writer.get_map("features").blocking()
        expected = {f"k{i}": f"v{i}" for i in range(300)}  # spread over the 271 partitions, so over all members
        features.put_all(expected)
        events.wait_for(300)
        victim = cluster.members[1]
        victim.kill9()
        assert features.get_all(list(expected)) == expected  # the backups were promoted: nothing lost
        features.put("after-kill", "1")
        wait_until(lambda: ("after-kill" in {e[1] for e in events.snapshot()}), timeout=60)
        wait_until(lambda: len(writer.cluster_service.get_members()) == 2, timeout=60)
        cluster.restart(victim)
        cluster.wait_size(3)
        wait_until(lambda: len(writer.cluster_service.get_members()) == 3, timeout=60)
        wait_until(lambda: len(reader.cluster_service.get_members()) == 3, timeout=60)
        assert features.size() == 301 and features.get_all(list(expected)) == expected
        features.put("after-rejoin", "2")
        wait_until(lambda: ("after-rejoin" in {e[1] for e in events.snapshot()}), timeout=60)
    finally:
        writer.shutdown()
        reader.shutdown()
        cluster.stop()
