"""The OBF hot loop's state on hand-fed depth updates: the book guard, bars on market time, dark symbols."""

from __future__ import annotations

import logging
import math

import pytest

from dolphin.market.payloads import DepthUpdate
from dolphin.services.obf.ingest import UNKNOWN_SYMBOL, UniverseBooks

pytestmark = [pytest.mark.data_integrity]

BAR = 5_000
T0 = 1_767_657_600_000           # a bar boundary


def depth(symbol: str, e: int, bid: float = 99.9, ask: float = 100.1, qty: float = 2.0,
          bids: tuple | None = None, asks: tuple | None = None) -> DepthUpdate:
    b = bids if bids is not None else ((bid, qty), (bid - 0.1, qty))
    a = asks if asks is not None else ((ask, qty), (ask + 0.1, qty))
    return DepthUpdate(event_time=e, transaction_time=e, symbol=symbol, first_update_id=1, final_update_id=2,
                       prev_final_update_id=0, bids=b, asks=a)


def test_valid_books_become_the_latest_and_bad_ones_are_dropped_by_reason(caplog: pytest.LogCaptureFixture) -> None:
    books = UniverseBooks(["BTCUSDT", "ETHUSDT"], log=logging.getLogger("t.obf"))
    good = depth("BTCUSDT", T0 + 10)
    with caplog.at_level(logging.WARNING, logger="t.obf"):
        assert books.on_depth(good) is None
        for i in range(3):  # the same problem three times: counted three times, logged once
            books.on_depth(depth("BTCUSDT", T0 + 20 + i, bid=100.2, ask=100.1))                 # crossed
        books.on_depth(depth("BTCUSDT", T0 + 30, qty=math.nan))                                  # NaN sizes
        books.on_depth(depth("BTCUSDT", T0 + 31, bids=()))                                       # one-sided
        books.on_depth(depth("ETHUSDT", T0 + 32, asks=((100.1, -1.0),)))                         # negative size
        books.on_depth(depth("DOGEUSDT", T0 + 33))                                               # not ours
    assert books.latest["BTCUSDT"] is good and "ETHUSDT" not in books.latest
    assert dict(books.counters.dropped) == {"crossed": 3, "bad level": 2, "one-sided": 1, UNKNOWN_SYMBOL: 1}
    assert books.counters.messages == 8 and books.counters.accepted == 1
    lines = [r.getMessage() for r in caplog.records]
    assert sum("crossed book of BTCUSDT" in line for line in lines) == 1
    assert len(lines) == 5                                        # one line per (symbol, reason)


def test_bars_close_on_market_time_with_the_books_standing_before_the_next_bar() -> None:
    books = UniverseBooks(["BTCUSDT", "ETHUSDT"])
    first = depth("BTCUSDT", T0 + 100)
    eth = depth("ETHUSDT", T0 + 4_900)
    later = depth("BTCUSDT", T0 + 4_999, bid=99.8)
    for msg in (first, eth, later):
        assert books.on_depth(msg) is None                        # still inside the first bar
    nxt = depth("BTCUSDT", T0 + 5_000, bid=99.7)                  # the next bar's first update closes it
    closed = books.on_depth(nxt)
    assert closed is not None and closed.close_ms == T0 + BAR and closed.index == T0 // BAR
    assert closed.books == {"BTCUSDT": later, "ETHUSDT": eth}     # not the update that closed it
    assert books.latest["BTCUSDT"] is nxt
    late = depth("ETHUSDT", T0 + 4_950)                           # a lagging connection's update of the closed bar
    assert books.on_depth(late) is None and books.latest["ETHUSDT"] is late
    jump = books.on_depth(depth("BTCUSDT", T0 + 3 * BAR + 1))     # a hole: the open bar closes, nothing in between
    assert jump is not None and jump.close_ms == T0 + 2 * BAR and books.counters.bars == 2


def test_a_quiet_symbol_goes_dark_once_and_an_update_clears_it(caplog: pytest.LogCaptureFixture) -> None:
    books = UniverseBooks(["BTCUSDT", "ETHUSDT"], dark_bars=3, log=logging.getLogger("t.dark"))
    books.on_depth(depth("ETHUSDT", T0 + 1))
    closed = []
    with caplog.at_level(logging.WARNING, logger="t.dark"):
        for k in range(1, 7):                                     # only BTC speaks from now on
            c = books.on_depth(depth("BTCUSDT", T0 + k * BAR + 1))
            assert c is not None
            closed.append(c)
    assert "ETHUSDT" in books.dark and books.counters.dark_events == 1
    assert [("ETHUSDT" in c.books) for c in closed] == [True, True, True, False, False, False]
    assert sum("dark" in r.getMessage() for r in caplog.records) == 1
    assert books.covered == 1
    books.on_depth(depth("ETHUSDT", T0 + 6 * BAR + 2))
    assert "ETHUSDT" not in books.dark and books.covered == 2
    c = books.on_depth(depth("BTCUSDT", T0 + 7 * BAR + 1))
    assert c is not None and "ETHUSDT" in c.books


def test_a_symbol_that_never_spoke_goes_dark_too() -> None:
    books = UniverseBooks(["BTCUSDT", "ETHUSDT"], dark_bars=2)
    for k in range(3):
        books.on_depth(depth("BTCUSDT", T0 + k * BAR + 1))
    assert books.dark == {"ETHUSDT"}
