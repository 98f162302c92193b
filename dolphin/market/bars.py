"""Bar building: market messages → closed 5-second bars, labelled by their open time.

One interface (`BarBuilder`), two implementations:

* `KlineBarBuilder` — the simulator's native bar stream ``<sym>@kline_5s`` (a simulator
  extension; Binance has no 5 s futures klines). A bar's close for a symbol is the
  close of its final kline (``"x": true``).
* `TradeBarBuilder` — real Binance: ``<sym>@aggTrade``, close = the last trade price
  in the epoch-aligned bucket ``[open, open + bar)``. A symbol without a trade in the
  bucket has no close here; the scanner carries its previous close forward (what a
  Binance kline without trades does).

Completion (both builders). Messages of one stream arrive in order (the adapter drops
out-of-order events per stream), so a symbol is *resolved* for bar t once its own
stream has said something about a later time: its final kline of t or any kline of a
later bar (kline builder), or a trade at or after t's end (trade builder). A symbol
resolved by a later message without a close for t lost that close (a reconnect) — its
close is missing. A bar is **complete** when every symbol is resolved; bars are emitted
strictly in open-time order.

A symbol that says nothing at all cannot be told apart from one whose message is still
in flight, so there is a **deadline**: bar t may be forced once market time (the
latest event time seen, or the venue clock) has passed ``t + bar + grace_ms`` *and* the
bar has then stayed due for ``settle_s`` of wall time. The wall-clock floor matters on
an accelerated simulator: one 100 ms emission tick at ``--speed 60`` carries 6 s of
market time, so the first symbol's messages of a tick are already past any pure
market-time deadline while the last symbol's close of the bar is still in the same
burst. A symbol that was silent at ``dead_after`` consecutive forced bars is no longer
waited for (so one dead stream costs a few slow bars, not every bar); any message from
it makes it count again.

Why not "a later bar has arrived for most symbols": with several symbols per
connection, a burst delivers symbol A's close of t and of t+1 before symbol B's close of
t, so any quorum of *other* symbols moving on fires while B's close is still in flight.

Nothing here reads the wall clock except through ``clock`` (``time.perf_counter`` by
default), which also stamps `Bar.completed_at` — the moment the bar's last close was
received (or the bar was forced): the start of the scanner's latency.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dolphin.market import payloads as P

NEVER = -(2**62)
"""An open time before any bar (int64-safe)."""


@dataclass(frozen=True, slots=True)
class BarTiming:
    """When a bar may be closed without every symbol (see the module doc)."""

    bar_ms: int = 5_000
    grace_ms: int = 1_000
    settle_s: float = 0.5
    dead_after: int = 3

    def __post_init__(self) -> None:
        if self.bar_ms <= 0 or self.grace_ms < 0 or self.settle_s < 0 or self.dead_after < 1:
            raise ValueError(f"invalid bar timing: {self}")


@dataclass(frozen=True, slots=True, eq=False)
class Bar:
    """One closed bar of every symbol: ``closes[i]`` NaN where symbol i has no close."""

    open_ms: int
    closes: np.ndarray
    missing: int
    forced: bool
    completed_at: float

    @property
    def open_ns(self) -> int:
        return self.open_ms * 1_000_000


@dataclass
class BuilderCounters:
    """What a builder saw; the scanner copies these into its own counters."""

    messages: int = 0
    bars: int = 0
    forced: int = 0
    late: int = 0              # a close (or trade) for a bar already emitted
    missing: int = 0           # symbol closes absent from emitted bars
    ignored: int = 0           # messages of other kinds / symbols
    dead: int = 0              # symbols currently not waited for


class BarBuilder(ABC):
    """Turns stream messages into closed bars; `on_message` and `poll` return bars in open order."""

    kind = ""

    def __init__(self, symbols: Sequence[str], timing: BarTiming | None = None, *,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.symbols = tuple(symbols)
        self.n = len(self.symbols)
        if self.n == 0:
            raise ValueError("a bar builder needs at least one symbol")
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.timing = timing if timing is not None else BarTiming()
        self.bar_ms = self.timing.bar_ms
        self.clock = clock
        self.counters = BuilderCounters()
        self.market_ms = NEVER          # latest event time seen
        self.last_emitted: int | None = None
        self._floor = NEVER             # bars at or before this were skipped on purpose (not "late")
        self._dead = np.zeros(self.n, dtype=bool)
        self._silent_run = np.zeros(self.n, dtype=np.int64)
        self._due: dict[int, float] = {}

    @abstractmethod
    def streams(self) -> list[str]:
        """The stream names to subscribe."""

    @abstractmethod
    def on_message(self, msg: P.StreamPayload) -> list[Bar]:
        """Feed one message; returns the bars it completed (possibly none)."""

    @abstractmethod
    def _next_open(self) -> int | None:
        """The open time of the next bar to emit, or None if none is known yet."""

    @abstractmethod
    def _resolved(self, open_ms: int) -> np.ndarray:
        """Bool per symbol: resolved for the bar opening at ``open_ms``."""

    @abstractmethod
    def _take(self, open_ms: int) -> np.ndarray:
        """Remove the bar's state and return its closes (NaN = none)."""

    def skip_through(self, open_ms: int) -> None:
        """Forget bars opening at or before ``open_ms`` (already scanned from history); not counted late."""
        self._floor = max(self._floor, int(open_ms))
        if self.last_emitted is None or self.last_emitted < open_ms:
            self.last_emitted = int(open_ms)
        self._drop_through(int(open_ms))

    def _drop_through(self, open_ms: int) -> None:
        for t in [t for t in self._due if t <= open_ms]:
            del self._due[t]

    def _touch(self, i: int) -> None:
        if self._dead[i]:
            self._dead[i] = False
            self.counters.dead = int(self._dead.sum())
        self._silent_run[i] = 0

    def _emit(self, open_ms: int, forced: bool, resolved: np.ndarray | None = None) -> Bar:
        closes = self._take(open_ms)
        missing = int(np.count_nonzero(np.isnan(closes)))
        self.last_emitted = open_ms
        if self._due:
            for t in [t for t in self._due if t <= open_ms]:
                del self._due[t]
        c = self.counters
        c.bars += 1
        c.missing += missing
        if forced:
            c.forced += 1
            silent = ~resolved if resolved is not None else np.zeros(self.n, dtype=bool)
            self._silent_run[silent] += 1
            self._silent_run[~silent] = 0
            self._dead |= self._silent_run >= self.timing.dead_after
            c.dead = int(self._dead.sum())
        return Bar(open_ms, closes, missing, forced, self.clock())

    def _emit_complete(self) -> list[Bar]:
        out: list[Bar] = []
        while True:
            t = self._next_open()
            if t is None or self.market_ms < t + self.bar_ms:  # no bar is complete before its end
                return out
            resolved = self._resolved(t)
            if not bool(np.all(resolved | self._dead)):
                return out
            out.append(self._emit(t, forced=False))

    def poll(self, market_now_ms: int | None = None) -> list[Bar]:
        """Force bars whose deadline passed (market time, then ``settle_s`` of wall time); call it periodically.

        ``market_now_ms`` is an outside estimate of market time (the venue clock); the
        latest event time seen is used when it is larger.
        """
        now = self.market_ms if market_now_ms is None else max(self.market_ms, int(market_now_ms))
        out = self._emit_complete()
        wall = self.clock()
        while True:
            t = self._next_open()
            if t is None or now < t + self.bar_ms + self.timing.grace_ms:
                break
            # every bar already due starts its wall-clock settle now (a backlog must not settle one by one)
            for due in range(t, now - self.bar_ms - self.timing.grace_ms + 1, self.bar_ms):
                self._due.setdefault(due, wall)
                if len(self._due) > 10_000:
                    break
            if wall - self._due[t] < self.timing.settle_s:
                break
            out.append(self._emit(t, forced=True, resolved=self._resolved(t)))
            out.extend(self._emit_complete())
        return out


