"""The member's codecs against the pinned official client's own codecs (no sockets).

Requests are encoded with the client's `encode_request` and read with the member's
`Request`; member output is read with the client's decoders. A client upgrade that
moves a field or renumbers a message fails here, loudly.
"""

from __future__ import annotations

import struct
import uuid

import hazelcast
import pytest
from hazelcast.core import MemberInfo
from hazelcast.errors import IllegalMonitorStateError, SessionExpiredError, UnsupportedOperationError
from hazelcast.protocol import RaftGroupId
from hazelcast.protocol.builtin import EntryListCodec, ListMultiFrameCodec
from hazelcast.protocol.client_message import Frame, InboundMessage
from hazelcast.protocol.codec import (
    atomic_ref_compare_and_set_codec as ref_cas,
)
from hazelcast.protocol.codec import (
    client_add_cluster_view_listener_codec,
    client_authentication_codec,
    client_create_proxy_codec,
    fenced_lock_try_lock_codec,
    map_add_entry_listener_codec,
    map_add_entry_listener_to_key_codec,
    map_put_codec,
)
from hazelcast.protocol.codec.custom.member_info_codec import MemberInfoCodec
from hazelcast.protocol.codec.custom.raft_group_id_codec import RaftGroupIdCodec
from hazelcast.serialization.data import Data

import dolphin.bus.member.service_client as sc
import dolphin.bus.member.service_cp as scp
import dolphin.bus.member.service_map as sm
from dolphin.bus import PINNED_CLIENT_VERSION
from dolphin.bus.member.errors import IllegalArgument, IllegalMonitorState, SessionExpired, UnsupportedOperation
from dolphin.bus.member.protocol import FrameAssembler, Out, Request, error_response


def test_client_version_is_the_pinned_one() -> None:
    assert hazelcast.__version__ == PINNED_CLIENT_VERSION, (
        f"hazelcast-python-client {hazelcast.__version__} is installed but the member was verified against "
        f"{PINNED_CLIENT_VERSION}: rerun tests/integration/bus and update the pin deliberately")


def _module(name: str):  # type: ignore[no-untyped-def]
    import importlib

    return importlib.import_module(f"hazelcast.protocol.codec.{name}")


MESSAGE_TYPES = [
    (sc.AUTHENTICATION, "client_authentication_codec"),
    (sc.ADD_CLUSTER_VIEW_LISTENER, "client_add_cluster_view_listener_codec"),
    (sc.CREATE_PROXY, "client_create_proxy_codec"),
    (sc.DESTROY_PROXY, "client_destroy_proxy_codec"),
    (sc.GET_DISTRIBUTED_OBJECTS, "client_get_distributed_objects_codec"),
    (sc.PING, "client_ping_codec"),
    (sc.STATISTICS, "client_statistics_codec"),
    (sc.LOCAL_BACKUP_LISTENER, "client_local_backup_listener_codec"),
    (sm.PUT, "map_put_codec"), (sm.GET, "map_get_codec"), (sm.REMOVE, "map_remove_codec"),
    (sm.CONTAINS_KEY, "map_contains_key_codec"), (sm.DELETE, "map_delete_codec"), (sm.SET, "map_set_codec"),
    (sm.ADD_ENTRY_LISTENER_TO_KEY, "map_add_entry_listener_to_key_codec"),
    (sm.ADD_ENTRY_LISTENER, "map_add_entry_listener_codec"),
    (sm.REMOVE_ENTRY_LISTENER, "map_remove_entry_listener_codec"),
    (sm.KEY_SET, "map_key_set_codec"), (sm.GET_ALL, "map_get_all_codec"), (sm.VALUES, "map_values_codec"),
    (sm.ENTRY_SET, "map_entry_set_codec"), (sm.SIZE, "map_size_codec"), (sm.PUT_ALL, "map_put_all_codec"),
    (sm.CLEAR, "map_clear_codec"),
    (sm.PUT_IF_ABSENT, "map_put_if_absent_codec"), (sm.IS_EMPTY, "map_is_empty_codec"),
    (sm.CONTAINS_VALUE, "map_contains_value_codec"),
    (sm.ADD_NEAR_CACHE_INVALIDATION_LISTENER, "map_add_near_cache_invalidation_listener_codec"),
    (scp.CREATE_CP_GROUP, "cp_group_create_cp_group_codec"),
    (scp.DESTROY_CP_OBJECT, "cp_group_destroy_cp_object_codec"),
    (scp.CREATE_SESSION, "cp_session_create_session_codec"),
    (scp.CLOSE_SESSION, "cp_session_close_session_codec"),
    (scp.HEARTBEAT_SESSION, "cp_session_heartbeat_session_codec"),
    (scp.GENERATE_THREAD_ID, "cp_session_generate_thread_id_codec"),
    (scp.ATOMIC_REF_COMPARE_AND_SET, "atomic_ref_compare_and_set_codec"),
    (scp.ATOMIC_REF_CONTAINS, "atomic_ref_contains_codec"), (scp.ATOMIC_REF_GET, "atomic_ref_get_codec"),
    (scp.ATOMIC_REF_SET, "atomic_ref_set_codec"),
    (scp.LOCK, "fenced_lock_lock_codec"), (scp.TRY_LOCK, "fenced_lock_try_lock_codec"),
    (scp.UNLOCK, "fenced_lock_unlock_codec"), (scp.GET_LOCK_OWNERSHIP, "fenced_lock_get_lock_ownership_codec"),
]


