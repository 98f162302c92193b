"""The scan bridge: Arrow scan files written by an external scanner → ``DOLPHIN_FEATURES["latest_eigen_scan"]``.

For deployments where the scanner runs elsewhere (bible §2a, §24.4): it writes one
NG5 file per scan into a shared arrow_scans directory; the bridge pushes each new one
to the bus through `payload_from_record`, the same mapping the in-process scanner
uses. Per poll:

1. the watcher lists files that appeared or changed (by mtime, never by scan number);
2. each is read and validated (`read_scan`). A torn file (unreadable) is retried until
   it has stayed unchanged for `settle_s`, then counted as corrupt; a foreign or
   inconsistent one is counted at once. One log line with the path each; the loop
   goes on;
3. its scan number is classified (`RunTracker`, by mtime): a second file for a number
   seen within `duplicate_window_s` is skipped (NG7 double output); a lower number not
   seen that recently starts a new run (scanner restart) and is pushed;
4. publishable scans are pushed; warm-up scans (vel_div undefined) stay in the archive.

At start it reads what the bus holds and pushes nothing older: only files modified
after that value's publish time, at most `catchup_max` of them (the newest). With an
empty bus, files present before the start are history and are not pushed.

The live edge: a scan whose bar opens at or before the bar of the newest scan the bus
has seen (from this bridge or any other writer) is never pushed — an archive's backfill
or an old file touched again is history, not the market now (counted as ``stale``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dolphin.bus import schema
from dolphin.bus.scan_codec import payload_from_record, unpublishable_reason
from dolphin.scan.record import ScanRecord
from dolphin.services.bridge.runs import DEFAULT_WINDOW_S, RunTracker, Verdict
from dolphin.services.bridge.watcher import ArchiveWatcher, FileSeen
from dolphin.services.runtime import ServiceContext
from dolphin.store.arrow_scans import ScanFileError, archive_dir, parse_scan_filename, read_scan
from dolphin.store.scan_archive import resolve_archive


@dataclass(frozen=True)
class BridgeOptions:
    """How the bridge runs; the CLI sets `watch` and `poll_s`, the rest are tuned defaults."""

    watch: Path | None = None       # arrow_scans directory (or a root holding one); default <runtime root>/arrow_scans
    poll_s: float = 0.25            # seconds between directory polls
    settle_s: float = 2.0           # an unreadable file gets this long (unchanged) to finish being written
    slack_s: float = 5.0            # mtime tolerance of the watcher (coarse directory timestamps)
    catchup_max: int = 12           # at start, push at most this many files newer than the bus value
    duplicate_window_s: float = DEFAULT_WINDOW_S  # a number seen this recently (by mtime) again is a duplicate
    stats_log_s: float = 60.0       # counters are logged this often when they changed

    def __post_init__(self) -> None:
        if (not self.poll_s > 0 or self.settle_s < 0 or self.slack_s < 0 or self.catchup_max < 0
                or self.duplicate_window_s < 0):
            raise ValueError(f"invalid bridge options: {self}")


@dataclass
class BridgeStats:
    """The bridge's counters (also in its heartbeat phase and its log)."""

    pushed: int = 0
    duplicates: int = 0
    corrupt: int = 0
    resets: int = 0
    warmup: int = 0        # valid scans not publishable (vel_div undefined)
    stale: int = 0         # newer than the bus at start but beyond the catch-up limit
    bus_errors: int = 0
    last_scan_number: int | None = None
    last_pushed_path: str | None = None
    files: int = 0         # files examined

    def summary(self) -> str:
        return (f"pushed={self.pushed} duplicates={self.duplicates} corrupt={self.corrupt} resets={self.resets} "
                f"warmup={self.warmup} stale={self.stale} bus_errors={self.bus_errors} "
                f"last_scan={self.last_scan_number if self.last_scan_number is not None else '-'}")

    def phase(self) -> str:
        return f"watching {self.summary()}"


