"""IMap (0x01xxxx): storage keyed by serialized bytes, TTL, entry listeners and events.

Keys and values are the client's serialized `Data` bytes, stored as ``bytes`` (hashing
the client's `Data` object would run murmur in pure Python; comparing bytes is what a
real member does too). Events are sent synchronously before the operation's response
(a real cluster sends them asynchronously; per-key order holds in both, G15).

TTL follows the protocol: -1 = map default (infinite here), 0 = infinite, > 0 = ms.
Expiry is checked lazily on access and by a sweeper tick, both firing EXPIRED.
Only the listener flags a client asked for are sent (G6), and a key listener only
sees its own key. A near-cache invalidation listener hears of every change (the key, or
a null key for clear/destroy), so clients may cache reads (bible §15.3).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dolphin.bus.member.protocol import (
    IS_EVENT,
    IS_FINAL,
    IS_NULL,
    NULL_FRAME,
    UNFRAGMENTED,
    Out,
    Request,
    empty_response,
    encode_uuid,
)

if TYPE_CHECKING:
    from dolphin.bus.member.member import Member
    from dolphin.bus.member.transport import Connection, Handler

log = logging.getLogger("dolphin.bus.member")

PUT = 0x010100
GET = 0x010200
REMOVE = 0x010300
CONTAINS_KEY = 0x010600
CONTAINS_VALUE = 0x010700
DELETE = 0x010900
PUT_IF_ABSENT = 0x010E00
SET = 0x010F00
ADD_ENTRY_LISTENER_TO_KEY = 0x011800
ADD_ENTRY_LISTENER = 0x011900
REMOVE_ENTRY_LISTENER = 0x011A00
KEY_SET = 0x012200
GET_ALL = 0x012300
VALUES = 0x012400
ENTRY_SET = 0x012500
SIZE = 0x012A00
IS_EMPTY = 0x012B00
PUT_ALL = 0x012C00
CLEAR = 0x012D00
ADD_NEAR_CACHE_INVALIDATION_LISTENER = 0x013F00
NEAR_CACHE_INVALIDATION_EVENT = 0x013F02

ADDED = 1
REMOVED = 2
UPDATED = 4
EVICTED = 8
EXPIRED = 16
EVICT_ALL = 32
CLEAR_ALL = 64

_ENTRY_EVENT_HEAD = struct.Struct("<iHiqii17si")  # frame len, flags, type, corr, partition, eventType, uuid, n
_ENTRY_EVENT_SIZE = _ENTRY_EVENT_HEAD.size
_FRAME_HDR = struct.Struct("<iH")
_NULL_FINAL = _FRAME_HDR.pack(6, IS_NULL | IS_FINAL)


def _frame(body: bytes) -> bytes:
    return _FRAME_HDR.pack(6 + len(body), 0) + body


def _ttl_seconds(ttl_ms: int) -> float | None:
    """-1 (map default) and 0 mean no expiry here; > 0 is milliseconds."""
    return ttl_ms / 1000.0 if ttl_ms > 0 else None


@dataclass(eq=False)
class Registration:
    """One entry-listener registration of one connection (G7)."""

    registration_id: uuid.UUID
    conn: Connection
    correlation_id: int
    event_message_type: int
    map_name: str
    flags: int
    include_value: bool
    key: bytes | None


@dataclass
class MapStore:
    """The entries of one map; `expiry` holds monotonic deadlines of entries with a TTL."""

    name: str
    values: dict[bytes, bytes] = field(default_factory=dict)
    expiry: dict[bytes, float] = field(default_factory=dict)


@dataclass
class ListenerSet:
    """Registrations of one map, kept apart from the data so they outlive a destroy.

    `near_cache` holds the clients' near-cache invalidation listeners: every change of a
    key (and a clear, with a null key) tells them to drop their cached copy.
    """

    map_wide: dict[uuid.UUID, Registration] = field(default_factory=dict)
    by_key: dict[bytes, dict[uuid.UUID, Registration]] = field(default_factory=dict)
    near_cache: dict[uuid.UUID, Registration] = field(default_factory=dict)


class MapService:
    """Handlers and state for every IMap; see the module docstring."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self._maps: dict[str, MapStore] = {}
        self._listeners: dict[str, ListenerSet] = {}
        self._heap: list[tuple[float, int, str, bytes]] = []
        self._seq = itertools.count()
        self._uuid17 = encode_uuid(member.uuid)
        self._invalidation_seq = 0

    def register(self, table: dict[int, Handler]) -> None:
        table[PUT] = self.put
        table[SET] = self.set
        table[GET] = self.get
        table[REMOVE] = self.remove
        table[DELETE] = self.delete
        table[CONTAINS_KEY] = self.contains_key
        table[CONTAINS_VALUE] = self.contains_value
        table[PUT_IF_ABSENT] = self.put_if_absent
        table[IS_EMPTY] = self.is_empty
        table[ADD_NEAR_CACHE_INVALIDATION_LISTENER] = self.add_near_cache_invalidation_listener
        table[ADD_ENTRY_LISTENER] = self.add_entry_listener
        table[ADD_ENTRY_LISTENER_TO_KEY] = self.add_entry_listener_to_key
        table[REMOVE_ENTRY_LISTENER] = self.remove_entry_listener
        table[KEY_SET] = self.key_set
        table[GET_ALL] = self.get_all
        table[VALUES] = self.values
        table[ENTRY_SET] = self.entry_set
        table[SIZE] = self.size
        table[PUT_ALL] = self.put_all
        table[CLEAR] = self.clear

    # ------------------------------------------------------------ state
    def ensure(self, name: str) -> MapStore:
        """Any operation creates the map, since clients never re-send CreateProxy (G10)."""
        store = self._maps.get(name)
        if store is None:
            store = self._maps[name] = MapStore(name)
        return store

    def names(self) -> list[str]:
        return list(self._maps)

    def sizes(self) -> dict[str, int]:
        now = time.monotonic()
        for store in self._maps.values():
            self._purge(store, now)
        return {name: len(store.values) for name, store in self._maps.items()}

    def destroy(self, name: str) -> None:
        """Drop a map's data (no events, as on a real member); listeners stay registered."""
        if self._maps.pop(name, None) is not None:
            self._member.mark_dirty()
            listeners = self._listeners.get(name)
            if listeners is not None and listeners.near_cache:
                self._invalidate(listeners, None)  # near caches of other clients drop everything

    def export(self) -> dict[str, list[tuple[bytes, bytes, float | None]]]:
        """Entries per map with wall-clock expiry times, for a snapshot."""
        mono = time.monotonic()
        wall = time.time()
        out: dict[str, list[tuple[bytes, bytes, float | None]]] = {}
        for name, store in self._maps.items():
            expiry = store.expiry
            out[name] = [
                (key, value, (wall + (expiry[key] - mono)) if key in expiry else None)
                for key, value in store.values.items()
            ]
        return out

    def restore(self, maps: dict[str, list[tuple[bytes, bytes, float | None]]]) -> int:
        """Load snapshot entries; entries whose TTL ran out while the member was down are dropped."""
        mono = time.monotonic()
        wall = time.time()
        restored = 0
        for name, entries in maps.items():
            store = self.ensure(name)
            for key, value, expires_at in entries:
                if expires_at is not None:
                    remaining = expires_at - wall
                    if remaining <= 0:
                        continue
                    deadline = mono + remaining
                    store.expiry[key] = deadline
                    heapq.heappush(self._heap, (deadline, next(self._seq), name, key))
                store.values[key] = value
                restored += 1
        return restored

    def on_connection_closed(self, conn: Connection) -> None:
        for registration in list(conn.registrations.values()):
            if isinstance(registration, Registration):
                self._unregister(registration)
        conn.registrations.clear()

    # ------------------------------------------------------------ events
    def _publish(self, store: MapStore, event_type: int, key: bytes | None, value: bytes | None,
                 old: bytes | None, affected: int = 1) -> None:
        listeners = self._listeners.get(store.name)
        if listeners is None:
            return
        if listeners.near_cache:
            self._invalidate(listeners, key)
        targets = [r for r in listeners.map_wide.values() if r.flags & event_type]
        if key is not None and listeners.by_key:
            for_key = listeners.by_key.get(key)
            if for_key:
                targets.extend(r for r in for_key.values() if r.flags & event_type)
        if not targets:
            return
        key_frame = _frame(key) if key is not None else NULL_FRAME
        with_value = without_value = b""
        for r in targets:
            if r.conn.closed:
                continue
            if r.include_value:
                if not with_value:
                    with_value = (key_frame + (_frame(value) if value is not None else NULL_FRAME)
                                  + (_frame(old) if old is not None else NULL_FRAME) + _NULL_FINAL)
                tail = with_value
            else:
                if not without_value:
                    without_value = key_frame + NULL_FRAME + NULL_FRAME + _NULL_FINAL
                tail = without_value
            head = _ENTRY_EVENT_HEAD.pack(_ENTRY_EVENT_SIZE, UNFRAGMENTED | IS_EVENT, r.event_message_type,
                                          r.correlation_id, -1, event_type, self._uuid17, affected)
            r.conn.send(head + tail)
        self._member.counters["events_sent"] += len(targets)

    def _invalidate(self, listeners: ListenerSet, key: bytes | None) -> None:
        """Near-cache invalidation (0x013F02): source and partition uuids, a sequence, the key (null = all)."""
        self._invalidation_seq += 1
        for r in listeners.near_cache.values():
            if r.conn.closed:
                continue
            out = Out.event(NEAR_CACHE_INVALIDATION_EVENT, r.correlation_id, 17 + 17 + 8)
            out.put_uuid(0, self._member.uuid).put_uuid(17, self._member.uuid).put_long(34, self._invalidation_seq)
            r.conn.send(out.nullable_data(key).finish())
        self._member.counters["invalidations_sent"] += len(listeners.near_cache)

    def _write(self, store: MapStore, key: bytes, value: bytes, ttl_ms: int) -> bytes | None:
        """Store one entry and publish ADDED/UPDATED; returns the previous live value."""
        now = time.monotonic()
        old = self._live_value(store, key, now)
        store.values[key] = value
        ttl = _ttl_seconds(ttl_ms)
        if ttl is None:
            store.expiry.pop(key, None)
        else:
            deadline = now + ttl
            store.expiry[key] = deadline
            heapq.heappush(self._heap, (deadline, next(self._seq), store.name, key))
        self._member.mark_dirty()
        if old is None:
            self._publish(store, ADDED, key, value, None)
        else:
            self._publish(store, UPDATED, key, value, old)
        return old

    def _take(self, store: MapStore, key: bytes, *, event_old_value: bool = True) -> bytes | None:
        """Remove one entry and publish REMOVED. A real member's `delete` does not read the old
        value, so its event carries none (`event_old_value=False`); `remove` carries it."""
        old = self._live_value(store, key, time.monotonic())
        if old is None:
            return None
        del store.values[key]
        store.expiry.pop(key, None)
        self._member.mark_dirty()
        self._publish(store, REMOVED, key, None, old if event_old_value else None)
        return old

    def _expire(self, store: MapStore, key: bytes) -> None:
        old = store.values.pop(key, None)
        store.expiry.pop(key, None)
        if old is not None:
            self._member.mark_dirty()
            self._member.counters["entries_expired"] += 1
            self._publish(store, EXPIRED, key, None, old)

    def _live_value(self, store: MapStore, key: bytes, now: float) -> bytes | None:
        value = store.values.get(key)
        if value is not None and store.expiry:
            deadline = store.expiry.get(key)
            if deadline is not None and deadline <= now:
                self._expire(store, key)
                return None
        return value

    def _purge(self, store: MapStore, now: float) -> None:
        if store.expiry:
            for key in [k for k, d in store.expiry.items() if d <= now]:
                self._expire(store, key)

    def sweep(self, now: float) -> None:
        """Fire EXPIRED for entries whose TTL ran out (heap entries for rewritten keys are stale)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, name, key = heapq.heappop(heap)
            store = self._maps.get(name)
            if store is not None and store.expiry.get(key) == deadline:
                self._expire(store, key)
        live = sum(len(store.expiry) for store in self._maps.values())
        if len(heap) > 1024 and len(heap) > 4 * live:  # keys rewritten with a TTL leave stale heap entries
            self._heap = [(d, next(self._seq), store.name, k)
                          for store in self._maps.values() for k, d in store.expiry.items()]
            heapq.heapify(self._heap)

    # ------------------------------------------------------------ handlers
    def put(self, conn: Connection, req: Request) -> None:
        ttl = req.fixed_long(8)
        store = self.ensure(req.string())
        key = req.data()
        old = self._write(store, key, req.data(), ttl)
        conn.send(Out.response(PUT + 1, req.correlation_id).nullable_data(old).finish())

    def set(self, conn: Connection, req: Request) -> None:
        ttl = req.fixed_long(8)
        store = self.ensure(req.string())
        key = req.data()
        self._write(store, key, req.data(), ttl)
        conn.send(empty_response(SET, req.correlation_id))

    def get(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        value = self._live_value(store, req.data(), time.monotonic())
        conn.send(Out.response(GET + 1, req.correlation_id).nullable_data(value).finish())

    def remove(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        old = self._take(store, req.data())
        conn.send(Out.response(REMOVE + 1, req.correlation_id).nullable_data(old).finish())

    def delete(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        self._take(store, req.data(), event_old_value=False)
        conn.send(empty_response(DELETE, req.correlation_id))

    def put_if_absent(self, conn: Connection, req: Request) -> None:
        """Writes (ADDED) only when the key has no live value; returns the value that stays."""
        ttl = req.fixed_long(8)
        store = self.ensure(req.string())
        key = req.data()
        value = req.data()
        current = self._live_value(store, key, time.monotonic())
        if current is None:
            self._write(store, key, value, ttl)
        conn.send(Out.response(PUT_IF_ABSENT + 1, req.correlation_id).nullable_data(current).finish())

    def contains_value(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        value = req.data()
        self._purge(store, time.monotonic())
        found = any(v == value for v in store.values.values())
        conn.send(Out.response(CONTAINS_VALUE + 1, req.correlation_id, 1).put_bool(0, found).finish())

    def is_empty(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        self._purge(store, time.monotonic())
        conn.send(Out.response(IS_EMPTY + 1, req.correlation_id, 1).put_bool(0, not store.values).finish())

    def contains_key(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        found = self._live_value(store, req.data(), time.monotonic()) is not None
        conn.send(Out.response(CONTAINS_KEY + 1, req.correlation_id, 1).put_bool(0, found).finish())

    def key_set(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        self._purge(store, time.monotonic())
        conn.send(Out.response(KEY_SET + 1, req.correlation_id).list_data(list(store.values)).finish())

    def values(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        self._purge(store, time.monotonic())
        conn.send(Out.response(VALUES + 1, req.correlation_id).list_data(list(store.values.values())).finish())

    def entry_set(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        self._purge(store, time.monotonic())
        out = Out.response(ENTRY_SET + 1, req.correlation_id).entry_list_data(list(store.values.items()))
        conn.send(out.finish())

    def get_all(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        keys = req.list_data()
        now = time.monotonic()
        found = []
        for key in keys:
            value = self._live_value(store, key, now)
            if value is not None:
                found.append((key, value))
        conn.send(Out.response(GET_ALL + 1, req.correlation_id).entry_list_data(found).finish())

    def put_all(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        for key, value in req.entry_list_data():
            self._write(store, key, value, -1)
        conn.send(empty_response(PUT_ALL, req.correlation_id))

    def size(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        self._purge(store, time.monotonic())
        conn.send(Out.response(SIZE + 1, req.correlation_id, 4).put_int(0, len(store.values)).finish())

    def clear(self, conn: Connection, req: Request) -> None:
        store = self.ensure(req.string())
        self._purge(store, time.monotonic())
        count = len(store.values)
        store.values.clear()
        store.expiry.clear()
        if count:
            self._member.mark_dirty()
        self._publish(store, CLEAR_ALL, None, None, None, affected=count)
        conn.send(empty_response(CLEAR, req.correlation_id))

    # ------------------------------------------------------------ listeners
    def _register(self, conn: Connection, req: Request, key: bytes | None, name: str) -> None:
        include_value = req.fixed_bool(0)
        flags = req.fixed_int(1)
        registration = Registration(
            registration_id=uuid.uuid4(),
            conn=conn,
            correlation_id=req.correlation_id,
            event_message_type=req.message_type + 2,
            map_name=name,
            flags=flags,
            include_value=include_value,
            key=key,
        )
        listeners = self._listeners.setdefault(name, ListenerSet())
        if key is None:
            listeners.map_wide[registration.registration_id] = registration
        else:
            listeners.by_key.setdefault(key, {})[registration.registration_id] = registration
        conn.registrations[registration.registration_id] = registration
        self.ensure(name)
        out = Out.response(req.message_type + 1, req.correlation_id, 17).put_uuid(0, registration.registration_id)
        conn.send(out.finish())

    def add_near_cache_invalidation_listener(self, conn: Connection, req: Request) -> None:
        """A client's near cache asks to hear of every change (listenerFlags@0, localOnly@4; name)."""
        name = req.string()
        registration = Registration(registration_id=uuid.uuid4(), conn=conn, correlation_id=req.correlation_id,
                                    event_message_type=NEAR_CACHE_INVALIDATION_EVENT, map_name=name,
                                    flags=req.fixed_int(0), include_value=False, key=None)
        self._listeners.setdefault(name, ListenerSet()).near_cache[registration.registration_id] = registration
        conn.registrations[registration.registration_id] = registration
        self.ensure(name)
        out = Out.response(req.message_type + 1, req.correlation_id, 17).put_uuid(0, registration.registration_id)
        conn.send(out.finish())

    def add_entry_listener(self, conn: Connection, req: Request) -> None:
        self._register(conn, req, None, req.string())

    def add_entry_listener_to_key(self, conn: Connection, req: Request) -> None:
        name = req.string()
        self._register(conn, req, req.data(), name)

    def _unregister(self, registration: Registration) -> bool:
        listeners = self._listeners.get(registration.map_name)
        if listeners is None:
            return False
        rid = registration.registration_id
        if registration.event_message_type == NEAR_CACHE_INVALIDATION_EVENT:
            return listeners.near_cache.pop(rid, None) is not None
        if registration.key is None:
            return listeners.map_wide.pop(rid, None) is not None
        for_key = listeners.by_key.get(registration.key)
        if not for_key or for_key.pop(rid, None) is None:
            return False
        if not for_key:
            del listeners.by_key[registration.key]
        return True

    def remove_entry_listener(self, conn: Connection, req: Request) -> None:
        rid = req.fixed_uuid(0)
        req.string()  # map name: the registration id alone identifies the listener
        registration = conn.registrations.pop(rid, None)
        removed = isinstance(registration, Registration) and self._unregister(registration)
        conn.send(Out.response(REMOVE_ENTRY_LISTENER + 1, req.correlation_id, 1).put_bool(0, removed).finish())

    def listener_count(self) -> int:
        return sum(len(s.map_wide) + len(s.near_cache) + sum(len(v) for v in s.by_key.values())
                   for s in self._listeners.values())
