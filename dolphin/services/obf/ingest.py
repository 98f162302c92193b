"""The OBF hot loop's state: the latest valid book per symbol, and bars of market time.

`UniverseBooks.on_depth` runs once per depth update (5,400 a second for 540 symbols at
100 ms) on the event loop and never awaits: it checks the book (`book_problem`: one-sided,
crossed, bad levels → dropped, counted per reason, logged once per symbol and reason),
keeps it as the symbol's latest, and closes bars on the market's clock. The depth
event time ``E`` places an update in its bar (``E // bar_ms``); the first update of a
later bar closes the open one and returns a `ClosedBar` — a copy of the latest books
of the symbols that are not dark — for the bar worker to turn into features off the hot
path. Updates of an already closed bar that arrive late (another connection lagging a
few milliseconds) still become their symbol's latest book, for the next bar.

Dark symbols (bible §20.1 dark streak): a symbol with no update for `dark_bars`
consecutive closed bars is marked dark — counted, logged once — and left out of bars
until its next update clears it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from dolphin.market.ob_features import OB_BAR_MS, book_problem
from dolphin.market.payloads import DepthUpdate

UNKNOWN_SYMBOL = "unknown symbol"


@dataclass(frozen=True, slots=True)
class ClosedBar:
    """One bar of market time, closed: its close time and the books standing then (dark symbols left out)."""

    index: int
    close_ms: int
    books: dict[str, DepthUpdate]


@dataclass
class IngestCounters:
    messages: int = 0                              # depth updates handed to on_depth
    accepted: int = 0                              # … that became a symbol's latest book
    dropped: Counter[str] = field(default_factory=Counter)   # by reason (one-sided, crossed, bad level, …)
    bars: int = 0                                  # bars closed
    dark_events: int = 0                           # symbols that went dark (each time)


class UniverseBooks:
    """Latest books of ``symbols`` and the market-time bar clock (see the module doc)."""

    def __init__(self, symbols: list[str] | tuple[str, ...], *, bar_ms: int = OB_BAR_MS, dark_bars: int = 12,
                 log: logging.Logger | None = None) -> None:
        if bar_ms <= 0 or dark_bars < 1:
            raise ValueError("bar_ms must be positive and dark_bars at least 1")
        self.symbols = tuple(symbols)
        self.known = frozenset(self.symbols)
        self.bar_ms = int(bar_ms)
        self.dark_bars = int(dark_bars)
        self.log = log if log is not None else logging.getLogger("dolphin.obf")
        self.latest: dict[str, DepthUpdate] = {}
        self.last_bar: dict[str, int] = {}         # bar index of each symbol's last update (valid or not)
        self.dark: set[str] = set()
        self.open_bar: int | None = None
        self.first_bar: int | None = None
        self.last_event_ms: int | None = None
        self.counters = IngestCounters()
        self._logged: set[tuple[str, str]] = set()

    # ---------------------------------------------------------------- hot path
    def on_depth(self, msg: DepthUpdate) -> ClosedBar | None:
        """Take one depth update; the bar it closed, if any (see the module doc)."""
        c = self.counters
        c.messages += 1
        event = msg.event_time
        bar = event // self.bar_ms
        closed: ClosedBar | None = None
        open_bar = self.open_bar
        if open_bar is None:
            self.open_bar = self.first_bar = bar
        elif bar > open_bar:
            closed = self._close(open_bar)
            self.open_bar = bar
        if self.last_event_ms is None or event > self.last_event_ms:
            self.last_event_ms = event
        symbol = msg.symbol
        if symbol not in self.known:
            self._drop(symbol, UNKNOWN_SYMBOL)
            return closed
        if bar > self.last_bar.get(symbol, -1):
            self.last_bar[symbol] = bar
        if symbol in self.dark:
            self.dark.discard(symbol)
            self.log.info("obf: %s is back (an update after %d dark bar(s) or more)", symbol, self.dark_bars)
        problem = book_problem(msg.bids, msg.asks)
        if problem is not None:
            self._drop(symbol, problem)
            return closed
        self.latest[symbol] = msg
        c.accepted += 1
        return closed

    def _drop(self, symbol: str, reason: str) -> None:
        self.counters.dropped[reason] += 1
        key = (symbol, reason)
        if key not in self._logged:
            self._logged.add(key)
            self.log.warning("obf: dropped a %s book of %s (further ones of this kind are only counted)", reason,
                             symbol)

    def _close(self, bar: int) -> ClosedBar:
        """Close ``bar``: update dark streaks, copy the books of the symbols that are not dark."""
        self.counters.bars += 1
        first = self.first_bar if self.first_bar is not None else bar
        last_bar = self.last_bar
        newly_dark = []
        for symbol in self.symbols:
            seen = last_bar.get(symbol, first - 1)
            if bar - seen >= self.dark_bars and symbol not in self.dark:
                self.dark.add(symbol)
                newly_dark.append(symbol)
        if newly_dark:
            self.counters.dark_events += len(newly_dark)
            shown = ", ".join(newly_dark[:8]) + (f" and {len(newly_dark) - 8} more" if len(newly_dark) > 8 else "")
            self.log.warning("obf: %d symbol(s) dark (no update for %d bars): %s", len(newly_dark), self.dark_bars,
                             shown)
        if self.dark:
            books = {s: b for s, b in self.latest.items() if s not in self.dark}
        else:
            books = dict(self.latest)
        return ClosedBar(bar, (bar + 1) * self.bar_ms, books)

    # ---------------------------------------------------------------- views
    @property
    def covered(self) -> int:
        """Symbols with a valid book that are not dark."""
        return sum(1 for s in self.latest if s not in self.dark)


__all__ = ["UNKNOWN_SYMBOL", "ClosedBar", "IngestCounters", "UniverseBooks"]
