"""Refusals and bad input: wrong cluster/credentials, unsupported ops, broken streams."""

from __future__ import annotations

import socket
import struct
import threading

import hazelcast
import pytest
from hazelcast.errors import IllegalStateError, UnsupportedOperationError
from hazelcast.protocol.codec import client_ping_codec, map_get_codec
from hazelcast.serialization.data import Data

from dolphin.bus import BusSettings, BusUnavailableError, connect
from dolphin.bus.cp_health import wait_future
from dolphin.bus.member import EmbeddedMember
from tests.integration.bus.support import (
    Driver,
    RawClient,
    auth_request_bytes,
    is_closed_by_peer,
    raw_connect,
    wait_until,
)


def _counter(member: EmbeddedMember, name: str) -> int:
    return member.call(lambda m: m.counters[name])


def test_wrong_cluster_name_is_refused(member: EmbeddedMember) -> None:
    before = _counter(member, "auth_refused")
    with pytest.raises(IllegalStateError):
        hazelcast.HazelcastClient(cluster_members=[member.address], cluster_name="not-dolphin",
                                  cluster_connect_timeout=0.5)
    assert _counter(member, "auth_refused") > before


def test_factory_reports_an_unreachable_bus_as_an_operator_error(member: EmbeddedMember) -> None:
    settings = BusSettings(members=(member.address,), cluster_name="wrong", connect_timeout_s=0.5, embedded=False)
    with pytest.raises(BusUnavailableError) as info:
        connect(settings)
    assert info.value.exit_code == 13  # it answered and refused the cluster name: BusCredentialsError
    assert member.address in str(info.value) and "wrong" in str(info.value) and "refused" in str(info.value)


def test_credentials_are_checked_when_configured() -> None:
    with EmbeddedMember(username="ops", password="s3cret-pw") as m:
        for creds in ({}, {"creds_username": "ops", "creds_password": "wrong"},
                      {"creds_username": "other", "creds_password": "s3cret-pw"}):
            with pytest.raises(IllegalStateError):
                hazelcast.HazelcastClient(cluster_members=[m.address], cluster_name="dolphin",
                                          cluster_connect_timeout=0.5, **creds)
        ok = hazelcast.HazelcastClient(cluster_members=[m.address], cluster_name="dolphin", cluster_connect_timeout=5,
                                       creds_username="ops", creds_password="s3cret-pw")
        ok.get_map("m").blocking().put("k", "v")
        ok.shutdown()
        assert m.call(lambda mem: mem.counters["auth_refused"]) >= 3  # the client retries within its timeout


@pytest.mark.embedded_only
def test_unsupported_operation_is_answered_at_once_and_named(driver: Driver, name: str) -> None:
    m = driver.map(name)
    with pytest.raises(UnsupportedOperationError, match=r"Map\.Lock is not supported by the DOLPHIN embedded member"):
        m.lock("k")
    with pytest.raises(UnsupportedOperationError, match=r"Map\.ReplaceIfSame is not supported"):
        m.replace_if_same("k", "a", "b")
    m.put("k", "still-works")
    assert m.get("k") == "still-works"


@pytest.mark.parametrize("kind", ["threaded", "asyncio"])
def test_a_value_over_the_frame_cap_is_refused_by_name_and_the_client_stays(kind: str, name: str) -> None:
    """Not a bare TargetDisconnectedError: the error names the operation and the cap; the connection lives."""
    from hazelcast.errors import IllegalArgumentError

    with EmbeddedMember(max_frame_bytes=1 << 20) as m:
        d = Driver(kind, True, m.address)
        try:
            imap = d.map(name)
            with pytest.raises(IllegalArgumentError, match=r"Map\.Put: the request is [\d,]+ bytes, over .* frame cap "
                                                           r"of 1,048,576 bytes \(1 MiB\)"):
                imap.put("big", "x" * (2 << 20))
            with pytest.raises(IllegalArgumentError, match=r"Map\.Set: .* frame cap"):
                imap.set("big", "y" * (3 << 20))
            assert imap.get("big") is None and imap.size() == 0  # nothing half-stored
            imap.put("small", "fine")  # same connection, still served
            assert imap.get("small") == "fine"
            assert m.call(lambda mem: (mem.counters["requests_too_large"], mem.counters["protocol_violations"])) == (2, 0)
        finally:
            d.shutdown()


def test_without_cp_every_cp_call_is_refused_by_name() -> None:
    """`--no-cp` answers like a community Hazelcast cluster: UnsupportedOperation, at once, naming the call."""
    with EmbeddedMember(cp_enabled=False) as m:
        d = Driver("threaded", True, m.address)
        try:
            with pytest.raises(UnsupportedOperationError, match=r"CPGroup\.CreateCPGroup: the CP subsystem is off"):
                d.atomic_reference("DOLPHIN_SAFETY")
        finally:
            d.shutdown()


