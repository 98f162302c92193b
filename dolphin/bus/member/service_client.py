"""Client service (0x00xxxx): authentication, cluster view, proxies, ping, statistics.

Authentication checks the cluster name and, only when the member was given
credentials, the username and password (open-source Hazelcast ignores credentials;
spec G12). A refusal is an auth *status*, not an error, followed by closing the
socket, exactly as a real member does. The cluster view carries this member's fixed
UUID in both the members and the partitions view (G4), with every one of the 271
partitions owned by it.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from typing import TYPE_CHECKING

from dolphin.bus.member.config import PARTITION_COUNT
from dolphin.bus.member.errors import UnsupportedOperation
from dolphin.bus.member.protocol import Out, Request, empty_response, encode_uuid, pack_int

if TYPE_CHECKING:
    from dolphin.bus.member.member import Member
    from dolphin.bus.member.transport import Connection, Handler

log = logging.getLogger("dolphin.bus.member")

MAP_SERVICE = "hz:impl:mapService"

AUTHENTICATION = 0x000100
AUTHENTICATION_CUSTOM = 0x000200
ADD_CLUSTER_VIEW_LISTENER = 0x000300
MEMBERS_VIEW_EVENT = 0x000302
PARTITIONS_VIEW_EVENT = 0x000303
CREATE_PROXY = 0x000400
DESTROY_PROXY = 0x000500
GET_DISTRIBUTED_OBJECTS = 0x000800
PING = 0x000B00
STATISTICS = 0x000C00
LOCAL_BACKUP_LISTENER = 0x000F00

AUTHENTICATED = 0
CREDENTIALS_FAILED = 1
SERIALIZATION_VERSION_MISMATCH = 2
SERIALIZATION_VERSION = 1
_AUTH_FIXED = 1 + 17 + 1 + 4 + 17 + 1  # status, member uuid, ser. version, partitions, cluster id, failover


def _same_secret(given: str | None, expected: str | None) -> bool:
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class ClientService:
    """Handlers for the client-level messages; see the module docstring."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self._members_view: bytes = b""
        self._partitions_view: bytes = b""

    def register(self, table: dict[int, Handler]) -> None:
        table[AUTHENTICATION] = self.authenticate
        table[AUTHENTICATION_CUSTOM] = self.authenticate_custom
        table[ADD_CLUSTER_VIEW_LISTENER] = self.add_cluster_view_listener
        table[CREATE_PROXY] = self.create_proxy
        table[DESTROY_PROXY] = self.destroy_proxy
        table[GET_DISTRIBUTED_OBJECTS] = self.get_distributed_objects
        table[PING] = self.ping
        table[STATISTICS] = self.statistics
        table[LOCAL_BACKUP_LISTENER] = self.local_backup_listener

    def prepare_views(self) -> None:
        """Encode the two cluster-view events once the bound address is known (tail only)."""
        member = self._member
        host, port = member.advertised
        members = Out.event(MEMBERS_VIEW_EVENT, 0, 4).put_int(0, 1)
        members.begin().member_info(member.uuid, host, port, member.version_tuple).end()
        self._members_view = bytes(members.finish())
        partitions = Out.event(PARTITIONS_VIEW_EVENT, 0, 4).put_int(0, 1)
        partitions.begin()
        partitions.frame(b"".join(pack_int(p) for p in range(PARTITION_COUNT)))
        partitions.end()
        partitions.frame(encode_uuid(member.uuid))
        self._partitions_view = bytes(partitions.finish())

    @staticmethod
    def _with_correlation(message: bytes, correlation_id: int) -> bytes:
        buf = bytearray(message)
        buf[10:18] = correlation_id.to_bytes(8, "little", signed=True)
        return bytes(buf)

    # ------------------------------------------------------------ handlers
    def authenticate(self, conn: Connection, req: Request) -> None:
        member = self._member
        config = member.config
        client_uuid = req.fixed_uuid(0)
        serialization_version = req.fixed_byte(17)
        cluster_name = req.string()
        username = req.nullable_string()
        password = req.nullable_string()
        client_type = req.string()
        client_version = req.string()
        client_name = req.string()
        status = AUTHENTICATED
        if cluster_name != config.cluster_name:
            status = CREDENTIALS_FAILED
            log.warning("refused client %s from %s: cluster name %r does not match %r",
                        client_name, conn.peer, cluster_name, config.cluster_name)
        elif config.checks_credentials and not (
            _same_secret(username, config.username) & _same_secret(password, config.password)
        ):
            status = CREDENTIALS_FAILED
            log.warning("refused client %s from %s: wrong username or password", client_name, conn.peer)
        elif serialization_version != SERIALIZATION_VERSION:
            status = SERIALIZATION_VERSION_MISMATCH
            log.warning("refused client %s from %s: serialization version %s", client_name, conn.peer,
                        serialization_version)
        host, port = member.advertised
        out = Out.response(AUTHENTICATION + 1, req.correlation_id, _AUTH_FIXED)
        out.put_byte(0, status)
        out.put_uuid(1, member.uuid if status == AUTHENTICATED else None)
        out.put_byte(18, SERIALIZATION_VERSION)
        out.put_int(19, PARTITION_COUNT)
        out.put_uuid(23, member.cluster_id)
        out.put_bool(40, False)
        out.address(host, port)
        out.string(config.server_version)
        conn.send(out.finish())
        if status != AUTHENTICATED:
            member.counters["auth_refused"] += 1
            conn.close("authentication refused")
            return
        first = not conn.authenticated
        conn.authenticated = True
        conn.client_uuid = client_uuid
        conn.client_name = client_name
        conn.client_type = client_type
        if first:
            member.counters["clients_authenticated"] += 1
            log.info("client %s (%s %s) connected from %s", client_name, client_type, client_version, conn.peer)

    def authenticate_custom(self, conn: Connection, req: Request) -> None:
        """Token authentication is not offered: refuse it clearly and close."""
        member = self._member
        member.counters["auth_refused"] += 1
        log.warning("refused client from %s: token authentication is not supported", conn.peer)
        conn.send(member.error_bytes(req.correlation_id, UnsupportedOperation(
            "token authentication is not supported by the DOLPHIN dev member")))
        conn.close("token authentication attempted")

    def add_cluster_view_listener(self, conn: Connection, req: Request) -> None:
        corr = req.correlation_id
        conn.cluster_view_correlation = corr
        conn.send(empty_response(req.message_type, corr))
        conn.send(self._with_correlation(self._members_view, corr))
        conn.send(self._with_correlation(self._partitions_view, corr))

    def local_backup_listener(self, conn: Connection, req: Request) -> None:
        # backupAcks is always 0, so the backup event is never needed; only answer (G1, G3).
        conn.send(Out.response(req.message_type + 1, req.correlation_id, 17).put_uuid(0, uuid.uuid4()).finish())

    def create_proxy(self, conn: Connection, req: Request) -> None:
        name = req.string()
        service = req.string()
        if service != MAP_SERVICE:
            raise UnsupportedOperation(
                f"{service} is not supported by the DOLPHIN dev member (maps and CP AtomicReference/FencedLock are)")
        self._member.maps.ensure(name)
        conn.send(empty_response(req.message_type, req.correlation_id))

    def destroy_proxy(self, conn: Connection, req: Request) -> None:
        name = req.string()
        service = req.string()
        if service == MAP_SERVICE:
            self._member.maps.destroy(name)
        conn.send(empty_response(req.message_type, req.correlation_id))

    def get_distributed_objects(self, conn: Connection, req: Request) -> None:
        out = Out.response(req.message_type + 1, req.correlation_id)
        out.begin()
        for name in self._member.maps.names():
            out.begin().string(MAP_SERVICE).string(name).end()
        out.end()
        conn.send(out.finish())

    def ping(self, conn: Connection, req: Request) -> None:
        conn.send(empty_response(req.message_type, req.correlation_id))

    def statistics(self, conn: Connection, req: Request) -> None:
        conn.send(empty_response(req.message_type, req.correlation_id))
