"""The priority symbols' bar close on the hot path: features computed ahead per update are the ones the close
would compute (bit for bit), and the first push goes before the rest of the universe is computed."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import pytest

from dolphin.market.ob_features import AssetTracker, snapshot_of
from dolphin.services.obf import ObfDaemon, ObfOptions, ObfStats
from dolphin.services.obf.service import PriorityBar, resolve_settings
from dolphin.services.runtime import ServiceContext
from tests.unit.obf.test_ingest import BAR, T0, depth

pytestmark = [pytest.mark.data_integrity]

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "SYN001USDT"]
PRIORITY = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def _daemon(home: Path) -> ObfDaemon:
    cfg = resolve_settings(ObfOptions(rest_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9", symbols=tuple(SYMBOLS),
                                      priority=PRIORITY, warmup_s=0.0, history=False))
    return ObfDaemon(ServiceContext(name="obf", log=logging.getLogger("t.obf"), home=home), cfg, SYMBOLS, ObfStats())


def test_features_computed_ahead_equal_the_ones_computed_at_the_close(tmp_path: Path) -> None:
    """Random books, some symbols silent for whole bars (their close falls back to computing then): every
    priority symbol's features of every bar equal a plain tracker's fed the same closed books."""
    daemon = _daemon(tmp_path)
    rng = random.Random(7)
    mids = {s: 100.0 * (i + 1) for i, s in enumerate(SYMBOLS)}
    for tick in range(40 * 10):                                   # 40 bars of 10 ticks of 500 ms
        e = T0 + tick * 500
        for symbol in SYMBOLS:
            if rng.random() < (0.97 if tick // 10 % 7 == 3 else 0.2):   # a silent bar now and then, gaps always
                continue
            mids[symbol] *= 1.0 + rng.gauss(0.0, 0.002)
            m = mids[symbol]
            daemon.on_message(depth(symbol, e + rng.randrange(400), bid=m * 0.9998, ask=m * 1.0002,
                                    qty=rng.uniform(0.1, 9.0)))
    reference = {s: AssetTracker() for s in SYMBOLS}
    bars = 0
    while not daemon.closed.empty():
        bar: PriorityBar = daemon.closed.get_nowait()
        assert bar.closed.close_ms % BAR == 0 and [s for s, _ in bar.features] == [
            s for s in PRIORITY if s in bar.closed.books]
        for symbol, features in bar.features:
            book = bar.closed.books[symbol]
            assert features == reference[symbol].close_bar(snapshot_of(book.bids, book.asks)), (symbol, bars)
        assert bar.macro is not None and bar.macro.assets == len(bar.features)
        bars += 1
    assert bars >= 35
    assert 0 < daemon.stats.closed_ahead < bars * len(PRIORITY)     # both paths ran


def test_the_rest_of_the_universe_waits_for_the_priority_push_only_while_the_bus_can_take_it(tmp_path: Path) -> None:
    """No bus client (start-up, an outage): the worker does not wait; the rest is computed and recorded."""
    daemon = _daemon(tmp_path)
    for symbol in SYMBOLS:
        daemon.on_message(depth(symbol, T0 + 10))
    daemon.on_message(depth("BTCUSDT", T0 + BAR + 10))            # closes the first bar
    bar = daemon.closed.get_nowait()
    assert [s for s, _ in bar.features] == list(PRIORITY) and bar.warm

    async def rest() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await daemon.close_rest(bar, head_start_s=30.0)
        return loop.time() - t0

    assert asyncio.run(rest()) < 10.0                              # not the 30 s head start: nothing to wait for
    assert daemon.stats.bars_closed == 1 and daemon.stats.bars_published == 1
    assert set(daemon.publisher.latest_features) == set(SYMBOLS)
    docs = daemon.publisher.latest_features
    assert len({d.timestamp for d in docs.values()}) == 1 and {d.bar_ms for d in docs.values()} == {T0 + BAR}
