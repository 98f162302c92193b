"""OBF's collector policy: no automatic full pass while the daemon runs; the bar worker runs it between bars,
at the collector's own cadence, and the thresholds come back when the daemon stops."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from dolphin.services.obf.service import FULL_GC_EVERY, defer_full_gc, full_gc_due
from tests.unit.obf.test_ingest import BAR, T0, depth
from tests.unit.obf.test_priority_close import SYMBOLS, _daemon


@pytest.fixture
def deferred() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    saved = defer_full_gc()
    gc.collect()           # counts from zero: whatever this worker ran before, a full pass is not due yet
    try:
        yield saved
    finally:
        gc.set_threshold(*saved)
    assert gc.get_threshold() == before


def _make_cyclic_garbage_until_a_full_pass_is_due() -> None:
    for _ in range(10_000):
        if full_gc_due():
            return
        for _ in range(1_000):
            cycle: list[object] = []
            cycle.append(cycle)
    raise AssertionError("the collector's middle passes never added up to a full pass")


def test_young_passes_stay_automatic_and_full_passes_wait(deferred: tuple[int, int, int]) -> None:
    gen0, gen1, _ = deferred
    assert gc.get_threshold()[:2] == (gen0, gen1)               # young passes as before
    full_before = gc.get_stats()[2]["collections"]
    young_before = gc.get_stats()[0]["collections"]
    _make_cyclic_garbage_until_a_full_pass_is_due()
    assert gc.get_count()[2] >= FULL_GC_EVERY
    assert gc.get_stats()[0]["collections"] > young_before
    assert gc.get_stats()[2]["collections"] == full_before      # none ran by itself


def test_the_bar_worker_runs_a_due_full_pass_once_the_bar_is_done(deferred: tuple[int, int, int],
                                                                  tmp_path: Path) -> None:
    daemon = _daemon(tmp_path)
    for symbol in SYMBOLS:
        daemon.on_message(depth(symbol, T0 + 10))
    daemon.on_message(depth("BTCUSDT", T0 + BAR + 10))            # closes the first bar

    async def worker() -> None:
        task = asyncio.create_task(daemon.bar_worker())
        try:
            while daemon.stats.bars_closed < 1:
                await asyncio.sleep(0.001)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    _make_cyclic_garbage_until_a_full_pass_is_due()
    full_before = gc.get_stats()[2]["collections"]
    asyncio.run(worker())
    assert daemon.stats.full_collections == 1 and gc.get_stats()[2]["collections"] == full_before + 1
    assert not full_gc_due()


def test_a_worker_that_never_catches_up_still_collects(deferred: tuple[int, int, int]) -> None:
    _make_cyclic_garbage_until_a_full_pass_is_due()
    assert full_gc_due(idle=True)
    assert full_gc_due(idle=False) is (gc.get_count()[2] >= 2 * FULL_GC_EVERY)
    while not full_gc_due(idle=False):
        for _ in range(1_000):
            cycle: list[object] = []
            cycle.append(cycle)
    assert gc.get_count()[2] >= 2 * FULL_GC_EVERY
