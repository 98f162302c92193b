"""CP contract: AtomicReference and FencedLock through the official client, on the embedded member.

A community Hazelcast 5.5+ cluster has no CP subsystem at all (test_cp_real_cluster.py),
so these run on the embedded member only; they hold what an Enterprise CP group gives.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator

import hazelcast
import pytest
from hazelcast.errors import IllegalMonitorStateError
from hazelcast.protocol import RaftGroupId
from hazelcast.protocol.codec import (
    cp_session_create_session_codec,
    fenced_lock_get_lock_ownership_codec,
    fenced_lock_lock_codec,
    fenced_lock_unlock_codec,
)

from dolphin.bus.member import EmbeddedMember
from dolphin.bus.member.service_cp import group_id_of
from tests.integration.bus.support import PROJECT_ROOT, Driver, RawClient, to_inbound, wait_until

pytestmark = pytest.mark.embedded_only


def test_atomic_reference_operations(driver: Driver, name: str) -> None:
    ref = driver.atomic_reference(name)
    assert ref.get() is None
    assert ref.is_none() is True
    ref.set("APEX")
    assert ref.get() == "APEX"
    assert ref.contains("APEX") and not ref.contains("TURTLE")
    assert ref.compare_and_set("TURTLE", "X") is False
    assert ref.get() == "APEX"
    assert ref.compare_and_set("APEX", "STALKER") is True
    assert ref.get() == "STALKER"
    assert ref.get_and_set("TURTLE") == "STALKER"
    assert ref.compare_and_set("TURTLE", None) is True
    assert ref.get() is None
    assert ref.compare_and_set(None, {"posture": "APEX"}) is True
    assert ref.get() == {"posture": "APEX"}


def test_atomic_reference_is_shared_between_clients(driver: Driver, observer: Driver, name: str) -> None:
    driver.atomic_reference(name).set("v1")
    assert observer.atomic_reference(name).get() == "v1"
    assert observer.atomic_reference(name).compare_and_set("v1", "v2")
    assert driver.atomic_reference(name).get() == "v2"


def test_unsupported_cp_call_fails_at_once(driver: Driver, name: str) -> None:
    ref = driver.atomic_reference(name)
    with pytest.raises(hazelcast.errors.UnsupportedOperationError):
        ref.alter("any-function")  # server-side functions are not supported


@pytest.fixture
def threaded(member: EmbeddedMember) -> Iterator[hazelcast.HazelcastClient]:
    client = hazelcast.HazelcastClient(cluster_members=[member.address], cluster_name="dolphin",
                                       cluster_connect_timeout=10)
    try:
        yield client
    finally:
        client.shutdown()


def test_fenced_lock_reentrancy_ownership_and_fences(threaded: hazelcast.HazelcastClient, name: str) -> None:
    lock = threaded.cp_subsystem.get_lock(name).blocking()
    f1 = lock.lock()
    assert lock.lock() == f1  # reentrant: same fence
    assert lock.is_locked() and lock.is_locked_by_current_thread() and lock.get_lock_count() == 2
    lock.unlock()
    assert lock.is_locked()
    lock.unlock()
    assert not lock.is_locked() and lock.get_lock_count() == 0
    f2 = lock.try_lock()
    assert f2 > f1  # a new acquisition gets a larger fence
    lock.unlock()


def test_fenced_lock_excludes_other_threads(threaded: hazelcast.HazelcastClient, name: str) -> None:
    lock = threaded.cp_subsystem.get_lock(name).blocking()
    lock.lock()
    results: dict[str, object] = {}

    def other() -> None:
        results["try"] = lock.try_lock()
        results["timed"] = lock.try_lock(timeout=0.2)
        try:
            lock.unlock()
        except IllegalMonitorStateError as exc:
            results["unlock"] = exc
        results["is_mine"] = lock.is_locked_by_current_thread()

    t = threading.Thread(target=other)
    t.start()
    t.join(30)
    assert results["try"] == 0 and results["timed"] == 0
    assert isinstance(results["unlock"], IllegalMonitorStateError)
    assert results["is_mine"] is False
    lock.unlock()

    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(lock.try_lock(timeout=30)))
    lock.lock()
    waiter.start()
    wait_until(lambda: threaded.cp_subsystem.get_lock(name).blocking().is_locked())
    lock.unlock()  # the parked waiter gets it
    waiter.join(30)
    assert got and got[0] > 0


def test_fenced_lock_with_the_asyncio_client(member: EmbeddedMember, name: str) -> None:
    d = Driver("asyncio", True, member.address)

    async def scenario() -> tuple[int, int, int, int]:
        lock = await d.client.cp_subsystem.get_lock(name)
        f1 = await lock.lock()
        f2 = await lock.lock()
        count = await lock.get_lock_count()
        await lock.unlock()
        await lock.unlock()
        f3 = await lock.try_lock()
        await lock.unlock()
        return f1, f2, count, f3

    try:
        f1, f2, count, f3 = d.run(scenario())
    finally:
        d.shutdown()
    assert f1 == f2 and count == 2 and f3 > f1


_WORKER = textwrap.dedent("""
    import sys, threading, hazelcast
    address, map_name, lock_name, iterations = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = hazelcast.HazelcastClient(cluster_members=[address], cluster_name="dolphin", cluster_connect_timeout=10)
    lock = client.cp_subsystem.get_lock(lock_name).blocking()
    m = client.get_map(map_name).blocking()
    violations = []
    lock.lock(); lock.unlock()  # create the CP session before threads race to (client race, docs/bus.md)

    def work(tag):
        for _ in range(iterations):
            lock.lock()
            try:
                if m.put("holder", tag) is not None:
                    violations.append(tag)
                m.set("counter", (m.get("counter") or 0) + 1)
                if m.remove("holder") != tag:
                    violations.append(tag)
            finally:
                lock.unlock()

    print("ready", flush=True)
    sys.stdin.readline()
    threads = [threading.Thread(target=work, args=(f"{sys.argv[5]}-{i}",)) for i in range(5)]
    for t in threads: t.start()
    for t in threads: t.join()
    print("violations", len(violations), flush=True)
    client.shutdown()
