"""The OBF daemon (bible §16.5, §26.2, §9, §20.1): one depth5 subscription of the universe → OB features.

Why one process for the universe health snapshot and the per-bar §9 features: both are
functions of the same books. One subscription of ``{symbol}@depth5@<cadence>`` for every
USDT perpetual the venue lists (540 on Binance: three connections of ≤ 200 streams) feeds
one `UniverseBooks`; the per-bar trackers need every update anyway, and the 60 s snapshot
is a view of their latest bar. Two daemons would double the venue's connections, the
parse CPU (the larger part of the cost) and the places where a crossed book must be
caught — and could disagree about the same book.

Pieces (each testable alone):

* hot loop — `MarketStreams` (reconnect, resubscribe, per-connection stall watchdog, frame
  checks) calls `UniverseBooks.on_depth` for each update: book guard, latest book, bars on
  market time (``E``). It never awaits. Each update of a priority (traded) symbol also
  computes that symbol's features as the open bar would close on it, on a copy of its tracker;
  the update that closes a bar then closes the priority symbols there and then (the copies
  swapped in, ≈ 0.3 ms for 50): their shard documents and the macro are offered to the
  publisher before another frame is read; the bar goes to a queue;
* bar worker — per closed bar: once the priority push is on the bus (or `PRIORITY_HEAD_START_S`
  has passed; at once while the bus is away), the rest of the universe's `AssetTracker`s in
  slices that yield to the hot loop; their documents go to the publisher, the bar's rows to
  the history;
* publisher — `ObfPublisher`: coalescing, circuit breaker, fallback file (§15.6);
* every `snapshot_interval_s` (wall): the universe snapshot (``obf_universe_latest``) and a
  Parquet flush (`dolphin.store.ob_history`, on a worker thread);
* every `status_interval_s`: ``DOLPHIN_FEATURES["obf_status"]`` and its file;
* the feed stall watchdog: no update from any symbol for `stall_timeout_s` → alert, count.

Nothing is published (bus or history) before `warmup_s` of wall time (§20.1 first-publish
warm-up): the trackers fill meanwhile. See docs/obf.md.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dolphin.bus.ob_codec import (
    feature_rows,
    features_payload,
    macro_payload,
    macro_rows,
    universe_payload,
    universe_rows,
)
from dolphin.bus.payloads import ObfStatus
from dolphin.enums import WarmupUnit
from dolphin.market.ob_features import (
    OB_BAR_MS,
    AssetFeatures,
    AssetTracker,
    MacroFeatures,
    macro_of,
    snapshot_of,
)
from dolphin.market.payloads import DepthUpdate, StreamPayload
from dolphin.market.rest import BinanceRest
from dolphin.market.streams import MarketStreams
from dolphin.market.symbols import universe
from dolphin.market.urls import Endpoints, endpoints, from_env
from dolphin.services.obf.breaker import CircuitBreaker
from dolphin.services.obf.ingest import ClosedBar, UniverseBooks
from dolphin.services.obf.publisher import ObfPublisher
from dolphin.services.runtime import ServiceContext
from dolphin.store.ob_cache import STATUS_FILE, status_path, write_status
from dolphin.store.ob_history import FEATURES, HISTORY_DIR, MACRO, UNIVERSE, ObHistoryWriter

CADENCES = ("100ms", "250ms", "500ms")
PRIORITY_HEAD_START_S = 0.2
"""How long the bar worker lets the priority symbols' push go first before computing the rest of the
universe (it starts as soon as that push is acknowledged; at once while the bus is away)."""


class Stopped(Exception):
    """The service was asked to stop while waiting for the venue."""


@dataclass(frozen=True)
class ObfOptions:
    """Overrides of the services config (tests, benchmarks); None = from the config/environment."""

    rest_url: str | None = None
    ws_url: str | None = None
    symbols: tuple[str, ...] | None = None      # explicit streams (no exchangeInfo)
    priority: tuple[str, ...] | None = None     # the macro's universe (default: the scanner's symbols)
    cadence: str | None = None
    snapshot_interval_s: float | None = None
    warmup_s: float | None = None
    dark_bars: int | None = None
    stall_timeout_s: float | None = None
    push_timeout_s: float | None = None
    breaker_failures: int | None = None
    breaker_backoff_s: float | None = None
    breaker_backoff_max_s: float | None = None
    status_interval_s: float | None = None
    bar_ms: int = OB_BAR_MS
    history: bool = True
    slice_symbols: int = 50                     # symbols per slice of a bar close between yields to the hot loop
    retry_max_s: float = 10.0                   # back-off cap while the venue is away


@dataclass(frozen=True)
class ObfSettings:
    """Everything the daemon runs with, resolved."""

    rest_url: str
    ws_url: str
    symbols: tuple[str, ...] | None
    priority: tuple[str, ...]
    cadence: str
    snapshot_interval_s: float
    warmup_s: float
    dark_bars: int
    stall_timeout_s: float
    push_timeout_s: float
    breaker_failures: int
    breaker_backoff_s: float
    breaker_backoff_max_s: float
    status_interval_s: float
    bar_ms: int
    history: bool
    slice_symbols: int
    retry_max_s: float

    def stream(self, symbol: str) -> str:
        suffix = "" if self.cadence == "250ms" else f"@{self.cadence}"
        return f"{symbol.lower()}@depth5{suffix}"


def resolve_settings(options: ObfOptions | None = None, config: Any = None) -> ObfSettings:
    """Options > environment > configs/services.yml > defaults."""
    from dolphin.config.services import load_services_config

    o = options if options is not None else ObfOptions()
    cfg = config if config is not None else load_services_config()
    c = cfg.obf
    rest_url, ws_url = o.rest_url, o.ws_url
    if rest_url is None or ws_url is None:
        if cfg.market.source == "sim":
            default = Endpoints("sim", cfg.sim_rest_url, cfg.sim_ws_url)
        else:  # public market data only: OBF never signs, so mainnet books are allowed
            default = endpoints(cfg.market.binance_network, allow_mainnet=True)
        found = from_env(default, allow_mainnet=True)
        rest_url, ws_url = rest_url or found.rest_url, ws_url or found.ws_url
    cadence = o.cadence or c.cadence
    if cadence not in CADENCES:
        raise ValueError(f"cadence must be one of {CADENCES}, got {cadence!r}")

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    priority = o.priority if o.priority is not None else tuple(universe(cfg.scanner.symbols))
    return ObfSettings(
        rest_url=rest_url, ws_url=ws_url, symbols=o.symbols, priority=tuple(priority), cadence=cadence,
        snapshot_interval_s=float(pick(o.snapshot_interval_s, c.snapshot_interval_s)),
        warmup_s=float(pick(o.warmup_s, c.warmup_s)), dark_bars=int(pick(o.dark_bars, c.dark_bars)),
        stall_timeout_s=float(pick(o.stall_timeout_s, c.stall_timeout_s)),
        push_timeout_s=float(pick(o.push_timeout_s, c.push_timeout_s)),
        breaker_failures=int(pick(o.breaker_failures, c.breaker_failures)),
        breaker_backoff_s=float(pick(o.breaker_backoff_s, c.breaker_backoff_s)),
        breaker_backoff_max_s=float(pick(o.breaker_backoff_max_s, c.breaker_backoff_max_s)),
        status_interval_s=float(pick(o.status_interval_s, c.status_interval_s)), bar_ms=int(o.bar_ms),
        history=o.history, slice_symbols=max(1, int(o.slice_symbols)), retry_max_s=float(o.retry_max_s))


@dataclass
class ObfStats:
    """Live counters (the status payload is built from them; tests and benchmarks read them)."""

    started_at: float = field(default_factory=time.time)
    phase: str = "starting"
    symbols: int = 0
    bars_closed: int = 0
    bars_published: int = 0
    bars_recorded: int = 0
    skipped_recorded: int = 0                  # bars the history already held (a restart within a bar)
    last_bar_ms: int | None = None
    last_regime_signal: float | None = None
    snapshots: int = 0
    last_snapshot_at: float | None = None
    stalls: int = 0
    stalled: bool = False
    flushes: int = 0
    flush_failures: int = 0
    status_writes: int = 0
    last_message_at: float | None = None        # monotonic
    closed_ahead: int = 0                       # priority symbols' bar closes whose features were computed ahead
    full_collections: int = 0                   # the collector's full passes, run between bars (`full_gc_due`)
    close_times: deque[float] = field(default_factory=lambda: deque(maxlen=1000))      # close → all offered, s
    closed_at: dict[int, float] = field(default_factory=dict)   # bar close_ms → wall time its closing update came
    ingest: Any = None                          # the UniverseBooks (counters, coverage)
    publisher: Any = None                       # the ObfPublisher (circuit, pushes, fallback)
    history: Any = None                         # the ObHistoryWriter
    streams: Any = None                         # the MarketStreams


#: The collector's default cadence of full passes: one per this many passes of its middle generation.
FULL_GC_EVERY = 10


def defer_full_gc() -> tuple[int, int, int]:
    """Leave the collector's young passes automatic but take its full passes off its own schedule.

    Why: a full pass took 11–14 ms every ~10 s in the running daemon (gc callbacks in
    benchmarks/obf_ingest.py); landing on a bar close it adds its length to that bar's close →
    bus latency. The bar worker runs it instead once a bar is done (`full_gc_due`), seconds
    away from the next close, at the collector's own cadence.
    """
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], 1_000_000_000)
    return before


def full_gc_due(idle: bool = True) -> bool:
    """Whether the collector would have run a full pass by now (`FULL_GC_EVERY` middle passes since the last),
    when the bar worker is ``idle`` (no closed bar waiting); at twice that, even when it is not (a worker
    that never catches up must not grow the garbage without end)."""
    return gc.get_count()[2] >= (FULL_GC_EVERY if idle else 2 * FULL_GC_EVERY)


def usdt_perpetuals(info: Any) -> list[str]:
    """Every USDT-quoted perpetual the venue trades (exchangeInfo: PERPETUAL, quote USDT, TRADING)."""
    return [s.symbol for s in info.symbols
            if s.contract_type == "PERPETUAL" and s.quote_asset == "USDT" and s.status == "TRADING"]


async def _venue_symbols(rest: BinanceRest, ctx: ServiceContext, retry_max_s: float) -> list[str]:
    from dolphin.services.scanner.history import TRANSIENT

    delay, logged = 0.5, False
    while True:
        try:
            return usdt_perpetuals(await rest.exchange_info())
        except TRANSIENT as exc:
            if not logged:
                ctx.log.warning("market venue %s not reachable yet (%s); retrying", rest.base_url, exc)
                logged = True
            if await ctx.sleep(delay):
                raise Stopped() from None
            delay = min(retry_max_s, delay * 2)


@dataclass(slots=True)
class PriorityBar:
    """A closed bar whose priority symbols were closed on the hot path (their features and the macro,
    None when none of them had a book); ``computed_at`` is every document's ``timestamp`` of this bar."""

    closed: ClosedBar
    features: list[tuple[str, AssetFeatures]]
    macro: MacroFeatures | None
    computed_at: float
    warm: bool


