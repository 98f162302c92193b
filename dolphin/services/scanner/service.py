"""The NG8 scanner daemon (bible §27): market bars → one scan → one Arrow file + one bus write.

Per closed 5-second bar: `ScanEngine.update` computes all four windows in one pass,
exactly one bus write (``DOLPHIN_FEATURES["latest_eigen_scan"]``, NG8 flat payload) is
queued to the publisher, and once it is out (or after `PUT_HEAD_START_S`) `write_scan`
writes exactly one Arrow file (``<home>/arrow_scans/YYYY-MM-DD/scan_NNNNNN_HHMMSS.arrow``,
atomic, never overwriting). Bars are labelled by their open time; the scan is computed
when they close.

Start: subscribe to the streams first (bars are buffered), backfill through REST
(first start: `WARMUP_BARS`, archived but not published; restart: re-warm and fill the
gap after the last archived scan), then drain the buffer skipping bars already
scanned, then live. A hole in the live stream (a reconnect) is filled from REST before
the next bar, so scan numbers and bar times stay contiguous. See docs/scanner.md.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dolphin.market.bars import Bar, BarBuilder, BarTiming, make_builder
from dolphin.market.rest import BinanceRest
from dolphin.market.streams import MarketStreams
from dolphin.market.symbols import universe
from dolphin.market.urls import Endpoints, endpoints, from_env
from dolphin.scan.precision import PRECISIONS, ScanEngine
from dolphin.scan.record import ScanRecord
from dolphin.services.runtime import ServiceContext
from dolphin.services.scanner.backfill import (
    CHUNK_BARS,
    REWARM_BARS,
    WARMUP_BARS,
    ArchiveState,
    BackfillPlan,
    inspect_archive,
    plan_backfill,
)
from dolphin.services.scanner.history import TRANSIENT, interval_name, make_history
from dolphin.services.scanner.publisher import ScanPublisher
from dolphin.store.arrow_scans import write_scan

#: How long the Arrow file write waits for the bus put of the same scan: the put's round
#: trip is ~1 ms, the file write holds the GIL for milliseconds; a slow bus only delays the
#: file by this much, and an absent one not at all.
PUT_HEAD_START_S = 0.05


class Stopped(Exception):
    """The service was asked to stop while waiting for the venue."""


@dataclass(frozen=True)
class ScannerOptions:
    """Overrides of the services config (CLI, tests, benchmark); None = from the config/environment."""

    precision: str | None = None        # float64 | arb512 (scanner.precision)
    source: str | None = None           # sim | binance (market.source, DOLPHIN_MARKET)
    bars: str | None = None             # kline | trade (default: kline on sim, trade on binance)
    history: str | None = None          # klines | aggtrades (default: klines on sim, aggtrades on binance)
    symbols: int | None = None          # scanner.symbols: the first N of the universe
    bar_seconds: int | None = None      # scanner.bar_seconds
    rest_url: str | None = None         # default DOLPHIN_MARKET_REST_URL, else the configured venue
    ws_url: str | None = None           # default DOLPHIN_MARKET_WS_URL, else the configured venue
    warmup_bars: int = WARMUP_BARS
    rewarm_bars: int = REWARM_BARS
    grace_ms: int = 1_000               # market time after a bar's end before it may be forced
    settle_s: float = 0.5               # … and wall time it must then stay due
    dead_after: int = 3
    poll_s: float = 0.05                # deadline check period (wall)
    publish_timeout_s: float = 2.0
    repair_max: int = 1_000             # missing closes fetched from REST per bar (kline bars; a symbol
                                        # that REST could not give three times in a row is not asked again)
    stats_log_s: float = 60.0
    retry_max_s: float = 10.0           # back-off cap while the venue is away

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.warmup_bars < 752 or self.rewarm_bars < 752:
            raise ValueError("warmup_bars and rewarm_bars must be at least 752 (the 750-bar window + 2)")


@dataclass(frozen=True)
class ScannerSettings:
    """Everything the scanner runs with, resolved from options, config and environment."""

    symbols: tuple[str, ...]
    bar_ms: int
    precision: str
    source: str
    bars: str
    history: str
    rest_url: str
    ws_url: str
    timing: BarTiming


def resolve_settings(options: ScannerOptions | None = None, config: Any = None) -> ScannerSettings:
    """Options > environment > configs/services.yml > defaults (the file is read only when an option is unset)."""
    from dolphin.config.services import load_services_config

    opts = options if options is not None else ScannerOptions()
    loaded: list[Any] = [config]

    def cfg() -> Any:
        if loaded[0] is None:
            loaded[0] = load_services_config()
        return loaded[0]

    source = opts.source or cfg().market.source
    if source not in ("sim", "binance"):
        raise ValueError(f"market source must be sim or binance, got {source!r}")
    precision = opts.precision or cfg().scanner.precision
    n = int(opts.symbols or cfg().scanner.symbols)
    bar_ms = int(opts.bar_seconds or cfg().scanner.bar_seconds) * 1000
    rest_url, ws_url = opts.rest_url, opts.ws_url
    if rest_url is None or ws_url is None:
        if source == "sim":
            default = Endpoints("sim", cfg().sim_rest_url, cfg().sim_ws_url)
        else:
            # public market data only: the scanner never signs a request, so mainnet prices are allowed
            default = endpoints(cfg().market.binance_network, allow_mainnet=True)
        found = from_env(default, allow_mainnet=True)
        rest_url, ws_url = rest_url or found.rest_url, ws_url or found.ws_url
    return ScannerSettings(symbols=tuple(universe(n)), bar_ms=bar_ms, precision=precision, source=source,
                           bars=opts.bars or ("kline" if source == "sim" else "trade"),
                           history=opts.history or ("klines" if source == "sim" else "aggtrades"),
                           rest_url=rest_url, ws_url=ws_url,
                           timing=BarTiming(bar_ms, opts.grace_ms, opts.settle_s, opts.dead_after))


@dataclass
class ScannerStats:
    """The scanner's counters: heartbeat phase, log, and what tests and the benchmark read."""

    scans: int = 0            # scan files written by this run
    backfilled: int = 0       # … from the start-up backfill (not published)
    live: int = 0             # … from stream bars (published)
    gap_filled: int = 0       # … from REST after a hole in the stream (published)
    warmed: int = 0           # bars fed to the windows without a scan (warm-up, re-warm)
    published: int = 0
    bus_failures: int = 0
    unpublishable: int = 0
    duplicates: int = 0       # stream bars already scanned from history (skipped)
    late: int = 0             # closes that arrived after their bar was emitted
    forced: int = 0           # bars closed by the deadline instead of by every symbol
    missing_closes: int = 0   # symbol prices NaN in archived stream scans
    repaired: int = 0         # missing closes fetched from REST
    reconnects: int = 0       # stream reconnects
    dead_symbols: int = 0     # symbols currently not waited for
    eligibility_mismatches: int = 0   # arb512: bars whose eligible counts differ from float64's (expected 0)
    first_scan: int | None = None
    last_scan: int | None = None
    first_live_scan: int | None = None
    last_bar_ms: int | None = None
    backfill_s: float = 0.0
    compute_s: float = 0.0    # last bar's scan computation
    live_started: bool = False
    steady_since: float | None = None  # perf_counter when the start-up backlog of stream bars was drained
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))
    compute_times: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))
    write_times: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))
    wait_times: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))  # bar complete → scan starts
    put_times: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))

    def summary(self) -> str:
        return (f"scans={self.scans} live={self.live} backfilled={self.backfilled} gap_filled={self.gap_filled} "
                f"published={self.published} late={self.late} forced={self.forced} "
                f"missing_closes={self.missing_closes} repaired={self.repaired} bus_failures={self.bus_failures} "
                f"reconnects={self.reconnects} last_scan={self.last_scan if self.last_scan is not None else '-'}")

    def phase(self) -> str:
        return f"scanning {self.summary()}" if self.live_started else f"backfilling {self.summary()}"