""")


def run_worker(address: str, map_name: str, lock_name: str, iterations: int, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _WORKER, address, map_name, lock_name, str(iterations), tag],
                            cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_fenced_lock_mutual_exclusion_10_threads_in_2_processes(member: EmbeddedMember, name: str) -> None:
    iterations = 20
    map_name, lock_name = f"{name}-m", f"{name}-lock"
    proc = run_worker(member.address, map_name, lock_name, iterations, "remote")
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        client = hazelcast.HazelcastClient(cluster_members=[member.address], cluster_name="dolphin",
                                           cluster_connect_timeout=10)
        lock = client.cp_subsystem.get_lock(lock_name).blocking()
        m = client.get_map(map_name).blocking()
        violations: list[str] = []
        lock.lock()  # create the CP session up front: concurrent first use races in the client (docs/bus.md)
        lock.unlock()

        def work(tag: str) -> None:
            for _ in range(iterations):
                lock.lock()
                try:
                    if m.put("holder", tag) is not None:
                        violations.append(tag)
                    m.set("counter", (m.get("counter") or 0) + 1)
                    if m.remove("holder") != tag:
                        violations.append(tag)
                finally:
                    lock.unlock()

        threads = [threading.Thread(target=work, args=(f"local-{i}",)) for i in range(5)]
        proc.stdin.write("go\n")
        proc.stdin.flush()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        out = proc.stdout.readline().split()
        assert proc.wait(60) == 0
        assert out == ["violations", "0"]
        assert violations == []
        assert m.get("counter") == 10 * iterations  # no lost update: the lock really excluded
        client.shutdown()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


_HOLDER = textwrap.dedent("""
    import sys, time, hazelcast
    client = hazelcast.HazelcastClient(cluster_members=[sys.argv[1]], cluster_name="dolphin", cluster_connect_timeout=10)
    lock = client.cp_subsystem.get_lock(sys.argv[2]).blocking()
    print("locked", lock.lock(), flush=True)
    time.sleep(600)
