"""`ObfPublisher.push_now` on a real embedded member: the bar close's push leaves from the caller's frame.

The bar-closing depth update offers the priority symbols' documents and the macro and calls
`push_now`; when the writer task is idle with the circuit closed and the maps open, the
requests are written before the call returns (a listener in another client hears them while
this thread blocks its own event loop), the writer task only settles the acknowledgement, and
every case where it cannot (first push, circuit open, nothing pending) leaves the values to
the writer's next turn. A push whose client cannot send is a failed push like any other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from dolphin.bus import (
    AsyncBus,
    BusSettings,
    ObFeatures,
    ObMacro,
    ThreadQueue,
    connect,
    connect_async,
    schema,
    shard_map_name,
    subscribe,
)
from dolphin.bus.member import EmbeddedMember
from dolphin.enums import CircuitState
from dolphin.services.obf.breaker import CircuitBreaker
from dolphin.services.obf.publisher import ObfPublisher

pytestmark = [pytest.mark.data_integrity]

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
WAIT_S = 30.0
BAR0 = int(time.time() * 1000) // 5_000 * 5_000


def _features(bar_ms: int) -> dict[str, ObFeatures]:
    return {s: ObFeatures(imbalance=0.1 * i, fill_probability=0.5, depth_quality=1.0, regime_signal=0.0,
                          imbalance_ma5=0.1, imbalance_persistence=0.5, withdrawal_velocity=0.0, timestamp=time.time(),
                          bar_ms=bar_ms, spread_bps=1.0, depth_1pct_usd=1e6) for i, s in enumerate(SYMBOLS)}


def _macro(bar_ms: int) -> ObMacro:
    return ObMacro(bar_ms=bar_ms, cascade_count=0, regime_signal=0.0, market_imbalance=0.0, assets=len(SYMBOLS),
                   pushed_at=time.time())


def _offer(pub: ObfPublisher, bar_ms: int) -> None:
    pub.offer_features(_features(bar_ms), bar_ms)
    pub.offer_macro(_macro(bar_ms))


async def _until(what: str, check: object) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_the_bar_close_push_leaves_from_the_callers_frame_and_falls_back_to_the_writer(
        member: EmbeddedMember, tmp_path: Path) -> None:
    heard = ThreadQueue()
    reader = connect(BusSettings(members=(member.address,), connect_timeout_s=10.0))
    subscribe(reader, shard_map_name("BTCUSDT"), heard, key="BTCUSDT", source="test")
    subscribe(reader, schema.FEATURES, heard, key=schema.OB_MACRO_LATEST, source="test")

    def next_bars(n: int) -> list[tuple[str, int]]:
        """The next ``n`` documents the reader heard (blocking this thread, and so the publisher's loop)."""
        out = []
        while len(out) < n:
            event = heard.get(timeout=WAIT_S)
            if event.payload is not None:
                out.append((event.key, event.payload.bar_ms))
        return out

    async def scenario() -> None:
        client = await connect_async(BusSettings(members=(member.address,), connect_timeout_s=10.0))
        bus = AsyncBus(client)
        pub = ObfPublisher(lambda: bus, logging.getLogger("t.obf.pub"), home=tmp_path,
                           breaker=CircuitBreaker(2, backoff_s=0.2, backoff_max_s=0.2), timeout_s=2.0)
        writer = asyncio.create_task(pub.run())
        try:
            bar1, bar2, bar3, bar4 = (BAR0 + i * 5_000 for i in range(4))
            _offer(pub, bar1)
            assert pub.push_now() is False                 # the maps are not open yet: the writer's first push
            assert await pub.wait_pushed(bar1, WAIT_S)
            assert sorted(next_bars(2)) == sorted([("BTCUSDT", bar1), (schema.OB_MACRO_LATEST, bar1)])
            assert pub.push_now() is False                 # nothing pending
            assert await pub.wait_idle(WAIT_S)

            _offer(pub, bar2)
            assert pub.push_now() is True
            # this thread blocks the loop now: only requests written before push_now returned can be heard
            assert sorted(next_bars(2)) == sorted([("BTCUSDT", bar2), (schema.OB_MACRO_LATEST, bar2)])
            assert await pub.wait_pushed(bar2, WAIT_S) and pub.acked_bar_ms == bar2
            assert pub.pushed_now == 1 and pub.push_failures == 0 and pub.state is CircuitState.CLOSED
            assert await pub.wait_idle(WAIT_S)

            for _ in range(pub.breaker.threshold):         # the circuit opens: push_now leaves it to the writer
                pub.breaker.record_failure()
            _offer(pub, bar3)
            assert pub.state is CircuitState.OPEN and pub.push_now() is False
            assert pub.pushed_now == 1
            await _until("the writer's probe to close the circuit", lambda: pub.state is CircuitState.CLOSED)
            await _until("bar 3 on the bus", lambda: pub.acked_bar_ms == bar3)
            assert sorted(next_bars(2)) == sorted([("BTCUSDT", bar3), (schema.OB_MACRO_LATEST, bar3)])
            assert await pub.wait_idle(WAIT_S)

            await client.shutdown()                        # a push that cannot leave: failed, values kept
            _offer(pub, bar4)
            assert pub.push_now() is True
            await _until("the failed push to be counted", lambda: pub.push_failures >= 1)
            assert pub.acked_bar_ms == bar3 and pub.latest_bar_ms == bar4
            assert pub.pushed_documents == 3 * (len(SYMBOLS) + 1)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    try:
        asyncio.run(scenario())
    finally:
        reader.shutdown()
