"""The member: wires transport, services and persistence on one asyncio loop.

Every request is answered, always (spec G3): a handler's `HzError` becomes an error
response, an unknown message type becomes UnsupportedOperation at once, and a member
bug becomes a generic HazelcastException plus one logged traceback. Only a broken
stream (`ProtocolViolation`) is not answered; its connection is closed instead.

A periodic tick drives the TTL sweeper, CP session expiry, the idle-client reaper and
snapshots. All state is confined to the loop, so nothing needs a lock.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections import Counter

from dolphin.bus.member.config import MemberConfig
from dolphin.bus.member.errors import (
    HzError,
    InstanceNotActive,
    ProtocolViolation,
    RequestTooLarge,
    UnsupportedOperation,
)
from dolphin.bus.member.message_names import operation_name
from dolphin.bus.member.persistence import DataDirLocked, Snapshot, SnapshotStore, build_snapshot
from dolphin.bus.member.protocol import Request, error_response
from dolphin.bus.member.service_client import AUTHENTICATION, AUTHENTICATION_CUSTOM, ClientService
from dolphin.bus.member.service_cp import CPService
from dolphin.bus.member.service_map import MapService
from dolphin.bus.member.transport import Connection, Handler, Transport

log = logging.getLogger("dolphin.bus.member")

#: Service ids (the message type's high byte) of the CP data structures and CP sessions/groups.
CP_SERVICE_IDS = frozenset({0x07, 0x09, 0x0A, 0x0B, 0x0C, 0x1E, 0x1F})


class MemberStartFailed(Exception):
    """The member could not bind its port or lock its data dir."""


def _advertised_host(bound_host: str) -> str:
    """Clients must be told a reachable address, never a wildcard (G9)."""
    if bound_host in ("0.0.0.0", "::", ""):
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"
    return bound_host


class Member:
    """One single-node Hazelcast-protocol member. Start and stop it on its own loop."""

    def __init__(self, config: MemberConfig) -> None:
        self.config = config
        self.uuid = uuid.uuid4()
        self.cluster_id = uuid.uuid4()
        major, minor, patch = (int(p) for p in config.server_version.split(".")[:3])
        self.version_tuple = (major, minor, patch)
        self.counters: Counter[str] = Counter()
        self.advertised: tuple[str, int] = (config.host, config.port)
        self.started_at = 0.0
        self.mutations = 0
        self.clients = ClientService(self)
        self.maps = MapService(self)
        self.cp = CPService(self)
        self.handlers: dict[int, Handler] = {}
        for service in (self.clients, self.maps, self.cp) if config.cp_enabled else (self.clients, self.maps):
            service.register(self.handlers)
        self.transport = Transport(config, self.dispatch, self._on_connection_closed, self.counters)
        self.store = SnapshotStore(config.data_dir) if config.data_dir is not None else None
        self._saved_mutations = 0
        self._last_snapshot = 0.0
        self._snapshot_task: asyncio.Task[None] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._stopping = False

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.store is not None:
            try:
                self.store.lock()
            except DataDirLocked as exc:
                raise MemberStartFailed(str(exc)) from exc
            snapshot = self.store.load()
            if snapshot is not None:
                count = self.maps.restore({m.name: [(e.key, e.value, e.expires_at) for e in m.entries]
                                           for m in snapshot.maps})
                self.cp.restore_refs([(r.group, r.name, r.value) for r in snapshot.atomic_refs])
                log.info("restored %d map entries in %d maps and %d CP references from %s (written %.0f s ago)",
                         count, len(snapshot.maps), len(snapshot.atomic_refs), self.store.path,
                         time.time() - snapshot.written_at)
        try:
            await self.transport.start()
        except OSError as exc:
            if self.store is not None:
                self.store.unlock()
            raise MemberStartFailed(f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}") from exc
        self.advertised = (_advertised_host(self.transport.bound_host), self.transport.bound_port)
        self.clients.prepare_views()
        self.started_at = time.time()
        self._saved_mutations = self.mutations
        self._last_snapshot = time.monotonic()
        self._tick_task = asyncio.get_running_loop().create_task(self._tick_loop(), name="hz-member-tick")
        log.info("member %s listening on %s:%d (cluster %r%s)", self.uuid, *self.advertised, self.config.cluster_name,
                 f", data dir {self.config.data_dir}" if self.config.data_dir else ", no data dir")

    async def stop(self) -> None:
        """Clean stop: stop accepting, close and await connections, then a final snapshot."""
        if self._stopping:
            return
        self._stopping = True
        if self._tick_task is not None:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
        self.cp.cancel_timers()
        await self.transport.stop()
        if self.store is not None:
            if self._snapshot_task is not None:
                await asyncio.gather(self._snapshot_task, return_exceptions=True)
            try:
                self._write_snapshot_now()
            except OSError:
                log.exception("final snapshot failed")
            self.store.unlock()
        log.info("member %s stopped", self.uuid)

    # ------------------------------------------------------------ dispatch
    def error_bytes(self, correlation_id: int, error: HzError) -> bytearray:
        return error_response(correlation_id, error.code, error.class_name, error.message)

    def dispatch(self, conn: Connection, req: Request) -> None:
        mtype = req.message_type
        if not conn.authenticated and mtype not in (AUTHENTICATION, AUTHENTICATION_CUSTOM):
            raise ProtocolViolation(f"request 0x{mtype:06x} before authentication")
        self.counters["requests"] += 1
        try:
            if self._stopping:
                raise InstanceNotActive("member is shutting down")
            if req.oversized_bytes:
                self.counters["requests_too_large"] += 1
                cap = self.config.max_frame_bytes
                raise RequestTooLarge(
                    f"{operation_name(mtype)}: the request is {req.oversized_bytes:,} bytes, over the DOLPHIN "
                    f"embedded member's frame cap of {cap:,} bytes ({cap / 2**20:g} MiB): a value that large "
                    "is refused (nothing was stored)")
            handler = self.handlers.get(mtype)
            if handler is None:
                self.counters["unsupported"] += 1
                raise UnsupportedOperation(self.unsupported_reason(mtype))
            handler(conn, req)
        except HzError as exc:
            self.counters["errors_sent"] += 1
            log.debug("request 0x%06x from %s answered with %s: %s", mtype, conn.describe(), exc.class_name, exc)
            conn.send(self.error_bytes(req.correlation_id, exc))
        except ProtocolViolation:
            raise
        except Exception as exc:
            self.counters["internal_errors"] += 1
            log.exception("request 0x%06x from %s failed inside the member", mtype, conn.describe())
            conn.send(self.error_bytes(req.correlation_id, HzError(f"internal error: {type(exc).__name__}: {exc}")))

    def unsupported_reason(self, message_type: int) -> str:
        """Names the operation, so the caller's exception says what it was that failed."""
        op = operation_name(message_type)
        if not self.config.cp_enabled and message_type >> 16 in CP_SERVICE_IDS:
            return (f"{op}: the CP subsystem is off on this member (--no-cp), as on a community Hazelcast "
                    "5.5+ cluster")
        return (f"{op} is not supported by the DOLPHIN embedded member (docs/bus.md lists what is); "
                "a real Hazelcast cluster serves it")

    def mark_dirty(self) -> None:
        self.mutations += 1

    def _on_connection_closed(self, conn: Connection) -> None:
        self.maps.on_connection_closed(conn)
        if conn.authenticated:
            log.info("client %s disconnected%s", conn.describe(),
                     f" ({conn.close_reason})" if conn.close_reason not in ("", "closed") else "")

    # ------------------------------------------------------------ periodic work
    async def _tick_loop(self) -> None:
        period = min(self.config.expiry_sweep_s, 1.0)
        while True:
            await asyncio.sleep(period)
            try:
                self.tick(time.monotonic())
            except Exception:
                log.exception("member tick failed")

    def tick(self, now: float) -> None:
        self.maps.sweep(now)
        self.cp.expire_sessions(now)
        self.transport.reap_idle(now)
        if (self.store is not None and self.mutations != self._saved_mutations
                and now - self._last_snapshot >= self.config.snapshot_interval_s
                and (self._snapshot_task is None or self._snapshot_task.done())):
            self._start_background_snapshot(now)

    def _capture(self) -> Snapshot:
        return build_snapshot(self.config.cluster_name, self.maps.export(), self.cp.export_refs())

    def _start_background_snapshot(self, now: float) -> None:
        """Capture on the loop (consistent), encode and write in a worker thread."""
        assert self.store is not None
        snapshot = self._capture()
        self._saved_mutations = self.mutations
        self._last_snapshot = now
        store = self.store

        async def write() -> None:
            try:
                await asyncio.to_thread(store.write, snapshot)
                self.counters["snapshots_written"] += 1
            except OSError:
                self._saved_mutations = -1  # retry at the next interval
                self.counters["snapshot_failures"] += 1
                log.exception("snapshot to %s failed; will retry", store.path)

        self._snapshot_task = asyncio.get_running_loop().create_task(write(), name="hz-member-snapshot")

    def _write_snapshot_now(self) -> None:
        assert self.store is not None
        self.store.write(self._capture())
        self._saved_mutations = self.mutations
        self.counters["snapshots_written"] += 1

    # ------------------------------------------------------------ introspection
    def info(self) -> dict[str, object]:
        """A small status document (used by tests and the foreground log)."""
        return {
            "uuid": str(self.uuid),
            "cluster_id": str(self.cluster_id),
            "address": f"{self.advertised[0]}:{self.advertised[1]}",
            "cluster_name": self.config.cluster_name,
            "connections": len(self.transport.connections),
            "maps": self.maps.sizes(),
            "cp_sessions": len(self.cp.sessions),
            "listeners": self.maps.listener_count(),
            "counters": dict(self.counters),
        }