class KlineBarBuilder(BarBuilder):
    """Bars from ``<sym>@kline_<interval>`` final klines (the simulator's ``kline_5s``)."""

    kind = "kline"

    def __init__(self, symbols: Sequence[str], timing: BarTiming | None = None, *, interval: str = "5s",
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(symbols, timing, clock=clock)
        self.interval = interval
        self._closed_open = np.full(self.n, NEVER, dtype=np.int64)   # latest open whose final kline arrived
        self._seen_open = np.full(self.n, NEVER, dtype=np.int64)     # latest open of any kline
        self._closes: dict[int, np.ndarray] = {}                      # pending bars: open → closes

    def streams(self) -> list[str]:
        return [f"{s.lower()}@kline_{self.interval}" for s in self.symbols]

    def on_message(self, msg: P.StreamPayload) -> list[Bar]:
        if type(msg) is not P.KlineEvent:
            self.counters.ignored += 1
            return []
        k = msg.kline
        i = self.index.get(k.symbol)
        if i is None:
            self.counters.ignored += 1
            return []
        self.counters.messages += 1
        if msg.event_time > self.market_ms:
            self.market_ms = msg.event_time
        self._touch(i)
        t = k.start_time
        if self.last_emitted is not None and t <= self.last_emitted:
            if k.closed and t > self._floor:
                self.counters.late += 1
            return []
        if t > self._seen_open[i]:
            self._seen_open[i] = t
        closes = self._closes.get(t)
        if closes is None:
            closes = self._closes[t] = np.full(self.n, np.nan)
        if k.closed:
            closes[i] = k.close
            if t > self._closed_open[i]:
                self._closed_open[i] = t
        return self._emit_complete()

    def _next_open(self) -> int | None:
        return min(self._closes) if self._closes else None

    def _resolved(self, open_ms: int) -> np.ndarray:
        return (self._closed_open >= open_ms) | (self._seen_open > open_ms)

    def _take(self, open_ms: int) -> np.ndarray:
        return self._closes.pop(open_ms)

    def _drop_through(self, open_ms: int) -> None:
        super()._drop_through(open_ms)
        for t in [t for t in self._closes if t <= open_ms]:
            del self._closes[t]


class TradeBarBuilder(BarBuilder):
    """Bars from ``<sym>@aggTrade``: close = last trade price in ``[open, open + bar)`` (epoch-aligned)."""

    kind = "trade"

    def __init__(self, symbols: Sequence[str], timing: BarTiming | None = None, *,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(symbols, timing, clock=clock)
        self._progress = np.full(self.n, NEVER, dtype=np.int64)   # latest trade time per symbol
        self._closes: dict[int, np.ndarray] = {}                   # buckets with trades: open → last prices

    def streams(self) -> list[str]:
        return [f"{s.lower()}@aggTrade" for s in self.symbols]

    def on_message(self, msg: P.StreamPayload) -> list[Bar]:
        if type(msg) is not P.AggTrade:
            self.counters.ignored += 1
            return []
        i = self.index.get(msg.symbol)
        if i is None:
            self.counters.ignored += 1
            return []
        self.counters.messages += 1
        ts = msg.trade_time
        if ts > self.market_ms:
            self.market_ms = ts
        self._touch(i)
        b = ts - ts % self.bar_ms
        if self.last_emitted is not None and b <= self.last_emitted:
            if b > self._floor:
                self.counters.late += 1
            return []
        if ts < self._progress[i]:  # an older trade than one already seen on this stream: not the last price
            return []
        self._progress[i] = ts
        closes = self._closes.get(b)
        if closes is None:
            closes = self._closes[b] = np.full(self.n, np.nan)
        closes[i] = msg.price
        return self._emit_complete()

    def _next_open(self) -> int | None:
        if self.last_emitted is not None:
            return self.last_emitted + self.bar_ms  # buckets are contiguous, with or without trades
        return min(self._closes) if self._closes else None

    def _resolved(self, open_ms: int) -> np.ndarray:
        return self._progress >= open_ms + self.bar_ms

    def _take(self, open_ms: int) -> np.ndarray:
        closes = self._closes.pop(open_ms, None)
        return closes if closes is not None else np.full(self.n, np.nan)

    def _drop_through(self, open_ms: int) -> None:
        super()._drop_through(open_ms)
        for t in [t for t in self._closes if t <= open_ms]:
            del self._closes[t]


def make_builder(kind: str, symbols: Sequence[str], timing: BarTiming, *, interval: str = "5s",
                 clock: Callable[[], float] = time.perf_counter) -> BarBuilder:
    """``kind`` ``kline`` (simulator) or ``trade`` (Binance aggTrade)."""
    if kind == "kline":
        return KlineBarBuilder(symbols, timing, interval=interval, clock=clock)
    if kind == "trade":
        return TradeBarBuilder(symbols, timing, clock=clock)
    raise ValueError(f"unknown bar source {kind!r} (kline or trade)")


__all__ = ["NEVER", "Bar", "BarBuilder", "BarTiming", "BuilderCounters", "KlineBarBuilder", "TradeBarBuilder",
           "make_builder"]
