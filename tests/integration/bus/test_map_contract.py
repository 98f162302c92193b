"""IMap contract: the official client (threaded/asyncio × smart/unisocket) against the embedded member
and a real Hazelcast cluster (the `backend` parameter, conftest.py)."""

from __future__ import annotations

import time

import pytest

from dolphin.bus.member import EmbeddedMember
from tests.integration.bus.conftest import Backend
from tests.integration.bus.support import Driver, EventLog, wait_until

ADDED, REMOVED, UPDATED, EXPIRED, CLEAR_ALL = 1, 2, 4, 16, 64


def test_every_supported_map_operation(driver: Driver, name: str) -> None:
    m = driver.map(name)
    assert m.put("a", "1") is None
    assert m.put("a", "2") == "1"
    m.set("b", "x")
    assert m.get("a") == "2" and m.get("b") == "x" and m.get("zz") is None
    assert m.contains_key("a") and not m.contains_key("zz")
    assert m.size() == 2
    assert set(m.key_set()) == {"a", "b"}
    assert sorted(m.values()) == ["2", "x"]
    assert dict(m.entry_set()) == {"a": "2", "b": "x"}
    assert m.get_all(["a", "zz", "b"]) == {"a": "2", "b": "x"}
    m.put_all({"c": "3", "d": "4", "a": "5"})
    assert m.size() == 4 and m.get("a") == "5"
    assert m.remove("c") == "3"
    assert m.remove("c") is None
    m.delete("d")
    assert not m.contains_key("d")
    m.put(7, {"nested": [1, 2]})  # any serializable key/value: the member stores opaque bytes
    assert m.get(7) == {"nested": [1, 2]}
    m.clear()
    assert m.size() == 0 and m.key_set() == []
    # a cluster lists a new object on its other members asynchronously: the listing catches up
    wait_until(lambda: name in driver.distributed_object_names())


def test_ttl_expires_entries(driver: Driver, name: str) -> None:
    m = driver.map(name)
    m.put("short", "v", ttl=0.2)
    m.set("also-short", "v", ttl=0.2)
    m.put("long", "v", ttl=600)
    m.put("forever", "v")
    m.put("zero", "v", ttl=0)  # 0 = no expiry
    wait_until(lambda: m.get("short") is None and m.get("also-short") is None)
    assert m.get("long") == m.get("forever") == m.get("zero") == "v"
    assert m.size() == 3


def test_rewriting_without_ttl_makes_an_entry_permanent(driver: Driver, name: str) -> None:
    m = driver.map(name)
    m.put("k", "v1", ttl=0.2)
    m.put("k", "v2")
    time.sleep(0.5)
    assert m.get("k") == "v2"


@pytest.mark.parametrize("include_value", [True, False], ids=["with-values", "without-values"])
def test_listener_on_a_second_client_sees_every_event_kind(driver: Driver, observer: Driver, name: str,
                                                           include_value: bool) -> None:
    events = EventLog()
    listen = driver.map(name)
    listen.add_entry_listener(include_value=include_value, added_func=events, updated_func=events,
                              removed_func=events, expired_func=events)
    w = observer.map(name)
    w.put("k", "v1")
    w.put("k", "v2")
    w.remove("k")
    w.set("t", "tv", ttl=0.2)
    got = by_key(events.wait_for(5))  # order holds per key; across keys (partitions, members) it need not
    if include_value:
        assert got == {"k": [(ADDED, "k", "v1", None), (UPDATED, "k", "v2", "v1"), (REMOVED, "k", None, "v2")],
                       "t": [(ADDED, "t", "tv", None), (EXPIRED, "t", None, "tv")]}
    else:
        assert got == {"k": [(ADDED, "k", None, None), (UPDATED, "k", None, None), (REMOVED, "k", None, None)],
                       "t": [(ADDED, "t", None, None), (EXPIRED, "t", None, None)]}


def by_key(events: list[tuple[int, object, object, object]]) -> dict[object, list[tuple[int, object, object, object]]]:
    grouped: dict[object, list[tuple[int, object, object, object]]] = {}
    for event in events:
        grouped.setdefault(event[1], []).append(event)
    return grouped


def test_key_listener_sees_only_its_key(driver: Driver, observer: Driver, name: str) -> None:
    events = EventLog()
    driver.map(name).add_entry_listener(include_value=True, key="mine", added_func=events, updated_func=events,
                                        removed_func=events)
    w = observer.map(name)
    w.put("other", "x")
    w.put("mine", "1")
    w.put("other", "y")
    w.put("mine", "2")
    w.delete("other")
    w.delete("mine")  # events arrive in write order, so a stray one would precede this REMOVED
    got = events.wait_for(3)
    # delete() does not read the old value: its REMOVED event carries none (remove() does, see above)
    assert got == [(ADDED, "mine", "1", None), (UPDATED, "mine", "2", "1"), (REMOVED, "mine", None, None)]