@pytest.mark.parametrize(("ours", "codec_name"), MESSAGE_TYPES, ids=[n for _, n in MESSAGE_TYPES])
def test_message_types_match_the_client(ours: int, codec_name: str) -> None:
    codec = _module(codec_name)
    assert codec._REQUEST_MESSAGE_TYPE == ours
    assert codec._RESPONSE_MESSAGE_TYPE == ours + 1


# client encode offsets include the 6-byte frame header and the 16-byte request header
FIXED_OFFSETS = [
    ("map_put_codec", "_REQUEST_TTL_OFFSET", 8),
    ("map_put_if_absent_codec", "_REQUEST_TTL_OFFSET", 8),
    ("map_add_near_cache_invalidation_listener_codec", "_REQUEST_LISTENER_FLAGS_OFFSET", 0),
    ("map_set_codec", "_REQUEST_TTL_OFFSET", 8),
    ("map_add_entry_listener_codec", "_REQUEST_LISTENER_FLAGS_OFFSET", 1),
    ("map_add_entry_listener_to_key_codec", "_REQUEST_LISTENER_FLAGS_OFFSET", 1),
    ("map_remove_entry_listener_codec", "_REQUEST_REGISTRATION_ID_OFFSET", 0),
    ("atomic_ref_set_codec", "_REQUEST_RETURN_OLD_VALUE_OFFSET", 0),
    ("fenced_lock_lock_codec", "_REQUEST_SESSION_ID_OFFSET", 0),
    ("fenced_lock_lock_codec", "_REQUEST_THREAD_ID_OFFSET", 8),
    ("fenced_lock_lock_codec", "_REQUEST_INVOCATION_UID_OFFSET", 16),
    ("fenced_lock_try_lock_codec", "_REQUEST_TIMEOUT_MS_OFFSET", 33),
    ("fenced_lock_unlock_codec", "_REQUEST_INVOCATION_UID_OFFSET", 16),
    ("cp_session_close_session_codec", "_REQUEST_SESSION_ID_OFFSET", 0),
    ("cp_session_heartbeat_session_codec", "_REQUEST_SESSION_ID_OFFSET", 0),
    ("client_authentication_codec", "_REQUEST_SERIALIZATION_VERSION_OFFSET", 17),
]


@pytest.mark.parametrize(("codec_name", "constant", "ours"), FIXED_OFFSETS,
                         ids=[f"{c}.{k}" for c, k, _ in FIXED_OFFSETS])
def test_request_field_offsets_match_the_client(codec_name: str, constant: str, ours: int) -> None:
    assert getattr(_module(codec_name), constant) - 22 == ours


RESPONSE_OFFSETS = [
    ("client_authentication_codec", "_RESPONSE_PARTITION_COUNT_OFFSET", 19),
    ("client_authentication_codec", "_RESPONSE_CLUSTER_ID_OFFSET", 23),
    ("client_authentication_codec", "_RESPONSE_FAILOVER_SUPPORTED_OFFSET", 40),
    ("cp_session_create_session_codec", "_RESPONSE_HEARTBEAT_MILLIS_OFFSET", 16),
    ("fenced_lock_get_lock_ownership_codec", "_RESPONSE_THREAD_ID_OFFSET", 20),
]


@pytest.mark.parametrize(("codec_name", "constant", "ours"), RESPONSE_OFFSETS,
                         ids=[f"{c}.{k}" for c, k, _ in RESPONSE_OFFSETS])