def test_unsupported_operation_never_leaves_the_caller_waiting(member: EmbeddedMember, name: str) -> None:
    client = hazelcast.HazelcastClient(cluster_members=[member.address], cluster_name="dolphin",
                                       cluster_connect_timeout=5)
    try:
        future = client.get_map(name).evict_all()
        with pytest.raises(UnsupportedOperationError):
            wait_future(future, 10.0)  # an unanswered request would hang here until the guard
        with pytest.raises(UnsupportedOperationError):
            client.get_queue(name)  # unsupported services fail at proxy creation
    finally:
        client.shutdown()


def _healthy(driver: Driver, name: str) -> None:
    m = driver.map(name)
    m.put("alive", "yes")
    assert m.get("alive") == "yes"


@pytest.fixture
def bystander(member: EmbeddedMember):  # type: ignore[no-untyped-def]
    d = Driver("threaded", True, member.address)
    yield d
    d.shutdown()


def test_garbage_bytes_close_only_that_connection(member: EmbeddedMember, bystander: Driver, name: str) -> None:
    before = _counter(member, "protocol_violations")
    sock = raw_connect(member.address)
    sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert is_closed_by_peer(sock)
    sock.close()
    assert _counter(member, "protocol_violations") == before + 1
    _healthy(bystander, name)


def test_truncated_frame_closes_only_that_connection(member: EmbeddedMember, bystander: Driver, name: str) -> None:
    before = _counter(member, "protocol_violations")
    request = auth_request_bytes()
    sock = raw_connect(member.address)
    sock.sendall(b"CP2" + request[: len(request) // 2])
    sock.shutdown(socket.SHUT_WR)  # the peer ends inside a frame
    assert is_closed_by_peer(sock)
    sock.close()
    wait_until(lambda: _counter(member, "protocol_violations") == before + 1)
    _healthy(bystander, name)


@pytest.mark.parametrize("payload", [
    struct.pack("<iH", 3, 0xC000),  # a frame length shorter than its own header
    struct.pack("<iH", 1 << 30, 0xC000),  # a frame larger than any the member accepts
], ids=["length-too-small", "length-too-large"])
def test_impossible_frame_length_closes_the_connection(member: EmbeddedMember, bystander: Driver, name: str,
                                                       payload: bytes) -> None:
    sock = raw_connect(member.address)
    sock.sendall(b"CP2" + payload)
    assert is_closed_by_peer(sock)
    sock.close()
    _healthy(bystander, name)


def test_request_before_authentication_closes_the_connection(member: EmbeddedMember) -> None:
    ping = client_ping_codec.encode_request()
    ping.set_correlation_id(1)
    sock = raw_connect(member.address)
    sock.sendall(b"CP2" + bytes(ping.buf))
    assert is_closed_by_peer(sock)
    sock.close()


def test_malformed_request_is_answered_and_the_connection_stays(member: EmbeddedMember, name: str) -> None:
    raw = RawClient(member.address)
    try:
        assert raw.auth[0][1][13] == 0  # status AUTHENTICATED
        request = map_get_codec.encode_request(name, Data(bytes(8)), 1)
        # keep the initial frame only: a Map.Get without its name and key frames
        length = struct.unpack_from("<i", request.buf, 0)[0]
        del request.buf[length:]
        struct.pack_into("<H", request.buf, 4, 0xC000 | 0x2000)
        response = raw.call(request)
        assert struct.unpack_from("<i", response[0][1], 0)[0] == 0  # EXCEPTION
        assert b"IllegalArgumentException" in b"".join(body for _, body in response)
        ping = client_ping_codec.encode_request()
        assert struct.unpack_from("<i", raw.call(ping)[0][1], 0)[0] == 0x000B01  # still served
    finally:
        raw.close()


def test_many_bad_connections_in_parallel_leave_the_member_serving(member: EmbeddedMember, bystander: Driver,
                                                                   name: str) -> None:
    def attack(i: int) -> None:
        sock = raw_connect(member.address)
        sock.sendall([b"XXXX", b"CP2\xff\xff\xff\x7f\x00\x00", b"CP2" + auth_request_bytes()[:10]][i % 3])
        if i % 3 == 2:
            sock.shutdown(socket.SHUT_WR)
        is_closed_by_peer(sock)
        sock.close()

    threads = [threading.Thread(target=attack, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    _healthy(bystander, name)
    raw = RawClient(member.address)  # and new clients still get in
    try:
        assert raw.auth[0][1][13] == 0
        read_ok = raw.call(client_ping_codec.encode_request())
        assert read_ok
    finally:
        raw.close()