class ObfDaemon:
    """The wiring of one OBF run (see the module doc); `run_obf` is its service body."""

    def __init__(self, ctx: ServiceContext, cfg: ObfSettings, symbols: list[str], stats: ObfStats) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.log = ctx.log
        self.stats = stats
        self.symbols = symbols
        present = set(symbols)
        self.priority = [s for s in cfg.priority if s in present]
        prio = set(self.priority)
        self.order = self.priority + [s for s in symbols if s not in prio]
        self.books = UniverseBooks(symbols, bar_ms=cfg.bar_ms, dark_bars=cfg.dark_bars, log=self.log)
        self.trackers: dict[str, AssetTracker] = {s: AssetTracker() for s in symbols}
        self.prio_set = frozenset(self.priority)
        # priority symbol → (the book, the tracker it was computed on, that tracker's copy after the bar, features)
        self.ahead: dict[str, tuple[DepthUpdate, AssetTracker, AssetTracker, AssetFeatures]] = {}
        self.publisher = ObfPublisher(lambda: ctx.bus, self.log, home=ctx.home,
                                      breaker=CircuitBreaker(cfg.breaker_failures, backoff_s=cfg.breaker_backoff_s,
                                                             backoff_max_s=cfg.breaker_backoff_max_s),
                                      timeout_s=cfg.push_timeout_s)
        self.history = ObHistoryWriter(ctx.home / HISTORY_DIR) if cfg.history else None
        self.closed: asyncio.Queue[PriorityBar] = asyncio.Queue()
        self.started = time.monotonic()
        self.streams: MarketStreams | None = None
        stats.symbols = len(symbols)
        stats.ingest, stats.publisher, stats.history = self.books, self.publisher, self.history
        self._last_rate = (time.monotonic(), 0)
        self._rate = 0.0
        self._status_failing = False
        self.first_snapshot_done = False
        ctx.warmup_unit = WarmupUnit.SECONDS
        self.report_warmup()

    # ---------------------------------------------------------------- hot loop
    def on_message(self, msg: StreamPayload) -> None:
        """MarketStreams' callback: one depth update (sync, never awaits).

        The update that closes a bar also closes the priority symbols' bar here, at once: their
        features (computed ahead, `_ahead`) and the macro go to the publisher before the loop reads
        another frame (≈ 0.3 ms for the scanner's 50 symbols); the rest of the universe is the bar worker's.
        """
        if type(msg) is not DepthUpdate:
            return
        self.stats.last_message_at = time.monotonic()
        closed = self.books.on_depth(msg)
        if closed is not None:
            self.stats.closed_at[closed.close_ms] = time.time()
            self.closed.put_nowait(self.close_priority(closed))
        symbol = msg.symbol
        if symbol in self.prio_set and self.books.latest.get(symbol) is msg:
            self._ahead(symbol, msg)

    def _ahead(self, symbol: str, book: DepthUpdate) -> None:
        """A traded symbol's features as the open bar would close on ``book``, computed now (≈ 25 µs, 500 a
        second for 50 symbols at 100 ms) on a copy of its tracker: the close then only swaps the copy in."""
        tracker = self.trackers[symbol]
        ahead = tracker.copy()
        self.ahead[symbol] = (book, tracker, ahead, ahead.close_bar(snapshot_of(book.bids, book.asks)))

    def _close_one(self, symbol: str, book: DepthUpdate) -> AssetFeatures:
        """The bar close of one symbol on ``book``: the features computed ahead when they were computed on this
        very book and tracker state, else computed now (same code, same values)."""
        tracker = self.trackers[symbol]
        ahead = self.ahead.pop(symbol, None)
        if ahead is not None and ahead[0] is book and ahead[1] is tracker:
            self.trackers[symbol] = ahead[2]
            self.stats.closed_ahead += 1
            return ahead[3]
        return tracker.close_bar(snapshot_of(book.bids, book.asks))

    @property
    def warm(self) -> bool:
        return time.monotonic() - self.started >= self.cfg.warmup_s

    def warmup_left_s(self) -> float:
        return max(0.0, self.cfg.warmup_s - (time.monotonic() - self.started))

    def warmup_progress(self) -> tuple[int, int] | None:
        """(seconds done, seconds total) of the first-publish warm-up for the heartbeat (`ServiceContext.warmup`,
        the scanner's mechanism: MHS says WARMING while it explains the absent ``obf_universe_latest``, the TUI
        and `dolphin up` print it); None once the first universe snapshot was taken (or found nothing to show)."""
        if self.first_snapshot_done or self.cfg.warmup_s <= 0:
            return None
        total = max(1, math.ceil(self.cfg.warmup_s))
        return min(total, int(time.monotonic() - self.started)), total

    def report_warmup(self) -> None:
        self.ctx.warmup = self.warmup_progress()

    # ---------------------------------------------------------------- bar close: priority, then the rest
    def _compute(self, books: dict[str, DepthUpdate], symbols: list[str]) -> list[tuple[str, AssetFeatures]]:
        trackers = self.trackers
        out = []
        for symbol in symbols:
            book = books[symbol]
            out.append((symbol, trackers[symbol].close_bar(snapshot_of(book.bids, book.asks))))
        return out

    def _compute_priority(self, books: dict[str, DepthUpdate]) -> list[tuple[str, AssetFeatures]]:
        return [(symbol, self._close_one(symbol, books[symbol])) for symbol in self.priority if symbol in books]

    def _offer(self, bar: PriorityBar, items: list[tuple[str, AssetFeatures]], macro: MacroFeatures) -> None:
        if bar.warm and items:
            bar_ms, now, signal = bar.closed.close_ms, bar.computed_at, macro.regime_signal
            self.publisher.offer_features({s: features_payload(f, bar_ms=bar_ms, regime_signal=signal,
                                                               timestamp=now) for s, f in items}, bar_ms)

    def _offer_macro(self, bar: PriorityBar, macro: MacroFeatures) -> None:
        if bar.warm:
            self.publisher.offer_macro(macro_payload(macro, bar_ms=bar.closed.close_ms, pushed_at=bar.computed_at))

    def close_priority(self, closed: ClosedBar) -> PriorityBar:
        """The priority symbols' features and the macro of a closed bar, offered to the publisher now."""
        books = closed.books
        bar = PriorityBar(closed, self._compute_priority(books), None, time.time(), self.warm)
        if bar.features:
            bar.macro = macro_of(f for _, f in bar.features)
            self._offer(bar, bar.features, bar.macro)
            self._offer_macro(bar, bar.macro)
            self.publisher.push_now()
        return bar

    async def bar_worker(self) -> None:
        while True:
            bar = await self.closed.get()
            await self.close_rest(bar)
            self.stats.close_times.append(time.time() - bar.computed_at)
            if full_gc_due(idle=self.closed.empty()):
                gc.collect()                      # here, seconds before the next close, not in the middle of one
                self.stats.full_collections += 1
            if len(self.stats.closed_at) > 2000:
                for key in sorted(self.stats.closed_at)[:1000]:
                    del self.stats.closed_at[key]

    async def close_rest(self, bar: PriorityBar, head_start_s: float = PRIORITY_HEAD_START_S) -> None:
        """The rest of the universe of a bar whose priority part is offered: once that push is on the bus
        (or ``head_start_s`` has passed), in slices that yield to the hot loop; then the history rows."""
        st = self.stats
        closed = bar.closed
        bar_ms = closed.close_ms
        books = closed.books
        macro = bar.macro
        if macro is not None and bar.warm:
            await self.publisher.wait_pushed(bar_ms, head_start_s)
        computed = list(bar.features)
        rest = [s for s in self.order[len(self.priority):] if s in books]
        step = self.cfg.slice_symbols
        for i in range(0, len(rest), step):
            await asyncio.sleep(0)  # let the hot loop take the updates that came meanwhile
            part = self._compute(books, rest[i:i + step])
            computed.extend(part)
            if macro is not None:
                self._offer(bar, part, macro)
        if macro is None and computed:  # none of the priority symbols has a book: the macro of what there is
            macro = macro_of(f for _, f in computed)
            self._offer(bar, computed, macro)
            self._offer_macro(bar, macro)
        st.bars_closed += 1
        st.last_bar_ms = bar_ms
        if macro is not None:
            st.last_regime_signal = macro.regime_signal
        if not bar.warm or macro is None:
            return
        st.bars_published += 1
        if self.history is not None:
            if self.history.already_has(FEATURES, bar_ms):
                st.skipped_recorded += 1
            else:
                self.history.add_rows(FEATURES, feature_rows(bar_ms, computed))
                self.history.add_rows(MACRO, macro_rows(bar_ms, macro))
                st.bars_recorded += 1

    # ---------------------------------------------------------------- snapshot + flush
    def universe_features(self) -> dict[str, AssetFeatures]:
        dark = self.books.dark
        out: dict[str, AssetFeatures] = {}
        for symbol in self.books.latest:
            if symbol in dark:
                continue
            latest = self.trackers[symbol].latest
            if latest is not None:
                out[symbol] = latest
        return out

    async def snapshot_once(self) -> None:
        st = self.stats
        if not self.warm:
            return
        self.first_snapshot_done = True
        self.report_warmup()          # the warm-up is over: from here an absent universe is a fault (MHS)
        if st.last_bar_ms is None:
            return
        now = time.time()
        uni = universe_payload(self.universe_features(), snapshot_utc=now)
        self.publisher.offer_universe(uni)
        st.snapshots += 1
        st.last_snapshot_at = now
        if self.history is not None and uni.assets and not self.history.already_has(UNIVERSE, st.last_bar_ms):
            self.history.add_rows(UNIVERSE, universe_rows(st.last_bar_ms, uni))
        await self.flush()

    async def flush(self) -> None:
        if self.history is None or not self.history.pending_rows():
            return
        tables = self.history.take_pending()
        try:
            await asyncio.to_thread(self.history.write_tables, tables)
            self.stats.flushes += 1
            await asyncio.to_thread(self.history.compact)    # a day that just closed becomes one part per table
        except OSError as exc:
            self.stats.flush_failures += 1
            self.log.error("obf: OB history flush failed (%s): %d table(s) of rows lost for the archive; the bus and "
                           "the fallback file carry on", exc.strerror or exc, len(tables))

    async def snapshots(self) -> None:
        """The first snapshot as the warm-up ends (MHS watches ``obf_universe_latest``), then every interval."""
        while not self.warm:
            if await self.ctx.sleep(max(0.01, self.warmup_left_s())):
                return
        while True:
            await self.snapshot_once()
            if await self.ctx.sleep(self.cfg.snapshot_interval_s):
                return

    # ---------------------------------------------------------------- watchdog + status
    async def watchdog(self) -> None:
        period = max(0.05, min(1.0, self.cfg.stall_timeout_s / 4))
        while not await self.ctx.sleep(period):
            st = self.stats
            last = st.last_message_at if st.last_message_at is not None else self.started
            quiet = time.monotonic() - last
            if quiet > self.cfg.stall_timeout_s and not st.stalled:
                st.stalled = True
                st.stalls += 1
                self.log.error("obf: stall — no depth update from any of %d symbols for %.0f s; the streams "
                               "reconnect and resubscribe", len(self.symbols), quiet)
            elif st.stalled and quiet <= self.cfg.stall_timeout_s:
                st.stalled = False
                self.log.info("obf: depth updates flow again after a stall")
            st.phase = self.phase()
            self.ctx.phase = st.phase
            self.report_warmup()

    def phase(self) -> str:
        if self.stats.stalled:
            return "stalled"
        if not self.warm:
            return "warm-up"
        return "live"

    def status(self) -> ObfStatus:
        st, books, pub = self.stats, self.books, self.publisher
        now_m = time.monotonic()
        then, count = self._last_rate
        if now_m - then >= 0.5:
            self._rate = (books.counters.messages - count) / (now_m - then)
            self._last_rate = (now_m, books.counters.messages)
        dropped: dict[str, int] = dict(books.counters.dropped)
        conns = reconnects = 0
        if self.streams is not None:
            s = self.streams.stats()
            conns, reconnects = len(s.connections), s.reconnects
            for reason, n in (("crossed", s.dropped_crossed), ("malformed", s.dropped_malformed),
                              ("unknown stream", s.dropped_unknown_stream), ("out of order", s.dropped_out_of_order),
                              ("backpressure", s.dropped_backpressure)):
                if n:
                    dropped[reason] = dropped.get(reason, 0) + n
        hist = self.history
        return ObfStatus(timestamp=time.time(), pid=os.getpid(), phase=self.phase(), started_at=st.started_at,
                         symbols=len(self.symbols), covered=books.covered, dark=len(books.dark),
                         messages=books.counters.messages, message_rate=max(0.0, self._rate),
                         last_bar_ms=st.last_bar_ms, last_snapshot_at=st.last_snapshot_at, connections=conns,
                         reconnects=reconnects, stalls=st.stalls, dark_events=books.counters.dark_events,
                         dropped=dropped, circuit=str(pub.state), push_failures=pub.push_failures,
                         circuit_opens=pub.breaker.opens, fallback_writes=pub.fallback_writes,
                         history_rows=hist.rows_written if hist is not None else 0,
                         history_parts=hist.parts_written if hist is not None else 0,
                         warmup_left_s=round(self.warmup_left_s(), 3))

    async def status_loop(self) -> None:
        path = status_path(self.ctx.home)
        while True:
            status = self.status()
            self.publisher.offer_status(status)
            try:
                await asyncio.to_thread(write_status, self.ctx.home, status)
                self.stats.status_writes += 1
                self._status_failing = False
            except OSError as exc:
                if not self._status_failing:
                    self._status_failing = True
                    self.log.error("obf: cannot write %s (%s)", path, exc.strerror or exc)
            if await self.ctx.sleep(self.cfg.status_interval_s):
                return