def test_listener_flags_are_honoured(driver: Driver, observer: Driver, backend: Backend, name: str) -> None:
    """Only subscribed event types are sent: anything else would crash the client's callback (G6)."""
    events = EventLog()
    driver.map(name).add_entry_listener(include_value=True, added_func=events)
    member = backend.embedded
    sent_before = member.call(lambda m: m.counters["events_sent"]) if member is not None else 0
    w = observer.map(name)
    w.put("a", "1")
    w.put("a", "2")
    w.remove("a")
    w.put("b", "3")
    assert sorted(events.wait_for(2)) == [(ADDED, "a", "1", None), (ADDED, "b", "3", None)]
    if member is not None:  # the embedded member can tell what it sent
        assert member.call(lambda m: m.counters["events_sent"]) - sent_before == 2


def test_clear_all_event_reaches_listeners_that_asked(driver: Driver, observer: Driver, name: str) -> None:
    events = EventLog()
    driver.map(name).add_entry_listener(clear_all_func=events)
    w = observer.map(name)
    w.put_all({"a": "1", "b": "2"})
    w.clear()
    assert events.wait_for(1) == [(CLEAR_ALL, None, None, None)]


def test_removed_listener_gets_nothing_more(driver: Driver, observer: Driver, name: str) -> None:
    events = EventLog()
    m = driver.map(name)
    registration = m.add_entry_listener(include_value=True, added_func=events)
    observer.map(name).put("a", "1")
    events.wait_for(1)
    assert m.remove_entry_listener(registration) is True
    observer.map(name).put("b", "2")
    probe = EventLog()
    m.add_entry_listener(include_value=True, added_func=probe)
    observer.map(name).put("c", "3")
    probe.wait_for(1)
    assert events.snapshot() == [(ADDED, "a", "1", None)]


def test_destroyed_map_leaves_the_object_list(driver: Driver, name: str) -> None:
    m = driver.map(name)
    m.put("a", "1")
    wait_until(lambda: name in driver.distributed_object_names())
    m.destroy()
    # a cluster tells its other members of the destroy asynchronously: the listing catches up
    wait_until(lambda: name not in driver.distributed_object_names())


@pytest.mark.embedded_only
def test_listeners_of_a_closed_client_are_dropped(member: EmbeddedMember, observer: Driver, name: str) -> None:
    gone = Driver("threaded", True, member.address)
    gone.map(name).add_entry_listener(added_func=lambda e: None)
    before = member.call(lambda m: m.maps.listener_count())
    gone.shutdown()
    wait_until(lambda: member.call(lambda m: m.maps.listener_count()) < before)
    observer.map(name).put("a", "1")  # no event is written to a closed connection


def test_put_if_absent_is_empty_and_contains_value(driver: Driver, observer: Driver, name: str) -> None:
    events = EventLog()
    observer.map(name).add_entry_listener(include_value=True, added_func=events, updated_func=events)
    m = driver.map(name)
    assert m.is_empty() is True
    assert m.put_if_absent("k", "v1") is None
    assert m.put_if_absent("k", "v2") == "v1"  # refused: the present value comes back, nothing changes
    assert m.get("k") == "v1" and m.is_empty() is False
    assert m.contains_value("v1") is True and m.contains_value("v2") is False
    m.put("z", "sentinel")  # its event follows any stray one for k
    got = by_key(events.wait_for(2))
    assert got == {"k": [(ADDED, "k", "v1", None)], "z": [(ADDED, "z", "sentinel", None)]}
    assert m.put_if_absent("t", "tv", ttl=0.2) is None
    wait_until(lambda: m.put_if_absent("t", "again") is None)  # free again once the first one expired
    m.clear()
    assert m.is_empty() is True


@pytest.mark.parametrize("kind", ["threaded", "asyncio"])
def test_near_cache_serves_reads_and_a_write_elsewhere_invalidates_it(backend: Backend, observer: Driver, name: str,
                                                                      kind: str) -> None:
    """§15.3's near cache (client side) works against both members: the member sends the invalidations."""
    cached = backend.driver(kind, True, near_caches={name: {"invalidate_on_change": True, "time_to_live": 300}})
    try:
        writer = observer.map(name)
        writer.put("k", "v1")
        m = cached.map(name)
        assert m.get("k") == "v1"
        assert m.get("k") == "v1"
        stats = cached.client._near_cache_manager.get_or_create_near_cache(name).get_statistics()
        assert (stats["misses"], stats["hits"]) == (1, 1)  # the second read never left the process
        writer.put("k", "v2")  # another client: only the member's invalidation can tell this one
        assert wait_until(lambda: m.get("k") == "v2")
        writer.remove("k")
        assert wait_until(lambda: m.get("k") is None)
        writer.put("k", "v3")
        assert wait_until(lambda: m.get("k") == "v3")
        writer.clear()
        assert wait_until(lambda: m.get("k") is None)
    finally:
        cached.shutdown()
