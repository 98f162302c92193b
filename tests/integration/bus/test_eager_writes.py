"""`AsyncBus.put_all_now` (`dolphin.bus.eager_writes`) on the embedded member and on real Hazelcast.

It reaches into the pinned client's internals to send a map's ``put_all`` from the caller's
frame; these tests pin what it must keep: the requests are on the wire before it returns
(the writer's loop is blocked while another client sees them), the writes land as the
client's own ``put_all`` would (values, entry events, other clients' near caches), and a
client that cannot send fails the returned future instead of raising or hanging.
"""

from __future__ import annotations

import asyncio
import queue
import time
from typing import Any

import hazelcast
import pytest

from dolphin.bus import AsyncBus, ObFeatures, connect, connect_async, default_codec, schema
from tests.integration.bus.conftest import Backend

SHARD = schema.SHARD_MAPS[0]
WAIT_S = 30.0
BAR0 = int(time.time() * 1000) // 5_000 * 5_000


def _doc(bar_ms: int, imbalance: float) -> ObFeatures:
    return ObFeatures(imbalance=imbalance, fill_probability=0.5, depth_quality=1.0, regime_signal=0.0,
                      imbalance_ma5=imbalance, imbalance_persistence=0.5, withdrawal_velocity=0.0,
                      timestamp=time.time(), bar_ms=BAR0 + bar_ms, spread_bps=1.0, depth_1pct_usd=1e6)


def _decoded(raw: Any, key: str) -> tuple[int, float]:
    doc = default_codec.decode(SHARD, key, raw)
    assert isinstance(doc, ObFeatures)
    return doc.bar_ms, doc.imbalance


def _values(docs: dict[str, ObFeatures]) -> dict[str, tuple[int, float]]:
    return {k: (d.bar_ms, d.imbalance) for k, d in docs.items()}


@pytest.mark.parametrize("smart", [True, False], ids=["smart", "unisocket"])
def test_writes_are_on_the_wire_before_the_call_returns_and_land_like_put_all(backend: Backend, name: str,
                                                                              smart: bool) -> None:
    keys = [f"{name.upper()}{i:02d}USDT" for i in range(40)]          # spread over many partitions
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    reader = connect(backend.settings(), client_name="eager-reader")
    try:
        shard = reader.get_map(SHARD).blocking()
        shard.add_entry_listener(include_value=True, added_func=lambda e: events.put((e.key, e.value)),
                                 updated_func=lambda e: events.put((e.key, e.value)))
        old = {k: _doc(0, 0.1) for k in keys[:5]}
        shard.put_all({k: default_codec.encode(SHARD, k, d) for k, d in old.items()})
        for k in old:                                         # the reader's near cache now holds the old values
            assert _decoded(shard.get(k), k) == _values(old)[k]
        for _ in old:
            events.get(timeout=WAIT_S)

        async def scenario() -> None:
            client = await connect_async(backend.settings(smart_routing=smart), client_name="eager-writer")
            try:
                bus = AsyncBus(client)
                await bus.open_maps([SHARD])
                new = {k: _doc(5_000, i / 100.0) for i, k in enumerate(keys)}
                sent = bus.put_all_now(SHARD, new)
                # This thread now blocks its own event loop: only requests already written can reach the
                # members, and the reader's client (its own threads) hears every one of them.
                heard = dict(events.get(timeout=WAIT_S) for _ in keys)
                assert {k: _decoded(v, k) for k, v in heard.items()} == _values(new)
                assert not sent.done() or sent.exception() is None
                await asyncio.wait_for(sent, WAIT_S)                  # acknowledged like a put_all
                again = {k: _doc(10_000, 0.9) for k in keys[:3]}
                await asyncio.wait_for(bus.put_all_now(SHARD, again), WAIT_S)   # keys known: the cached path
                assert {k: _decoded(v, k) for k, v in (events.get(timeout=WAIT_S) for _ in again)} == _values(again)
                with pytest.raises(TypeError):                          # the schema refuses it before sending
                    bus.put_all_now(SHARD, {keys[0]: "not a document"})
                assert await asyncio.wait_for(bus.put_all_now(SHARD, {}), WAIT_S) == []
            finally:
                await client.shutdown()

        asyncio.run(scenario())
        final = _values({k: _doc(10_000, 0.9) if k in keys[:3] else _doc(5_000, i / 100.0) for i, k in enumerate(keys)})
        deadline = time.monotonic() + WAIT_S                      # near-cache invalidations arrive on their own
        while time.monotonic() < deadline and any(_decoded(shard.get(k), k) != final[k] for k in old):
            time.sleep(0.05)
        assert {k: _decoded(shard.get(k), k) for k in keys} == final
        assert events.empty()                                    # one event per write, none twice
    finally:
        reader.shutdown()


def test_a_client_that_cannot_send_fails_the_future(backend: Backend, name: str) -> None:
    async def scenario() -> BaseException | None:
        client = await connect_async(backend.settings(), client_name="eager-shut")
        bus = AsyncBus(client)
        await bus.open_maps([SHARD])
        await client.shutdown()
        sent = bus.put_all_now(SHARD, {f"{name.upper()}USDT": _doc(0, 0.2)})
        try:
            await asyncio.wait_for(sent, WAIT_S)
        except Exception as exc:  # noqa: BLE001 - the failure is what is asserted
            return exc
        return None

    error = asyncio.run(scenario())
    assert isinstance(error, hazelcast.errors.HazelcastError), error
