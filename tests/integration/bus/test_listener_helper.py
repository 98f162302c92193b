"""The listener helper: events leave the client's threads validated, or not at all."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import hazelcast
import pytest

from dolphin.bus import (
    AcbBoost,
    AsyncQueue,
    Bus,
    BusCodec,
    LatestState,
    SafetyState,
    ThreadQueue,
    connect,
    connect_async,
    schema,
    subscribe,
    subscribe_async,
)
from tests.integration.bus.conftest import Backend
from tests.integration.bus.support import wait_until


@pytest.fixture
def clients(backend: Backend) -> Iterator[tuple[hazelcast.HazelcastClient, hazelcast.HazelcastClient]]:
    settings = backend.settings()
    listener, writer = connect(settings), connect(settings)
    yield listener, writer
    listener.shutdown()
    writer.shutdown()


def _boost(b: float) -> AcbBoost:
    return AcbBoost(boost=b, beta=0.2, pushed_at=time.time())


def test_latest_state_gets_validated_payloads_and_pending_flags(clients, name: str) -> None:  # type: ignore[no-untyped-def]
    listener, writer = clients
    codec = BusCodec()
    state = LatestState()
    map_name = schema.FEATURES
    subscription = subscribe(listener, map_name, state, key=schema.ACB_BOOST, codec=codec, source="test listener")
    bus = Bus(writer)
    raw = writer.get_map(map_name).blocking()
    bus.put(map_name, schema.ACB_BOOST, _boost(1.1))
    wait_until(lambda: state.latest(map_name, schema.ACB_BOOST) == _boost_eq(1.1))
    event = state.take(map_name, schema.ACB_BOOST)
    assert event is not None and event.kind in ("ADDED", "UPDATED") and event.payload.boost == 1.1
    assert state.take(map_name, schema.ACB_BOOST) is None  # consumed

    raw.put(schema.ACB_BOOST, '{"boost": "high", "beta": 0.2}')  # wrong type: rejected, not delivered
    raw.put(schema.ACB_BOOST, '{"boost": 1.5, "beta": 0.2, "_pushed_at": 9999999999}')  # future timestamp
    bus.put(map_name, schema.ACB_BOOST, _boost(1.2))
    wait_until(lambda: state.latest(map_name, schema.ACB_BOOST) == _boost_eq(1.2))
    assert codec.rejections.count(reason="schema") == 1
    assert codec.rejections.count(reason="future_timestamp") == 1
    assert state.take(map_name, schema.ACB_BOOST).payload.boost == 1.2  # type: ignore[union-attr]

    raw.delete(schema.ACB_BOOST)
    wait_until(lambda: state.latest(map_name, schema.ACB_BOOST) is None)
    assert state.take(map_name, schema.ACB_BOOST).kind == "REMOVED"  # type: ignore[union-attr]
    subscription.close()


class _boost_eq:
    """Compares equal to an AcbBoost with this boost (the timestamps differ)."""

    def __init__(self, boost: float) -> None:
        self.boost = boost

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AcbBoost) and other.boost == self.boost


def test_latest_state_wait_and_take_all(clients) -> None:  # type: ignore[no-untyped-def]
    listener, writer = clients
    state = LatestState()
    subscribe(listener, schema.SAFETY, state)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(state.wait(30)))
    waiter.start()
    Bus(writer).put(schema.SAFETY, schema.LATEST, SafetyState(posture="TURTLE", rm=0.55, timestamp=time.time()))
    waiter.join(30)
    assert got == [True]
    changes = state.take_all()
    assert list(changes) == [(schema.SAFETY, schema.LATEST)]
    assert changes[(schema.SAFETY, schema.LATEST)].payload.posture == "TURTLE"
    assert state.take_all() == {}


def test_thread_queue_for_a_worker_thread(clients, name: str) -> None:  # type: ignore[no-untyped-def]
    listener, writer = clients
    q = ThreadQueue(maxsize=100)
    subscribe(listener, schema.PNL_BLUE, q)
    raw = writer.get_map(schema.PNL_BLUE).blocking()
    raw.put("not-a-date", "{}")  # key outside the schema: rejected
    raw.put("2026-01-05", '{"date": "2026-01-05", "pnl": 12.5, "capital": 25012.5, "trades": 3, "boost": 1.0, '
                          '"beta": 0.2, "mc_status": "GREEN"}')
    event = q.get(timeout=20)
    assert event.key == "2026-01-05" and event.payload.pnl == 12.5
    raw.delete("2026-01-05")
    assert q.get(timeout=20).kind == "REMOVED"


def test_async_queue_with_the_asyncio_client(backend: Backend) -> None:
    settings = backend.settings()

    async def scenario() -> list[tuple[str, float | None]]:
        listener = await connect_async(settings)
        writer = await connect_async(settings)
        try:
            q = AsyncQueue()
            sub = await subscribe_async(listener, schema.FEATURES, q, key=schema.ACB_BOOST)
            m = await writer.get_map(schema.FEATURES)
            await m.put(schema.ACB_BOOST, "{broken")
            for b in (1.1, 1.3):
                await m.put(schema.ACB_BOOST, BusCodec().encode(schema.FEATURES, schema.ACB_BOOST, _boost(b)))
            await m.delete(schema.ACB_BOOST)
            seen = []
            for _ in range(3):
                event = await asyncio.wait_for(q.get(), 20)
                seen.append((event.kind, event.payload.boost if event.payload else None))
            await sub.aclose()
            return seen
        finally:
            await listener.shutdown()
            await writer.shutdown()

    seen = asyncio.run(scenario())
    assert [b for _, b in seen] == [1.1, 1.3, None] and seen[-1][0] == "REMOVED"


def test_async_queue_drops_the_oldest_when_full() -> None:
    async def scenario() -> tuple[int, list[str]]:
        from dolphin.bus import BusEvent

        q = AsyncQueue(maxsize=2)
        for i in range(5):
            q.deliver(BusEvent("m", f"k{i}", "ADDED", None, 0.0))
        await asyncio.sleep(0)
        return q.dropped, [q.get_nowait().key for _ in range(q.qsize())]

    dropped, keys = asyncio.run(scenario())
    assert dropped == 3 and keys == ["k3", "k4"]


def test_a_failing_sink_never_reaches_the_client_thread(clients) -> None:  # type: ignore[no-untyped-def]
    listener, writer = clients

    class Broken:
        calls = 0

        def deliver(self, event: object) -> None:
            Broken.calls += 1
            raise RuntimeError("consumer bug")

    ok = LatestState()
    subscribe(listener, schema.HEARTBEAT, Broken())
    subscribe(listener, schema.HEARTBEAT, ok)
    raw = writer.get_map(schema.HEARTBEAT).blocking()
    for i in range(3):
        raw.put(schema.LATEST, f'{{"ts": {time.time()}, "service": "s{i}"}}')
    wait_until(lambda: ok.delivered == 3)
    assert Broken.calls == 3
    assert listener.lifecycle_service.is_running()


def test_clear_all_empties_the_latest_state_of_that_map(clients) -> None:  # type: ignore[no-untyped-def]
    from dolphin.bus.listeners import ALL_KINDS

    listener, writer = clients
    state = LatestState()
    subscribe(listener, schema.HEARTBEAT, state, kinds=ALL_KINDS | {"CLEAR_ALL"})
    raw = writer.get_map(schema.HEARTBEAT).blocking()
    raw.put(schema.LATEST, f'{{"ts": {time.time()}}}')
    wait_until(lambda: state.latest(schema.HEARTBEAT, schema.LATEST) is not None)
    raw.clear()
    wait_until(lambda: state.latest(schema.HEARTBEAT, schema.LATEST) is None)
    assert state.take(schema.HEARTBEAT, "").kind == "CLEAR_ALL"  # type: ignore[union-attr]