def test_response_field_offsets_match_the_client(codec_name: str, constant: str, ours: int) -> None:
    assert getattr(_module(codec_name), constant) - 13 == ours  # decode offsets exclude the frame header


# ---------------------------------------------------------------- helpers
def _request(outbound) -> Request:  # type: ignore[no-untyped-def]
    outbound.set_correlation_id(99)
    messages = FrameAssembler(1 << 20).feed(bytes(outbound.buf))
    assert len(messages) == 1
    return Request(messages[0])


def _inbound(data: bytes | bytearray) -> InboundMessage:
    frames = []
    pos = 0
    while pos < len(data):
        length, flags = struct.unpack_from("<iH", data, pos)
        frames.append(Frame(bytearray(data[pos + 6:pos + length]), flags))
        pos += length
    message = InboundMessage(frames[0])
    for frame in frames[1:]:
        message.add_frame(frame)
    assert frames[-1].is_final_frame()
    return message


# ---------------------------------------------------------------- requests in
def test_authentication_request_fields() -> None:
    client_uuid = uuid.uuid4()
    req = _request(client_authentication_codec.encode_request("dolphin", "ops", "pw", client_uuid, "PYH", 1, "5.7.0",
                                                              "svc", ["a", "b"]))
    assert (req.message_type, req.correlation_id) == (sc.AUTHENTICATION, 99)
    assert req.fixed_uuid(0) == client_uuid and req.fixed_byte(17) == 1
    assert [req.string(), req.nullable_string(), req.nullable_string(), req.string(), req.string(), req.string()] == \
        ["dolphin", "ops", "pw", "PYH", "5.7.0", "svc"]
    assert req.list_string() == ["a", "b"]


def test_map_put_and_listener_requests() -> None:
    key, value = Data(b"\x00" * 4 + b"\xff\xff\xff\xf5" + b"\x00\x00\x00\x01a"), Data(b"\x00" * 8 + b"v")
    req = _request(map_put_codec.encode_request("m", key, value, 123, 5000))
    assert (req.fixed_long(0), req.fixed_long(8)) == (123, 5000)
    assert (req.string(), req.data(), req.data()) == ("m", key.buffer, value.buffer)
    req = _request(map_add_entry_listener_to_key_codec.encode_request("m", key, True, 1 | 4, True))
    assert (req.fixed_bool(0), req.fixed_int(1), req.fixed_bool(5)) == (True, 5, True)
    assert (req.string(), req.data()) == ("m", key.buffer)
    req = _request(map_add_entry_listener_codec.encode_request("m", False, 2, False))
    assert (req.fixed_bool(0), req.fixed_int(1), req.string()) == (False, 2, "m")


def test_cp_requests() -> None:
    group = RaftGroupId("default", 0, scp.group_id_of("default"))
    uid = uuid.uuid4()
    req = _request(fenced_lock_try_lock_codec.encode_request(group, "lock", 11, 22, uid, 1500))
    assert (req.fixed_long(0), req.fixed_long(8), req.fixed_uuid(16), req.fixed_long(33)) == (11, 22, uid, 1500)
    assert req.raft_group_id() == ("default", 0, scp.group_id_of("default"))
    assert req.string() == "lock"
    req = _request(ref_cas.encode_request(group, "ref", None, Data(b"\x00" * 8 + b"x")))
    req.raft_group_id()
    assert (req.string(), req.nullable_data(), req.nullable_data()) == ("ref", None, b"\x00" * 8 + b"x")


def test_group_names_follow_hazelcast_rules() -> None:
    assert scp.group_name_for_proxy("DOLPHIN_SAFETY") == "default"
    assert scp.group_name_for_proxy("x@Default") == "default"
    assert scp.group_name_for_proxy("x@acb") == "acb"
    with pytest.raises(IllegalArgument, match="METADATA"):
        scp.group_name_for_proxy("x@metadata")


# ---------------------------------------------------------------- responses out
def test_error_responses_become_the_right_client_errors() -> None:
    from hazelcast.errors import create_error_from_message

    for ours, theirs in ((UnsupportedOperation("nope"), UnsupportedOperationError),
                         (IllegalMonitorState("not owner"), IllegalMonitorStateError),
                         (SessionExpired(None), SessionExpiredError)):
        message = _inbound(error_response(7, ours.code, ours.class_name, ours.message))
        assert message.get_message_type() == 0 and message.get_correlation_id() == 7
        error = create_error_from_message(message)
        assert isinstance(error, theirs)
        assert ours.class_name in str(error)