""")


def test_session_expiry_releases_a_lock() -> None:
    """A holder killed with SIGKILL stops heartbeating; its session expires and the lock is freed."""
    with EmbeddedMember(session_ttl_s=4.0, session_heartbeat_s=0.5) as m:  # TTL ≫ heartbeat: no flakes under load
        lock_name = f"l{uuid.uuid4().hex[:8]}"
        holder = subprocess.Popen([sys.executable, "-c", _HOLDER, m.address, lock_name], cwd=PROJECT_ROOT,
                                  stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None
        try:
            words = holder.stdout.readline().split()
            assert words[0] == "locked"
            holder_fence = int(words[1])
            client = hazelcast.HazelcastClient(cluster_members=[m.address], cluster_name="dolphin",
                                               cluster_connect_timeout=10)
            lock = client.cp_subsystem.get_lock(lock_name).blocking()
            assert lock.try_lock() == 0  # held by the other process
            holder.kill()
            holder.wait(10)
            fence = lock.try_lock(timeout=60)  # granted once the dead holder's session expires
            assert fence > holder_fence
            assert m.call(lambda mem: mem.counters["sessions_expired"]) >= 1
            lock.unlock()
            client.shutdown()
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait(10)


def test_retried_lock_and_unlock_invocations_are_not_counted_twice(member: EmbeddedMember, name: str) -> None:
    """Same invocation uid twice (what a client retry sends) acquires or releases once."""
    raw = RawClient(member.address)
    try:
        group = RaftGroupId("default", 0, group_id_of("default"))
        session = cp_session_create_session_codec.decode_response(
            to_inbound(raw.call(cp_session_create_session_codec.encode_request(group, "raw"))))["session_id"]
        uid = uuid.uuid4()
        fences = [fenced_lock_lock_codec.decode_response(to_inbound(raw.call(
            fenced_lock_lock_codec.encode_request(group, name, session, 7, uid)))) for _ in range(2)]
        assert fences[0] == fences[1] > 0
        ownership = fenced_lock_get_lock_ownership_codec.decode_response(
            to_inbound(raw.call(fenced_lock_get_lock_ownership_codec.encode_request(group, name))))
        assert ownership["lock_count"] == 1 and ownership["session_id"] == session and ownership["thread_id"] == 7
        release = uuid.uuid4()
        answers = [fenced_lock_unlock_codec.decode_response(to_inbound(raw.call(
            fenced_lock_unlock_codec.encode_request(group, name, session, 7, release)))) for _ in range(2)]
        assert answers == [False, False]  # the retry neither fails nor releases twice
    finally:
        raw.close()


def test_closing_a_client_closes_its_session_and_frees_its_locks(member: EmbeddedMember, name: str) -> None:
    holder = hazelcast.HazelcastClient(cluster_members=[member.address], cluster_name="dolphin",
                                       cluster_connect_timeout=10)
    holder.cp_subsystem.get_lock(name).blocking().lock()
    sessions = member.call(lambda m: len(m.cp.sessions))
    holder.shutdown()  # sends CloseSession for its CP session
    assert member.call(lambda m: len(m.cp.sessions)) == sessions - 1
    other = hazelcast.HazelcastClient(cluster_members=[member.address], cluster_name="dolphin",
                                      cluster_connect_timeout=10)
    try:
        lock = other.cp_subsystem.get_lock(name).blocking()
        assert lock.try_lock() > 0  # free at once, no waiting for a TTL
        lock.unlock()
    finally:
        other.shutdown()


def test_custom_cp_groups_hold_separate_objects(driver: Driver, name: str) -> None:
    driver.atomic_reference(name).set("default-group")
    driver.atomic_reference(f"{name}@acb").set("acb-group")
    assert driver.atomic_reference(name).get() == "default-group"
    assert driver.atomic_reference(f"{name}@acb").get() == "acb-group"
