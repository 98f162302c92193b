"""CP subsystem (0x07, 0x0A, 0x1E, 0x1F): groups, sessions, AtomicReference, FencedLock.

Single-process linearizability: every CP operation runs on the member's one event
loop, which is stronger than the "unsafe mode" a CP-less production cluster offers
(spec §9.3). Identities never repeat across restarts: session ids, fences and thread
ids are seeded from the wall clock in microseconds (G11), so a session id cached by a
client from before a restart is always unknown and answered SessionExpired; group ids
are deterministic per group name so ids cached by clients stay valid.

FencedLock semantics follow Hazelcast's RaftLock: the owner is (session, thread);
reentrant without a limit, returning the same fence; the fence grows with each new
acquisition; a retried invocation (same invocation uid) is answered without counting
twice; lock requests that cannot be granted are parked (never answered early, G3);
closing or expiring a session releases its locks and fails its parked waiters.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dolphin.bus.member.errors import HzError, IllegalArgument, IllegalMonitorState, SessionExpired, WaitKeyCancelled
from dolphin.bus.member.protocol import Out, Request, empty_response

if TYPE_CHECKING:
    from dolphin.bus.member.member import Member
    from dolphin.bus.member.transport import Connection, Handler

log = logging.getLogger("dolphin.bus.member")

CREATE_CP_GROUP = 0x1E0100
DESTROY_CP_OBJECT = 0x1E0200
CREATE_SESSION = 0x1F0100
CLOSE_SESSION = 0x1F0200
HEARTBEAT_SESSION = 0x1F0300
GENERATE_THREAD_ID = 0x1F0400
ATOMIC_REF_COMPARE_AND_SET = 0x0A0200
ATOMIC_REF_CONTAINS = 0x0A0300
ATOMIC_REF_GET = 0x0A0400
ATOMIC_REF_SET = 0x0A0500
LOCK = 0x070100
TRY_LOCK = 0x070200
UNLOCK = 0x070300
GET_LOCK_OWNERSHIP = 0x070400

DEFAULT_GROUP = "default"
METADATA_GROUP = "METADATA"
INVALID_FENCE = 0
ATOMIC_REF_SERVICE = "hz:raft:atomicRefService"
LOCK_SERVICE = "hz:raft:lockService"

Endpoint = tuple[int, int]  # (session id, thread id)


def group_id_of(name: str) -> int:
    """Deterministic group id, so ids cached by clients survive a member restart."""
    return zlib.crc32(name.encode("utf-8"))


def group_name_for_proxy(proxy_name: str) -> str:
    """``"obj@group"`` → ``"group"``; a bare name lives in the default group."""
    if "@" not in proxy_name:
        return DEFAULT_GROUP
    group = proxy_name.split("@", 1)[1].strip()
    if not group:
        raise IllegalArgument(f"custom CP group name cannot be empty in {proxy_name!r}")
    if group.lower() == DEFAULT_GROUP:
        return DEFAULT_GROUP
    if group.upper() == METADATA_GROUP:
        raise IllegalArgument("CP data structures cannot run on the METADATA CP group")
    return group


@dataclass
class Session:
    session_id: int
    group: str
    endpoint_name: str
    expires_at: float


@dataclass(eq=False)
class Waiter:
    """A parked Lock/TryLock request; answered when granted, timed out or cancelled."""

    conn: Connection
    correlation_id: int
    message_type: int
    endpoint: Endpoint
    invocation_uid: bytes
    timer: asyncio.TimerHandle | None = None


@dataclass
class LockState:
    owner: Endpoint | None = None
    count: int = 0
    fence: int = INVALID_FENCE
    waiters: deque[Waiter] = field(default_factory=deque)
    acquire_uid: dict[Endpoint, tuple[bytes, int]] = field(default_factory=dict)  # uid, fence
    release_uid: dict[Endpoint, tuple[bytes, bool]] = field(default_factory=dict)  # uid, still held


class CPService:
    """Handlers and state of the CP data structures; see the module docstring."""

    def __init__(self, member: Member) -> None:
        self._member = member
        base = time.time_ns() // 1000
        self._next_session = base
        self._next_fence = base
        self._next_thread = base
        self._groups: set[str] = {DEFAULT_GROUP}
        self.sessions: dict[int, Session] = {}
        self.refs: dict[tuple[str, str], bytes | None] = {}
        self.locks: dict[tuple[str, str], LockState] = {}

    def register(self, table: dict[int, Handler]) -> None:
        table[CREATE_CP_GROUP] = self.create_cp_group
        table[DESTROY_CP_OBJECT] = self.destroy_cp_object
        table[CREATE_SESSION] = self.create_session
        table[CLOSE_SESSION] = self.close_session
        table[HEARTBEAT_SESSION] = self.heartbeat_session
        table[GENERATE_THREAD_ID] = self.generate_thread_id
        table[ATOMIC_REF_COMPARE_AND_SET] = self.ref_compare_and_set
        table[ATOMIC_REF_CONTAINS] = self.ref_contains
        table[ATOMIC_REF_GET] = self.ref_get
        table[ATOMIC_REF_SET] = self.ref_set
        table[LOCK] = self.lock
        table[TRY_LOCK] = self.try_lock
        table[UNLOCK] = self.unlock
        table[GET_LOCK_OWNERSHIP] = self.get_lock_ownership

    # ------------------------------------------------------------ groups
    def _group(self, req: Request) -> str:
        name, _seed, gid = req.raft_group_id()
        if gid != group_id_of(name):
            raise IllegalArgument(f"unknown CP group id {gid} for group {name!r}")
        return name

    def create_cp_group(self, conn: Connection, req: Request) -> None:
        group = group_name_for_proxy(req.string())
        self._groups.add(group)
        out = Out.response(CREATE_CP_GROUP + 1, req.correlation_id).raft_group_id(group, 0, group_id_of(group))
        conn.send(out.finish())

    def destroy_cp_object(self, conn: Connection, req: Request) -> None:
        group = self._group(req)
        service = req.string()
        name = req.string()
        key = (group, name)
        if service == ATOMIC_REF_SERVICE and self.refs.pop(key, None) is not None:
            self._member.mark_dirty()
        elif service == LOCK_SERVICE:
            state = self.locks.pop(key, None)
            if state is not None:
                for waiter in state.waiters:
                    self._fail(waiter, HzError(f"FencedLock {name!r} was destroyed"))
        conn.send(empty_response(DESTROY_CP_OBJECT, req.correlation_id))

    # ------------------------------------------------------------ sessions
    def _live_session(self, session_id: int) -> Session:
        session = self.sessions.get(session_id)
        if session is None or session.expires_at <= time.monotonic():
            if session is not None:
                self._end_session(session, "expired")
            raise SessionExpired(f"CP session {session_id} does not exist or has expired")
        return session

    def create_session(self, conn: Connection, req: Request) -> None:
        group = self._group(req)
        endpoint_name = req.string()
        self._next_session += 1
        config = self._member.config
        session = Session(self._next_session, group, endpoint_name, time.monotonic() + config.session_ttl_s)
        self.sessions[session.session_id] = session
        out = Out.response(CREATE_SESSION + 1, req.correlation_id, 24)
        out.put_long(0, session.session_id)
        out.put_long(8, int(config.session_ttl_s * 1000))
        out.put_long(16, int(config.session_heartbeat_s * 1000))
        conn.send(out.finish())

    def close_session(self, conn: Connection, req: Request) -> None:
        session_id = req.fixed_long(0)
        self._group(req)
        session = self.sessions.get(session_id)
        if session is not None:
            self._end_session(session, "closed")
        conn.send(Out.response(CLOSE_SESSION + 1, req.correlation_id, 1).put_bool(0, session is not None).finish())

    def heartbeat_session(self, conn: Connection, req: Request) -> None:
        session_id = req.fixed_long(0)
        self._group(req)
        session = self._live_session(session_id)
        session.expires_at = time.monotonic() + self._member.config.session_ttl_s
        conn.send(empty_response(HEARTBEAT_SESSION, req.correlation_id))

    def generate_thread_id(self, conn: Connection, req: Request) -> None:
        self._group(req)
        self._next_thread += 1
        conn.send(Out.response(GENERATE_THREAD_ID + 1, req.correlation_id, 8).put_long(0, self._next_thread).finish())

    def expire_sessions(self, now: float) -> None:
        for session in [s for s in self.sessions.values() if s.expires_at <= now]:
            self._end_session(session, "expired")

    def _end_session(self, session: Session, why: str) -> None:
        """Release the session's locks (waking the next waiters) and fail its parked requests."""
        self.sessions.pop(session.session_id, None)
        if why == "expired":
            self._member.counters["sessions_expired"] += 1
            log.info("CP session %s (%s) expired: its locks are released", session.session_id, session.endpoint_name)
        sid = session.session_id
        for (group, _name), state in list(self.locks.items()):
            if group != session.group:
                continue
            kept: deque[Waiter] = deque()
            for waiter in state.waiters:
                if waiter.endpoint[0] == sid:
                    self._fail(waiter, SessionExpired(f"CP session {sid} {why}"))
                else:
                    kept.append(waiter)
            state.waiters = kept
            for endpoint in [e for e in state.acquire_uid if e[0] == sid]:
                del state.acquire_uid[endpoint]
            for endpoint in [e for e in state.release_uid if e[0] == sid]:
                del state.release_uid[endpoint]
            if state.owner is not None and state.owner[0] == sid:
                state.owner = None
                state.count = 0
                self._grant_next(state)

    # ------------------------------------------------------------ atomic reference
    def _ref_key(self, req: Request) -> tuple[str, str]:
        group = self._group(req)
        return group, req.string()

    def ref_get(self, conn: Connection, req: Request) -> None:
        value = self.refs.get(self._ref_key(req))
        conn.send(Out.response(ATOMIC_REF_GET + 1, req.correlation_id).nullable_data(value).finish())

    def ref_set(self, conn: Connection, req: Request) -> None:
        return_old = req.fixed_bool(0)
        key = self._ref_key(req)
        new = req.nullable_data()
        old = self.refs.get(key)
        self.refs[key] = new
        self._member.mark_dirty()
        out = Out.response(ATOMIC_REF_SET + 1, req.correlation_id).nullable_data(old if return_old else None)
        conn.send(out.finish())

    def ref_compare_and_set(self, conn: Connection, req: Request) -> None:
        key = self._ref_key(req)
        expected = req.nullable_data()
        new = req.nullable_data()
        swapped = self.refs.get(key) == expected
        if swapped:
            self.refs[key] = new
            self._member.mark_dirty()
        conn.send(Out.response(ATOMIC_REF_COMPARE_AND_SET + 1, req.correlation_id, 1).put_bool(0, swapped).finish())

    def ref_contains(self, conn: Connection, req: Request) -> None:
        key = self._ref_key(req)
        found = self.refs.get(key) == req.nullable_data()
        conn.send(Out.response(ATOMIC_REF_CONTAINS + 1, req.correlation_id, 1).put_bool(0, found).finish())

    def export_refs(self) -> list[tuple[str, str, bytes | None]]:
        return [(group, name, value) for (group, name), value in self.refs.items()]

    def restore_refs(self, refs: list[tuple[str, str, bytes | None]]) -> None:
        for group, name, value in refs:
            self._groups.add(group)
            self.refs[(group, name)] = value

    # ------------------------------------------------------------ fenced lock
    def _lock_state(self, req: Request) -> tuple[str, LockState]:
        group = self._group(req)
        name = req.string()
        key = (group, name)
        state = self.locks.get(key)
        if state is None:
            state = self.locks[key] = LockState()
        return name, state

    def _new_fence(self) -> int:
        self._next_fence += 1
        return self._next_fence

    def _answer_fence(self, conn: Connection, message_type: int, correlation_id: int, fence: int) -> None:
        conn.send(Out.response(message_type + 1, correlation_id, 8).put_long(0, fence).finish())

    def _acquire(self, conn: Connection, req: Request, try_timeout_ms: int | None) -> None:
        session_id = req.fixed_long(0)
        thread_id = req.fixed_long(8)
        uid = req.fixed_uuid_raw(16)
        _name, state = self._lock_state(req)
        self._live_session(session_id)
        endpoint = (session_id, thread_id)
        corr = req.correlation_id
        if state.owner == endpoint:
            previous = state.acquire_uid.get(endpoint)
            if previous is None or previous[0] != uid:  # not a retry of the acquire we already counted
                state.count += 1
                state.acquire_uid[endpoint] = (uid, state.fence)
            self._answer_fence(conn, req.message_type, corr, state.fence)
            return
        if state.owner is None and not state.waiters:
            state.owner = endpoint
            state.count = 1
            state.fence = self._new_fence()
            state.acquire_uid[endpoint] = (uid, state.fence)
            state.release_uid.pop(endpoint, None)
            self._answer_fence(conn, req.message_type, corr, state.fence)
            return
        for waiter in state.waiters:
            if waiter.endpoint == endpoint:
                if waiter.invocation_uid == uid:  # the client retried on a new connection
                    waiter.conn = conn
                    waiter.correlation_id = corr
                    return
                self._fail(waiter, WaitKeyCancelled("a newer lock request from the same thread replaced this one"))
                state.waiters.remove(waiter)
                break
        if try_timeout_ms is not None and try_timeout_ms <= 0:
            self._answer_fence(conn, req.message_type, corr, INVALID_FENCE)
            return
        waiter = Waiter(conn, corr, req.message_type, endpoint, uid)
        if try_timeout_ms is not None:
            loop = asyncio.get_running_loop()
            waiter.timer = loop.call_later(try_timeout_ms / 1000.0, self._time_out, state, waiter)
        state.waiters.append(waiter)

    def lock(self, conn: Connection, req: Request) -> None:
        self._acquire(conn, req, None)

    def try_lock(self, conn: Connection, req: Request) -> None:
        self._acquire(conn, req, req.fixed_long(33))

    def _time_out(self, state: LockState, waiter: Waiter) -> None:
        try:
            state.waiters.remove(waiter)
        except ValueError:
            return
        self._answer_fence(waiter.conn, waiter.message_type, waiter.correlation_id, INVALID_FENCE)

    def _fail(self, waiter: Waiter, error: HzError) -> None:
        if waiter.timer is not None:
            waiter.timer.cancel()
        waiter.conn.send(self._member.error_bytes(waiter.correlation_id, error))

    def _grant_next(self, state: LockState) -> None:
        while state.owner is None and state.waiters:
            waiter = state.waiters.popleft()
            if waiter.endpoint[0] not in self.sessions:
                self._fail(waiter, SessionExpired(f"CP session {waiter.endpoint[0]} expired while waiting"))
                continue
            if waiter.timer is not None:
                waiter.timer.cancel()
            state.owner = waiter.endpoint
            state.count = 1
            state.fence = self._new_fence()
            state.acquire_uid[waiter.endpoint] = (waiter.invocation_uid, state.fence)
            state.release_uid.pop(waiter.endpoint, None)
            self._answer_fence(waiter.conn, waiter.message_type, waiter.correlation_id, state.fence)

    def unlock(self, conn: Connection, req: Request) -> None:
        session_id = req.fixed_long(0)
        thread_id = req.fixed_long(8)
        uid = req.fixed_uuid_raw(16)
        name, state = self._lock_state(req)
        self._live_session(session_id)
        endpoint = (session_id, thread_id)
        previous = state.release_uid.get(endpoint)
        if previous is not None and previous[0] == uid:  # a retried unlock: same answer, no second release
            still_held = previous[1]
        elif state.owner != endpoint:
            raise IllegalMonitorState(f"Current thread is not owner of the Lock[{name}]")
        else:
            state.count -= 1
            still_held = state.count > 0
            state.release_uid[endpoint] = (uid, still_held)
            if not still_held:
                state.owner = None
                state.acquire_uid.pop(endpoint, None)
                self._grant_next(state)
        conn.send(Out.response(UNLOCK + 1, req.correlation_id, 1).put_bool(0, still_held).finish())

    def get_lock_ownership(self, conn: Connection, req: Request) -> None:
        _name, state = self._lock_state(req)
        out = Out.response(GET_LOCK_OWNERSHIP + 1, req.correlation_id, 28)
        if state.owner is None:
            out.put_long(0, INVALID_FENCE).put_int(8, 0).put_long(12, -1).put_long(20, -1)
        else:
            out.put_long(0, state.fence).put_int(8, state.count).put_long(12, state.owner[0]).put_long(20, state.owner[1])
        conn.send(out.finish())

    def cancel_timers(self) -> None:
        for state in self.locks.values():
            for waiter in state.waiters:
                if waiter.timer is not None:
                    waiter.timer.cancel()