async def run_obf(ctx: ServiceContext, options: ObfOptions | None = None, *, stats: ObfStats | None = None,
                  settings: ObfSettings | None = None,
                  on_daemon: Callable[[ObfDaemon], None] | None = None) -> None:
    """The service body for `run_service("obf", …)`; `stats` lets an embedding caller watch the counters."""
    cfg = settings if settings is not None else resolve_settings(options)
    st = stats if stats is not None else ObfStats()
    log = ctx.log
    ctx.phase = st.phase = "starting"
    ctx.reconnect_bus = True       # no listeners: a new client serves; ingestion never stops for the bus
    ctx.spawn(ctx.connect_bus(), "bus")
    ctx.start_bus_watch()
    rest = BinanceRest(cfg.rest_url)
    daemon: ObfDaemon | None = None
    streams: MarketStreams | None = None
    gc_thresholds: tuple[int, int, int] | None = None
    try:
        if cfg.warmup_s > 0:
            # the warm-up has not begun while the venue is not answering yet (a family's simulator takes a while
            # to build its history): say so on the heartbeat (0 of N s) rather than leave MHS to call the absent
            # universe a fault; the daemon counts the warm-up from its own start
            ctx.warmup_unit = WarmupUnit.SECONDS
            ctx.warmup = (0, max(1, math.ceil(cfg.warmup_s)))
        symbols = list(cfg.symbols) if cfg.symbols is not None else await _venue_symbols(rest, ctx, cfg.retry_max_s)
        if not symbols:
            log.error("obf: the venue %s lists no USDT perpetual; nothing to watch", cfg.rest_url)
            await ctx.stop.wait()
            return
        daemon = ObfDaemon(ctx, cfg, symbols, st)
        if on_daemon is not None:
            on_daemon(daemon)
        if daemon.history is not None:
            last = await asyncio.to_thread(daemon.history.recover)
            if any(v is not None for v in last.values()):
                log.info("obf: OB history under %s ends at bar %s; later bars are appended", daemon.history.root,
                         last.get(FEATURES))
        log.info("obf: %d USDT perpetuals × %s from %s (%d priority for the macro), %d s bars, snapshot every %g s, "
                 "warm-up %g s", len(symbols), cfg.stream("x").split("@", 1)[1], cfg.ws_url, len(daemon.priority),
                 cfg.bar_ms // 1000, cfg.snapshot_interval_s, cfg.warmup_s)
        streams = MarketStreams(cfg.ws_url, [cfg.stream(s) for s in symbols], on_message=daemon.on_message,
                                stall_timeout_s=cfg.stall_timeout_s, name="obf")
        daemon.streams = st.streams = streams
        ctx.spawn(daemon.publisher.run(), "publisher")
        ctx.spawn(daemon.bar_worker(), "bars")
        ctx.spawn(daemon.snapshots(), "snapshots")
        ctx.spawn(daemon.watchdog(), "watchdog")
        ctx.spawn(daemon.status_loop(), "status")
        await streams.start()
        # Everything allocated so far (trackers, rings, the symbol tables) lives as long as the
        # process: keep it out of the collector's full passes, which would otherwise walk it
        # every few seconds in the middle of the hot loop. The full passes that remain (≈ 12 ms)
        # run from the bar worker, between bars (`defer_full_gc`).
        gc.freeze()
        gc_thresholds = defer_full_gc()
        ctx.phase = st.phase = daemon.phase()
        await ctx.stop.wait()
    except Stopped:
        pass
    finally:
        if gc_thresholds is not None:                # a daemon embedded in a larger process (tests) gives them back
            gc.set_threshold(*gc_thresholds)
        if streams is not None:
            await streams.close()
        await rest.close()
        if daemon is not None:
            while not daemon.closed.empty():     # bars already closed are features too
                await daemon.close_rest(daemon.closed.get_nowait(), head_start_s=0.0)
            await daemon.flush()                 # a clean stop loses no row
            if ctx.bus is not None and not await daemon.publisher.wait_idle(cfg.push_timeout_s + 1.0):
                log.warning("obf: stopping with values not yet on the bus")
            log.info("obf stopped: %d messages, %d bars (%d published, %d recorded), %d snapshots, circuit %s",
                     daemon.books.counters.messages, st.bars_closed, st.bars_published, st.bars_recorded,
                     st.snapshots, daemon.publisher.state)


__all__ = ["CADENCES", "STATUS_FILE", "ObfDaemon", "ObfOptions", "ObfSettings", "ObfStats", "resolve_settings",
           "run_obf", "usdt_perpetuals"]
