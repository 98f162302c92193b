"""Bus events off the client's threads and into the code that uses them.

The threaded client runs entry-listener callbacks on its reactor thread (bible
§14.2: "HZ entry listeners run on HZ client pool threads"). A slow or failing callback
there stalls every other callback and every response of that client. So the callback
does only this: decode and validate the JSON (CPU work, outside any lock), wrap it in a
`BusEvent`, and hand it to a sink:

* `LatestState` — latest value per key plus a pending flag per key, under one lock
  (the §14.2 pending-flag pattern): a bar loop drains what changed with `take()`;
* `AsyncQueue` — an asyncio queue fed with ``call_soon_threadsafe``, for asyncio
  services and the TUI; bounded, dropping the oldest event when full (counted);
* `ThreadQueue` — a `queue.Queue` for a worker thread, same bounding.

A bad value is a counted, logged rejection (`BusCodec.accept`) and is not delivered;
nothing raised in the callback ever reaches the client's thread.

`subscribe()` wires a map (optionally one key) of a threaded client to a sink;
`subscribe_async()` does the same for the asyncio client.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

import msgspec

from dolphin.bus.codec import BusCodec, default_codec

log = logging.getLogger("dolphin.bus")

EventKind = Literal["ADDED", "UPDATED", "REMOVED", "EVICTED", "EXPIRED", "CLEAR_ALL"]
_KIND_BY_TYPE: dict[int, EventKind] = {1: "ADDED", 2: "REMOVED", 4: "UPDATED", 8: "EVICTED", 16: "EXPIRED",
                                       64: "CLEAR_ALL"}
ALL_KINDS: frozenset[str] = frozenset(("ADDED", "UPDATED", "REMOVED", "EXPIRED"))
_VALUE_KINDS = ("ADDED", "UPDATED")


class BusEvent(msgspec.Struct, frozen=True):
    """One change of one key (key "" for CLEAR_ALL). `payload` is the validated value for
    ADDED/UPDATED, else None."""

    map_name: str
    key: str
    kind: EventKind
    payload: Any
    received_at: float  # time.time() when the client thread got it


class EventSink(Protocol):
    """Receives events on the client's thread: must be thread-safe and must not block."""

    def deliver(self, event: BusEvent) -> None: ...


# ---------------------------------------------------------------- sinks
class LatestState:
    """Thread-safe latest value per (map, key), with pending flags (bible §14.2).

    Writers (client threads) replace under the lock; readers take a snapshot or drain
    what changed since they last looked. Lock hold time is a dict assignment.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._latest: dict[tuple[str, str], BusEvent] = {}
        self._pending: dict[tuple[str, str], BusEvent] = {}
        self.delivered = 0

    def deliver(self, event: BusEvent) -> None:
        slot = (event.map_name, event.key)
        with self._cond:
            if event.kind in _VALUE_KINDS:
                self._latest[slot] = event
            elif event.kind == "CLEAR_ALL":  # the whole map was cleared: key "" marks it
                for gone in [s for s in self._latest if s[0] == event.map_name]:
                    del self._latest[gone]
            else:
                self._latest.pop(slot, None)
            self._pending[slot] = event
            self.delivered += 1
            self._cond.notify_all()

    def latest(self, map_name: str, key: str) -> Any | None:
        """The current payload of a key, or None if absent/removed."""
        with self._cond:
            event = self._latest.get((map_name, key))
        return event.payload if event is not None else None

    def take(self, map_name: str, key: str) -> BusEvent | None:
        """Consume the pending change of one key (None if nothing changed since the last take)."""
        with self._cond:
            return self._pending.pop((map_name, key), None)

    def take_all(self) -> dict[tuple[str, str], BusEvent]:
        """Consume every pending change at once."""
        with self._cond:
            pending, self._pending = self._pending, {}
        return pending

    def snapshot(self) -> dict[tuple[str, str], BusEvent]:
        with self._cond:
            return dict(self._latest)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a change is pending (True) or the timeout passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._pending), timeout)


class _Dropping:
    """Shared drop-oldest accounting: logged on the first drop, then every 1,000."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dropped = 0

    def note_drop(self) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning("bus: %s is full; dropped the oldest event (%d dropped so far)", self.name, self.dropped)