class Scanner:
    """Bars in (history blocks or stream bars), scans out: the archive counter and the windows' state."""

    def __init__(self, *, root: Path, symbols: tuple[str, ...], bar_ms: int, engine: ScanEngine, history: Any,
                 publisher: ScanPublisher | None, stats: ScannerStats, log: logging.Logger, archive: ArchiveState,
                 repair_max: int = 1_000, retry_max_s: float = 10.0,
                 sleep: Callable[[float], Any] | None = None, stop: asyncio.Event | None = None) -> None:
        self.root = root
        self.symbols = symbols
        self.bar_ms = bar_ms
        self.engine = engine
        self.history = history
        self.publisher = publisher
        self.stats = stats
        self.log = log
        self.archive = archive
        self.next_number = archive.highest + 1
        self.archived_ms: int | None = archive.last_open_ms    # open time of the last archived scan
        self.archiving = not archive.empty                       # scans are written from here on
        self.ingested_ms: int | None = None                      # open time of the last bar in the windows
        self.last_row: np.ndarray | None = None
        self.repair_max = repair_max
        self.retry_max_s = retry_max_s
        self._sleep = sleep
        self._stop = stop
        self._progress: tuple[BackfillPlan, Callable[[int, int], None]] | None = None
        self._threaded = engine.precision == "arb512"
        self._repair_misses: dict[int, int] = {}

    # ------------------------------------------------------------ history
    async def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            if await self._sleep(seconds):
                raise Stopped()
        else:
            await asyncio.sleep(seconds)

    async def fetch(self, first_open: int, last_open: int) -> np.ndarray:
        """History of ``[first_open, last_open]``, retrying (with back-off) while the venue is away."""
        delay = 0.5
        logged = False
        while True:
            try:
                rows = await self.history.fetch(first_open, last_open)
                if logged:
                    self.log.info("history fetch works again")
                return rows
            except TRANSIENT as exc:
                if not logged:
                    self.log.warning("history fetch failed (%s); retrying", exc)
                    logged = True
                await self._wait(delay)
                delay = min(self.retry_max_s, delay * 2)

    async def backfill(self, plan: BackfillPlan,
                       on_progress: Callable[[int, int], None] | None = None) -> None:
        """Run a start-up plan: warm, and archive (unpublished) every scan the plan calls for.

        ``on_progress(done, total)`` hears the bars of the plan ingested so far, after each
        chunk and every 32 scans inside one (the heartbeat's warm-up progress).
        """
        started = time.perf_counter()
        self._progress = None
        if on_progress is not None and plan.bars > 0:
            self._progress = (plan, on_progress)
            on_progress(0, plan.bars)
        if self.archive.assets is not None and tuple(self.archive.assets) != self.symbols:
            self.log.warning("the archive's last scan has another universe (%d assets) than this scanner (%d); "
                             "scans continue with this one", len(self.archive.assets), len(self.symbols))
        if plan.first_start:
            self.log.info("empty archive: backfilling %d bars (%s … %s) to warm the windows; scans from the first "
                          "defined vel_div on are archived, not published", plan.bars, _iso(plan.first_open),
                          _iso(plan.last_open))
        elif plan.warm_through is None:
            pass
        elif plan.last_open < plan.warm_through:
            self.log.warning("market time (%s) is behind the archive's last scan %d (%s): re-warming on the history "
                             "there is; no scan until the market passes it", _iso(plan.last_open),
                             self.archive.highest, _iso(plan.warm_through))
        else:
            rewarm = (plan.warm_through - plan.first_open) // plan.bar_ms + 1
            self.log.info("archive ends at scan %d (%s): re-warming %d bars, filling %d missing bar(s) up to %s",
                          self.archive.highest, _iso(plan.warm_through), rewarm, plan.missing, _iso(plan.last_open))
        before = self.stats.scans
        for first, last in plan.chunks(CHUNK_BARS):
            rows = await self.fetch(first, last)
            await self.ingest(first, rows, origin="backfill")
        if self._progress is not None:
            self._progress[1](plan.bars, plan.bars)
            self._progress = None
        self.stats.backfill_s = time.perf_counter() - started
        made = self.stats.scans - before
        self.log.info("backfill done in %.1f s: %d scan(s) archived%s, %d bar(s) only warmed the windows",
                      self.stats.backfill_s, made,
                      f" (scans {self.next_number - made}…{self.next_number - 1})" if made else "",
                      self.stats.warmed)

    # ------------------------------------------------------------ bars
    def _carry(self, rows: np.ndarray) -> np.ndarray:
        """Trade bars: a symbol without a trade in a bar keeps its previous close."""
        if not self.history.carry_forward:
            return rows
        prev = self.last_row
        for r in range(rows.shape[0]):
            if prev is not None:
                holes = np.isnan(rows[r])
                if holes.any():
                    rows[r, holes] = prev[holes]
            prev = rows[r]
        return rows

    def _note_progress(self, open_ms: int) -> None:
        if self._progress is None:
            return
        plan, report = self._progress
        done = (open_ms - plan.first_open) // plan.bar_ms + 1
        report(min(max(done, 0), plan.bars), plan.bars)

    async def ingest(self, first_open: int, rows: np.ndarray, *, origin: str,
                     completed_at: float | None = None) -> None:
        """Feed contiguous bars from ``first_open``: warm-only where no scan is due, else scan + archive (+ publish).

        ``origin``: ``backfill`` (archived, not published), ``gap`` or ``live`` (archived and published).
        """
        rows = self._carry(np.array(rows, dtype=np.float64, copy=True))
        n = rows.shape[0]
        if n == 0:
            return
        warm = 0
        if self.archived_ms is not None:
            warm = max(0, min(n, (self.archived_ms - first_open) // self.bar_ms + 1))
        if not self.archiving:  # first start: no vel_div before the long window is full
            warm = max(warm, min(n, self.engine.max_window - self.engine.bars))
        if warm:
            block = rows[:warm]
            if warm > 8 or self._threaded:
                await asyncio.to_thread(self.engine.warm, block)
            else:
                self.engine.warm(block)
            self.stats.warmed += warm
            self.ingested_ms = first_open + (warm - 1) * self.bar_ms
            self.last_row = rows[warm - 1].copy()
        for r in range(warm, n):
            if self._stop is not None and self._stop.is_set():
                raise Stopped()  # safe anywhere: every scan file is complete, a restart resumes after the last
            await self._scan(first_open + r * self.bar_ms, rows[r], origin, completed_at)
            if origin == "backfill" and r % 32 == 31:
                self._note_progress(first_open + r * self.bar_ms)
                await asyncio.sleep(0)  # let the stream reader buffer live bars meanwhile

    async def _scan(self, open_ms: int, row: np.ndarray, origin: str, completed_at: float | None) -> None:
        engine = self.engine
        features = await asyncio.to_thread(engine.update, row) if self._threaded else engine.update(row)
        self.ingested_ms = open_ms
        self.last_row = row
        self.stats.compute_s = engine.last_compute_s
        if origin == "live":
            self.stats.compute_times.append(engine.last_compute_s)
        if not self.archiving:
            if not math.isfinite(features.vel_div):
                self.stats.warmed += 1
                return
            self.archiving = True
        if self.archived_ms is not None and open_ms <= self.archived_ms:  # market behind the archive
            self.stats.warmed += 1
            return
        record = ScanRecord.from_features(self.next_number, open_ms * 1_000_000, self.symbols, row, features)
        if origin != "backfill" and self.publisher is not None:
            # The bus first, then the file: the file's serialisation holds the GIL and its two
            # fsyncs take milliseconds, so the put gets a bounded head start (none while the bus
            # is away). A crash in between is safe: the scan is a pure function of the bars, and
            # the restart's backfill writes the identical file (unpublished), so it is archived
            # exactly once.
            sent = self.publisher.submit(record, completed_at)
            if not self.publisher.failing:
                await asyncio.wait((sent,), timeout=PUT_HEAD_START_S)
        started = time.perf_counter()
        await asyncio.to_thread(write_scan, self.root, record)
        if origin == "live":
            self.stats.write_times.append(time.perf_counter() - started)
        self.next_number += 1
        self.archived_ms = open_ms
        st = self.stats
        st.scans += 1
        st.last_scan = record.scan_number
        st.last_bar_ms = open_ms
        if st.first_scan is None:
            st.first_scan = record.scan_number
        if origin == "backfill":
            st.backfilled += 1
            return
        if origin == "gap":
            st.gap_filled += 1
        else:
            st.live += 1
            if st.first_live_scan is None:
                st.first_live_scan = record.scan_number

    async def handle_bar(self, bar: Bar) -> None:
        """One bar from the stream: skip it if already scanned, fill a hole before it, then scan it."""
        t = bar.open_ms
        if self.ingested_ms is not None and t <= self.ingested_ms:
            self.stats.duplicates += 1
            return
        if self.ingested_ms is not None and t > self.ingested_ms + self.bar_ms:
            first, last = self.ingested_ms + self.bar_ms, t - self.bar_ms
            count = (last - first) // self.bar_ms + 1
            self.log.warning("%d bar(s) %s … %s missing from the stream; filling them from REST", count,
                             _iso(first), _iso(last))
            for a, b in BackfillPlan(first, last, None, False, self.bar_ms).chunks(CHUNK_BARS):
                await self.ingest(a, await self.fetch(a, b), origin="gap")
        row = bar.closes.copy()
        if bar.missing:
            await self._repair(t, row)
        await self.ingest(t, row[None, :], origin="live", completed_at=bar.completed_at)
        if bar.missing and self.last_row is not None:  # what neither REST nor the previous close could give
            self.stats.missing_closes += int(np.count_nonzero(np.isnan(self.last_row)))

    async def _repair(self, open_ms: int, row: np.ndarray) -> None:
        """Missing closes of a stream bar straight from REST (kline bars; trade bars carry forward instead)."""
        if self.history.carry_forward or self.repair_max <= 0:
            return
        holes = [int(c) for c in np.flatnonzero(np.isnan(row)) if self._repair_misses.get(int(c), 0) < 3]
        if not holes:
            return
        try:
            found = await self.history.repair(open_ms, holes[: self.repair_max])
        except Exception as exc:  # noqa: BLE001 - a failed repair leaves the close missing, nothing more
            self.log.debug("repair of %d close(s) failed: %s", len(holes), exc)
            found = {}
        for c in holes[: self.repair_max]:
            if c in found:
                row[c] = found[c]
                self._repair_misses.pop(c, None)
                self.stats.repaired += 1
            else:
                self._repair_misses[c] = self._repair_misses.get(c, 0) + 1


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + "Z"


async def _server_now(rest: BinanceRest, log: logging.Logger, ctx: ServiceContext, retry_max_s: float) -> int:
    delay = 0.5
    logged = False
    while True:
        try:
            return await rest.server_time()
        except TRANSIENT as exc:
            if not logged:
                log.warning("market venue %s not reachable yet (%s); retrying", rest.base_url, exc)
                logged = True
            if await ctx.sleep(delay):
                raise Stopped() from None
            delay = min(retry_max_s, delay * 2)


async def run_scanner(ctx: ServiceContext, options: ScannerOptions | None = None, *,
                      stats: ScannerStats | None = None, settings: ScannerSettings | None = None) -> None:
    """The service body for `run_service("scanner", …)`; `stats` lets an embedding caller watch the counters."""
    opts = options if options is not None else ScannerOptions()
    cfg = settings if settings is not None else resolve_settings(opts)
    st = stats if stats is not None else ScannerStats()
    log = ctx.log
    n = len(cfg.symbols)
    log.info("scanner: %d symbols, %d s bars from %s (%s bars, %s history), precision %s; REST %s, WS %s", n,
             cfg.bar_ms // 1000, cfg.source, cfg.bars, cfg.history, cfg.precision, cfg.rest_url, cfg.ws_url)
    ctx.phase = "starting"

    def on_published(record: ScanRecord, completed_at: float | None, done: float, put_s: float) -> None:
        # latency of bars that closed after the start-up backlog was drained (not of those queued behind it)
        if completed_at is not None and st.steady_since is not None and completed_at >= st.steady_since:
            st.latencies.append(done - completed_at)
            st.put_times.append(put_s)

    rest = BinanceRest(cfg.rest_url)
    builder: BarBuilder = make_builder(cfg.bars, cfg.symbols, cfg.timing, interval=interval_name(cfg.bar_ms))
    history = make_history(cfg.history, rest, cfg.symbols, cfg.bar_ms)
    engine = ScanEngine(n, cfg.precision)
    bars: asyncio.Queue[Bar | None] = asyncio.Queue()

    def on_message(msg: Any) -> None:
        for bar in builder.on_message(msg):
            bars.put_nowait(bar)

    streams = MarketStreams(cfg.ws_url, builder.streams(), on_message=on_message, name="scanner")
    publisher = ScanPublisher(lambda: ctx.bus, log, timeout_s=opts.publish_timeout_s, on_published=on_published)

    async def deadlines() -> None:
        while True:
            await asyncio.sleep(opts.poll_s)
            venue_now = rest.clock.now_ms() if cfg.source == "binance" and rest.clock.synced else None
            for bar in builder.poll(venue_now):
                bars.put_nowait(bar)

    async def clock_sync() -> None:  # the venue clock closes quiet trade buckets (binance)
        while True:
            await asyncio.sleep(60.0)
            try:
                await rest.sync_time()
            except TRANSIENT:
                pass

    async def stopper() -> None:
        await ctx.stop.wait()
        bars.put_nowait(None)

    def refresh() -> None:
        c = builder.counters
        st.late, st.forced, st.dead_symbols = c.late, c.forced, c.dead
        st.published, st.bus_failures, st.unpublishable = (publisher.published, publisher.failures,
                                                          publisher.unpublishable)
        st.eligibility_mismatches = engine.eligibility_mismatches

    ctx.spawn(stopper(), "stopper")
    ctx.reconnect_bus = True   # one key and no listeners: a new client serves; scans are archived meanwhile
    ctx.spawn(ctx.connect_bus(), "bus")
    ctx.start_bus_watch()
    ctx.spawn(publisher.run(), "publisher")
    last_log = time.monotonic()
    logged_summary = ""
    last_stream_stats = 0.0
    try:
        archive = await asyncio.to_thread(inspect_archive, ctx.home)
        # the warm-up is owed from the start: while the venue is not answering yet (a family's simulator builds its
        # history first) the heartbeat says 0 of the bars the plan will fetch at least, so MHS says WARMING, not a
        # missing scan; the backfill's progress replaces it with the plan's own count
        ctx.warmup = (0, opts.warmup_bars if archive.empty else opts.rewarm_bars)
        await streams.start()  # subscribe first: live bars are buffered while we backfill
        try:
            await streams.wait_connected(timeout=10.0)
        except TimeoutError:
            log.warning("market streams not connected after 10 s; backfilling anyway (holes are filled from REST)")
        ctx.spawn(deadlines(), "deadlines")
        if cfg.source == "binance":
            ctx.spawn(clock_sync(), "clock-sync")
        scanner = Scanner(root=ctx.home, symbols=cfg.symbols, bar_ms=cfg.bar_ms, engine=engine, history=history,
                          publisher=publisher, stats=st, log=log, archive=archive, repair_max=opts.repair_max,
                          retry_max_s=opts.retry_max_s, sleep=ctx.sleep, stop=ctx.stop)
        ctx.phase = "backfilling"
        now_ms = await _server_now(rest, log, ctx, opts.retry_max_s)
        plan = plan_backfill(now_ms, cfg.bar_ms, archive, warmup_bars=opts.warmup_bars, rewarm_bars=opts.rewarm_bars)
        await scanner.backfill(plan, on_progress=lambda done, total: setattr(ctx, "warmup", (done, total)))
        ctx.warmup = None
        if scanner.ingested_ms is not None:
            builder.skip_through(scanner.ingested_ms)
        st.live_started = True
        refresh()
        ctx.phase = st.phase()
        log.info("live: scanning the stream after %s (next scan %d)",
                 _iso(scanner.ingested_ms) if scanner.ingested_ms is not None else "-", scanner.next_number)
        while True:
            bar = await bars.get()
            if bar is None:
                break
            if st.steady_since is not None:
                st.wait_times.append(time.perf_counter() - bar.completed_at)
            await scanner.handle_bar(bar)
            if st.steady_since is None and bars.empty():
                st.steady_since = time.perf_counter()
                log.info("caught up with the stream: %d buffered bar(s) scanned", st.live + st.duplicates)
            await asyncio.sleep(0)  # let the publisher write this scan before the next bar of a backlog
            now = time.monotonic()
            if now - last_stream_stats >= 1.0:
                last_stream_stats = now
                st.reconnects = streams.stats().reconnects
            refresh()
            ctx.phase = st.phase()
            if now - last_log >= opts.stats_log_s:
                summary = st.summary()
                if summary != logged_summary:
                    log.info("scanner counters: %s", summary)
                    logged_summary = summary
                last_log = now
    except Stopped:
        pass
    finally:
        if ctx.bus is not None and not await publisher.wait_idle(opts.publish_timeout_s + 1.0):
            log.warning("stopping with scans not yet on the bus (they are in the archive)")
        await streams.close()
        await rest.close()
        refresh()
        log.info("scanner stopped: %s", st.summary())


__all__ = ["ScanPublisher", "Scanner", "ScannerOptions", "ScannerSettings", "ScannerStats", "resolve_settings",
           "run_scanner"]