def test_backup_acks_byte_is_zero() -> None:
    """G1: a non-zero byte makes the client wait for backups that never come."""
    message = _inbound(Out.response(0x010201, 5).null().finish())
    assert message.get_number_of_backup_acks() == 0


def test_cluster_view_and_custom_types_decode_with_the_client() -> None:
    member_uuid = uuid.uuid4()
    out = Out.event(sc.MEMBERS_VIEW_EVENT, 3, 4).put_int(0, 1)
    out.begin().member_info(member_uuid, "127.0.0.1", 5701, (5, 5, 0)).end()
    seen: list[tuple[int, list[MemberInfo]]] = []
    client_add_cluster_view_listener_codec.handle(_inbound(out.finish()), lambda v, m: seen.append((v, m)))
    version, members = seen[0]
    assert version == 1 and members[0].uuid == member_uuid
    assert (members[0].address.host, members[0].address.port) == ("127.0.0.1", 5701)
    assert (members[0].version.major, members[0].version.minor, members[0].version.patch) == (5, 5, 0)
    message = _inbound(Out.response(0x1E0101, 1).raft_group_id("default", 0, 42).finish())
    message.next_frame()
    assert RaftGroupIdCodec.decode(message) == RaftGroupId("default", 0, 42)
    assert MemberInfoCodec is not None


def test_list_and_entry_list_responses_decode_with_the_client() -> None:
    from hazelcast.protocol.builtin import DataCodec

    message = _inbound(Out.response(0x012201, 1).list_data([b"k1", b"k2"]).finish())
    message.next_frame()
    assert [d.buffer for d in ListMultiFrameCodec.decode(message, DataCodec.decode)] == [b"k1", b"k2"]
    message = _inbound(Out.response(0x012501, 1).entry_list_data([(b"k", b"v")]).finish())
    message.next_frame()
    assert [(k.buffer, v.buffer) for k, v in EntryListCodec.decode(message, DataCodec.decode, DataCodec.decode)] \
        == [(b"k", b"v")]


def test_entry_events_decode_with_the_client() -> None:
    """The member builds events by hand for speed; the client's own handler must read them."""
    from hazelcast.serialization.data import Data as ClientData

    head = sm._ENTRY_EVENT_HEAD.pack(sm._ENTRY_EVENT_SIZE, 0xC000 | 0x200, 0x011902, 5, -1, sm.UPDATED,
                                     b"\x00" + bytes(16), 1)
    tail = sm._frame(b"key") + sm._frame(b"new") + sm._frame(b"old") + sm._NULL_FINAL
    seen: list[tuple] = []
    map_add_entry_listener_codec.handle(_inbound(head + tail), lambda *args: seen.append(args))
    key, value, old, merging, event_type, _uuid, affected = seen[0]
    assert isinstance(key, ClientData) and (key.buffer, value.buffer, old.buffer) == (b"key", b"new", b"old")
    assert (merging, event_type, affected) == (None, sm.UPDATED, 1)


def test_proxy_request_round_trip() -> None:
    req = _request(client_create_proxy_codec.encode_request("DOLPHIN_FEATURES", sc.MAP_SERVICE))
    assert (req.string(), req.string()) == ("DOLPHIN_FEATURES", sc.MAP_SERVICE)


def test_message_names_match_the_client_codecs() -> None:
    """Every request type the client can send has its name, so an unsupported call is named in its error."""
    import pkgutil

    import hazelcast.protocol.codec as codecs

    from dolphin.bus.member.message_names import MESSAGE_NAMES, operation_name

    sent = {}
    for info in pkgutil.iter_modules(codecs.__path__):
        mtype = getattr(_module(info.name), "_REQUEST_MESSAGE_TYPE", None) if info.name.endswith("_codec") else None
        if mtype is not None:
            sent[mtype] = info.name
    assert set(MESSAGE_NAMES) == set(sent)
    for mtype, module in sent.items():  # Map.PutIfAbsent <-> map_put_if_absent_codec
        assert MESSAGE_NAMES[mtype].replace(".", "").lower() == module[: -len("_codec")].replace("_", ""), module
    assert operation_name(0x010E00) == "Map.PutIfAbsent"
    assert operation_name(0x7F0100) == "message type 0x7f0100"