class AsyncQueue(_Dropping):
    """Events onto an asyncio loop. Create it on (or pass) the loop that consumes it."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, maxsize: int = 10_000) -> None:
        super().__init__("async event queue")
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._queue: asyncio.Queue[BusEvent] = asyncio.Queue(maxsize)

    def deliver(self, event: BusEvent) -> None:
        try:
            self._loop.call_soon_threadsafe(self._put, event)
        except RuntimeError:  # loop closed: the consumer is gone
            pass

    def _put(self, event: BusEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.note_drop()
        self._queue.put_nowait(event)

    async def get(self) -> BusEvent:
        return await self._queue.get()

    def get_nowait(self) -> BusEvent:
        return self._queue.get_nowait()

    def qsize(self) -> int:
        return self._queue.qsize()

    def __aiter__(self) -> AsyncQueue:
        return self

    async def __anext__(self) -> BusEvent:
        return await self._queue.get()


class ThreadQueue(_Dropping):
    """Events for a worker thread (`get(timeout)` blocks)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        super().__init__("thread event queue")
        self._queue: queue.Queue[BusEvent] = queue.Queue(maxsize)
        self._lock = threading.Lock()

    def deliver(self, event: BusEvent) -> None:
        with self._lock:
            while True:
                try:
                    self._queue.put_nowait(event)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.note_drop()
                    except queue.Empty:
                        pass

    def get(self, timeout: float | None = None) -> BusEvent:
        """Next event; raises `queue.Empty` after `timeout`."""
        return self._queue.get(timeout=timeout)

    def qsize(self) -> int:
        return self._queue.qsize()


# ---------------------------------------------------------------- wiring
def make_handler(map_name: str, sink: EventSink, *, codec: BusCodec | None = None,
                 source: str | None = None, clock: Callable[[], float] = time.time) -> Callable[[Any], None]:
    """The client callback: decode, validate, wrap, deliver — and never raise."""
    use_codec = codec if codec is not None else default_codec
    where = source or f"listener on {map_name}"

    def on_event(event: Any) -> None:
        try:
            kind = _KIND_BY_TYPE.get(event.event_type)
            key = event.key
            if kind == "CLEAR_ALL":  # map-wide: no key
                sink.deliver(BusEvent(map_name, "", kind, None, clock()))
                return
            if kind is None or not isinstance(key, str):
                use_codec.rejections.record(f"{map_name}[?]", repr(key), "bad_event",
                                            f"event type {event.event_type} / key {type(key).__name__}", where)
                return
            payload = None
            if kind in _VALUE_KINDS and event.value is not None:
                payload = use_codec.accept(map_name, key, event.value, source=where)
                if payload is None:
                    return
            sink.deliver(BusEvent(map_name, key, kind, payload, clock()))
        except Exception:  # the client's reactor thread must never see an exception
            log.exception("bus: listener on %s failed to deliver an event", map_name)

    return on_event


def _listener_kwargs(handler: Callable[[Any], None], kinds: frozenset[str]) -> dict[str, Any]:
    names = {"ADDED": "added_func", "UPDATED": "updated_func", "REMOVED": "removed_func",
             "EXPIRED": "expired_func", "EVICTED": "evicted_func", "CLEAR_ALL": "clear_all_func"}
    unknown = set(kinds) - set(names)
    if unknown:
        raise ValueError(f"unknown event kinds {sorted(unknown)}")
    return {names[k]: handler for k in kinds}


class Subscription:
    """A registered listener; `close()` removes it (idempotent)."""

    def __init__(self, map_proxy: Any, registration_id: str, map_name: str, key: str | None, is_async: bool) -> None:
        self._map = map_proxy
        self.registration_id = registration_id
        self.map_name = map_name
        self.key = key
        self._async = is_async
        self.closed = False

    def close(self) -> None:
        if self._async:
            raise RuntimeError("use `await subscription.aclose()` for asyncio-client subscriptions")
        if not self.closed:
            self.closed = True
            self._map.remove_entry_listener(self.registration_id)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await self._map.remove_entry_listener(self.registration_id)


def subscribe(client: Any, map_name: str, sink: EventSink, *, key: str | None = None,
              kinds: frozenset[str] = ALL_KINDS, codec: BusCodec | None = None,
              source: str | None = None) -> Subscription:
    """Listen to a map (or one key) of a threaded client; events go to `sink`."""
    handler = make_handler(map_name, sink, codec=codec, source=source)
    m = client.get_map(map_name).blocking()
    registration = m.add_entry_listener(include_value=True, key=key, **_listener_kwargs(handler, kinds))
    return Subscription(m, registration, map_name, key, is_async=False)


async def subscribe_async(client: Any, map_name: str, sink: EventSink, *, key: str | None = None,
                          kinds: frozenset[str] = ALL_KINDS, codec: BusCodec | None = None,
                          source: str | None = None) -> Subscription:
    """Listen to a map (or one key) of an asyncio client; events go to `sink`."""
    handler = make_handler(map_name, sink, codec=codec, source=source)
    m = await client.get_map(map_name)
    registration = await m.add_entry_listener(include_value=True, key=key, **_listener_kwargs(handler, kinds))
    return Subscription(m, registration, map_name, key, is_async=True)