class Bridge:
    """One bridge over one archive directory and one bus (an `AsyncBus`-like object)."""

    def __init__(self, archive: Path, bus: Any, log: logging.Logger, options: BridgeOptions | None = None, *,
                 stats: BridgeStats | None = None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.archive = archive
        self.bus = bus
        self.log = log
        self.options = options if options is not None else BridgeOptions()
        self.stats = stats if stats is not None else BridgeStats()
        self.watcher = ArchiveWatcher(archive, slack_s=self.options.slack_s, monotonic=monotonic)
        self.tracker = RunTracker(self.options.duplicate_window_s)
        self._clock = clock
        self._monotonic = monotonic
        self._unsettled: dict[str, tuple[tuple[int, int], float]] = {}
        self._pending: tuple[ScanRecord, str] | None = None
        self.edge_ns: int | None = None   # bar time of the newest scan on the bus: nothing at or before it is pushed
        self._in_warmup = False
        self._missing_logged = False
        self._fs_error_logged = False
        self._logged_summary = ""
        self._last_stats_log = monotonic()

    # ------------------------------------------------------------ start
    async def start(self) -> None:
        """Read the bus's current scan, take stock of the archive, catch up what is newer."""
        floor_s: float | None = None
        held = "nothing"
        try:
            latest = await self.bus.get(schema.FEATURES, schema.LATEST_EIGEN_SCAN)
        except Exception as exc:  # a bus hiccup at start must not stop the bridge
            self.log.warning("could not read %s[%s] (%s); pushing only files that arrive from now on",
                             schema.FEATURES, schema.LATEST_EIGEN_SCAN, exc)
            latest = None
        if latest is not None:
            floor_s = latest.published_s()
            self.edge_ns = int(latest.timestamp_s() * 1e9)
            held = f"scan {latest.scan_number} published {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(floor_s))} UTC"
        existing = await self._fs(self.watcher.scan_all) or []
        if not self.watcher.exists:
            self.log.info("%s does not exist yet; waiting for it", self.archive)
            self._missing_logged = True
        candidates = [] if floor_s is None else [f for f in existing if f.mtime_ns > floor_s * 1e9]
        if len(candidates) > self.options.catchup_max:
            skipped = len(candidates) - self.options.catchup_max
            candidates = candidates[skipped:]
            self.stats.stale += skipped
            self.log.warning("%d file(s) newer than the bus value are older than the %d newest; not pushed (stale)",
                             skipped, self.options.catchup_max)
        self._seed(existing, {c.path for c in candidates})
        self.log.info("watching %s: %d scan file(s) present; the bus holds %s; catching up %d file(s)",
                      self.archive, len(existing), held, len(candidates))
        await self._handle(candidates)

    def _seed(self, existing: list[FileSeen], candidates: set[str]) -> None:
        """Feed the numbers (from the names) of recent files not pushed now to the run tracker, oldest first.

        A late double output of a scan handled before this start is then still known.
        """
        history = [f for f in existing if f.path not in candidates]
        if not history:
            return
        horizon_ns = history[-1].mtime_ns - int(self.options.duplicate_window_s * 1e9)
        for f in history:
            parsed = parse_scan_filename(Path(f.path).name)
            if parsed is not None and f.mtime_ns >= horizon_ns:
                self.tracker.classify(parsed[0], f.mtime_ns)

    # ------------------------------------------------------------ polling
    async def poll_once(self) -> None:
        """One look at the archive: retry a failed push, then handle what is new."""
        if self._pending is not None:
            record, path = self._pending
            await self._publish(record, path)
        files = await self._fs(self.watcher.poll)
        if files is None:
            return
        if not self.watcher.exists and not self._missing_logged:
            self.log.info("%s does not exist (yet); waiting for it", self.archive)
            self._missing_logged = True
        elif self.watcher.exists and self._missing_logged:
            self.log.info("%s appeared", self.archive)
            self._missing_logged = False
        await self._handle(files)

    async def _fs(self, call: Callable[[], list[FileSeen]]) -> list[FileSeen] | None:
        """Run a directory listing off the event loop; a filesystem error is logged once and retried next poll."""
        try:
            result = await asyncio.to_thread(call)
        except OSError as exc:
            if not self._fs_error_logged:
                self.log.warning("cannot list %s: %s (retrying every poll)", self.archive, exc)
                self._fs_error_logged = True
            return None
        if self._fs_error_logged:
            self.log.info("%s is readable again", self.archive)
            self._fs_error_logged = False
        return result

    async def _handle(self, files: list[FileSeen]) -> None:
        if not files:
            return
        outcomes = await asyncio.to_thread(_read_all, files)
        for seen, outcome in outcomes:
            self.stats.files += 1
            if isinstance(outcome, ScanFileError):
                self._bad_file(seen, outcome)
            else:
                self._unsettled.pop(seen.path, None)
                await self._accept(outcome, seen)

    def _bad_file(self, seen: FileSeen, error: ScanFileError) -> None:
        if error.reason == "missing":  # replaced or removed between listing and reading
            self._unsettled.pop(seen.path, None)
            return
        if error.reason == "unreadable":
            now = self._monotonic()
            key = (seen.mtime_ns, seen.size)
            first = self._unsettled.get(seen.path)
            if first is None or first[0] != key:
                self._unsettled[seen.path] = (key, now)
                first = (key, now)
            if now - first[1] < self.options.settle_s:
                self.watcher.retry(seen)  # maybe still being written: look again next poll
                return
        self._unsettled.pop(seen.path, None)
        self.stats.corrupt += 1
        self.log.warning("skipped bad scan file %s — %s: %s", seen.path, error.reason, error.detail)

    async def _accept(self, record: ScanRecord, seen: FileSeen) -> None:
        path = seen.path
        previous = self.tracker.last
        verdict = self.tracker.classify(record.scan_number, seen.mtime_ns)
        if verdict is Verdict.DUPLICATE:
            self.stats.duplicates += 1
            self.log.info("duplicate scan %d skipped: %s (a file with this number came within the last %.0f s)",
                          record.scan_number, path, self.options.duplicate_window_s)
            return
        if verdict is Verdict.RESET:
            self.stats.resets += 1
            self.log.warning("scan counter went back from %s to %d (%s): the external scanner restarted; new run",
                             previous, record.scan_number, path)
        reason = unpublishable_reason(record)
        if reason is not None:
            self.stats.warmup += 1
            if not self._in_warmup:
                self.log.info("scan %d not pushed: %s; warm-up scans stay in the archive only",
                              record.scan_number, reason)
                self._in_warmup = True
            return
        if self._in_warmup:
            self.log.info("scan %d: vel_div defined again; pushing resumes", record.scan_number)
            self._in_warmup = False
        if self.edge_ns is not None and record.timestamp_ns <= self.edge_ns:
            self.stats.stale += 1
            self.log.info("scan %d not pushed: its bar is not after the bus's newest scan (history, not the live "
                          "edge): %s", record.scan_number, path)
            return
        await self._publish(record, path)

    async def _publish(self, record: ScanRecord, path: str) -> None:
        try:
            payload = payload_from_record(record, bridge_ts=self._clock())
            await self.bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload)
        except Exception as exc:  # the bus being away must not kill the bridge; retried next poll
            self.stats.bus_errors += 1
            if self._pending is None:
                self.log.warning("push of scan %d failed (%s); retrying every poll", record.scan_number, exc)
            self._pending = (record, path)
            return
        if self._pending is not None:
            self.log.info("bus writes work again")
            self._pending = None
        self.stats.pushed += 1
        self.edge_ns = record.timestamp_ns if self.edge_ns is None else max(self.edge_ns, record.timestamp_ns)
        self.stats.last_scan_number = record.scan_number
        self.stats.last_pushed_path = path

    # ------------------------------------------------------------ reporting
    def log_stats(self, *, force: bool = False) -> None:
        """Log the counters when they changed (at most every `stats_log_s`), or now with `force`."""
        now = self._monotonic()
        summary = self.stats.summary()
        due = now - self._last_stats_log >= self.options.stats_log_s and summary != self._logged_summary
        if force or due:
            self.log.info("bridge counters: %s", summary)
            self._logged_summary = summary
            self._last_stats_log = now


def _read_all(files: list[FileSeen]) -> list[tuple[FileSeen, ScanRecord | ScanFileError]]:
    """Read and validate files (in a worker thread); every failure becomes a ScanFileError."""
    out: list[tuple[FileSeen, ScanRecord | ScanFileError]] = []
    for seen in files:
        try:
            out.append((seen, read_scan(seen.path)))
        except ScanFileError as exc:
            out.append((seen, exc))
        except Exception as exc:  # an unforeseen reader failure is still just a bad file
            out.append((seen, ScanFileError(seen.path, "unreadable", f"{type(exc).__name__}: {exc}")))
    return out


def _family_has_scanner() -> bool:
    """Whether this runtime's family runs DOLPHIN's own scanner (it always does unless the config is unreadable)."""
    from dolphin.config.services import load_services_config
    from dolphin.errors import ConfigError
    from dolphin.supervision.programs import enabled_programs

    try:
        return any(p.name == "scanner" for p in enabled_programs(load_services_config()))
    except ConfigError:
        return True


def watch_dir(options: BridgeOptions, home: Path) -> Path:
    """The directory to watch: ``--watch`` (an arrow_scans dir or a root holding one) or ``<home>/arrow_scans``."""
    return resolve_archive(options.watch) if options.watch is not None else archive_dir(home)


async def run_bridge(ctx: ServiceContext, options: BridgeOptions | None = None, *,
                     stats: BridgeStats | None = None) -> None:
    """The service body for `run_service("bridge", …)`; `stats` lets an embedding caller watch the counters."""
    opts = options if options is not None else BridgeOptions()
    archive = watch_dir(opts, ctx.home)
    if archive.resolve() == archive_dir(ctx.home).resolve() and _family_has_scanner():
        ctx.log.error("refusing to bridge %s: it is this family's own scanner archive, and the scanner publishes "
                      "its scans itself (a bridge would republish them, backfill included); point --watch at an "
                      "external scanner's folder", archive)
        ctx.phase = "refused"
        return
    ctx.phase = "connecting"
    bus = await ctx.connect_bus()
    if bus is None:  # stopped while waiting for the bus
        return
    bridge = Bridge(archive, bus, ctx.log, opts, stats=stats)
    ctx.phase = "starting"
    await bridge.start()
    ctx.phase = bridge.stats.phase()
    try:
        while not ctx.stop.is_set():
            await bridge.poll_once()
            ctx.phase = bridge.stats.phase()
            bridge.log_stats()
            if await ctx.sleep(opts.poll_s):
                break
    finally:
        bridge.log_stats(force=True)
