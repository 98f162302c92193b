"""`dolphin tui --replay PATH`: drive the same screen from an archived span, for post-mortems.

A replay is one more feed of `TuiState`, exactly like the bus feed: it builds the
payloads the services would have published (scans from archived scan records; trader
events from a journal) and delivers them at their market times, paced by a
`ReplayClock` (market seconds per wall second = ``speed``). The state's clock *is* the
replay clock, so every panel's age and staleness is measured in market time of the
replay, and nothing else in the UI knows it is a replay.

Sources:

* `ScanArchive` — archived scans in time order. Implementations: `ArrowScanArchive`
  (the scanner's Arrow IPC files, via ``dolphin.store.arrow_scans``) and
  `ParquetScanArchive` (a scan table, as `dolphin scan build` / the backtester use).
* `JournalReader` — trader events (closed trades, capital) in time order; the
  interface is defined here, `TraderJournalReader` adapts ``dolphin.store.journal``.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dolphin.bus import BusEvent, EigenScan, schema
from dolphin.bus.scan_codec import UnpublishableScan, payload_from_record, records_from_table
from dolphin.errors import DataError
from dolphin.scan.record import ScanRecord
from dolphin.store.journal import Commit, ScanInput, TradeRecord
from tui.state import LINK_REPLAY, ReplayView, TuiState


# ------------------------------------------------------------------------ archived records
def scan_payload(record: ScanRecord) -> EigenScan | None:
    """The NG8 payload the scanner would have published (scan codec); None for a warm-up scan."""
    try:
        return payload_from_record(record, bridge_ts=record.timestamp_ns / 1e9)
    except UnpublishableScan:
        return None


class ScanArchive(Protocol):
    label: str

    def __len__(self) -> int: ...

    def scans(self) -> Iterator[ScanRecord]: ...


class ParquetScanArchive:
    """A scan table file (`dolphin.store.scan_table`): one row per bar."""

    def __init__(self, path: str | Path) -> None:
        from dolphin.store.scan_table import read_scan_table

        self.path = Path(path)
        self.label = self.path.name
        self.table = read_scan_table(self.path)

    def __len__(self) -> int:
        return self.table.rows

    def scans(self) -> Iterator[ScanRecord]:
        return records_from_table(self.table)


class ArrowScanArchive:
    """The scanner's Arrow scan files under a directory (or one file), via ``dolphin.store.arrow_scans``."""

    def __init__(self, path: str | Path, *, iter_files: Any = None, read: Any = None) -> None:
        if iter_files is None or read is None:
            from dolphin.store import arrow_scans

            iter_files = iter_files or arrow_scans.iter_scan_files
            read = read or arrow_scans.read_scan
        self.path = Path(path)
        self.label = self.path.name
        self._read = read
        self.files = [self.path] if self.path.is_file() else list(iter_files(self.path))  # in scan order
        if not self.files:
            raise DataError(f"no Arrow scan files under {self.path} (arrow_scans/YYYY-MM-DD/scan_*.arrow)")
        self.unreadable = 0

    def __len__(self) -> int:
        return len(self.files)

    def scans(self) -> Iterator[ScanRecord]:
        """Read one file at a time as the replay reaches it (a day is ~17,000 files)."""
        for f in self.files:
            try:
                yield self._read(f)
            except DataError:
                self.unreadable += 1  # a torn or foreign file: left out, the replay goes on


def open_archive(path: str | Path) -> ScanArchive:
    p = Path(path)
    if not p.exists():
        raise DataError(f"replay source not found: {p}")
    if p.is_file() and p.suffix == ".parquet":
        return ParquetScanArchive(p)
    return ArrowScanArchive(p)


# ------------------------------------------------------------------------ the journal
@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One trader event at a market time: kind ``trade`` (a closed trade dict), ``capital`` (float)…"""

    ts_s: float
    kind: str
    data: Any = None
    scan_number: int | None = None


class JournalReader(Protocol):
    """Trader events of an archived span, in time order."""

    def events(self) -> Iterator[JournalEvent]: ...


class TraderJournalReader:
    """Adapts the trader's journal (``dolphin.store.journal``): closed trades and committed capital."""

    def __init__(self, path: str | Path) -> None:
        from dolphin.store.journal import Journal

        self.path = Path(path)
        self._journal = Journal(self.path)

    def events(self) -> Iterator[JournalEvent]:
        ts_of: dict[int, float] = {}
        for rec in self._journal.iter_records():   # streamed: a long journal is not held in memory
            match rec:
                case ScanInput(scan_number=scan, ts_ms=ts_ms):
                    ts_of[scan] = ts_ms / 1000.0
                case TradeRecord(scan_number=scan) if scan in ts_of:
                    yield JournalEvent(ts_of[scan], "trade", dict(rec.trade), scan)
                case Commit(scan_number=scan) if scan in ts_of:
                    yield JournalEvent(ts_of[scan], "capital", rec.capital, scan)


# ------------------------------------------------------------------------ pacing
class ReplayClock:
    """Market time of the replay: advances ``speed`` market seconds per wall second unless paused."""

    def __init__(self, start_s: float = 0.0, speed: float = 1.0, wall: Any = time.monotonic) -> None:
        self._wall = wall
        self._lock = threading.Lock()
        self._base_market = start_s
        self._base_wall = wall()
        self.speed = speed
        self.paused = False

    def now(self) -> float:
        with self._lock:
            if self.paused:
                return self._base_market
            return self._base_market + (self._wall() - self._base_wall) * self.speed

    def _rebase(self) -> None:
        market = self._base_market if self.paused else self._base_market + (self._wall() - self._base_wall) * self.speed
        self._base_market = market
        self._base_wall = self._wall()

    def reset(self, start_s: float) -> None:
        with self._lock:
            self._base_market = start_s
            self._base_wall = self._wall()

    def set_speed(self, speed: float) -> None:
        with self._lock:
            self._rebase()
            self.speed = max(0.01, min(speed, 100_000.0))

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._rebase()
            self.paused = paused


def bar_interval_s(archive: ScanArchive, sample: int = 64) -> float | None:
    """The archive's bar interval (median gap of its first scans), so staleness follows the data:
    1-minute bars replayed at speed 1 are not stale 30 s after each bar."""
    import itertools
    import statistics

    stamps = [r.timestamp_ns for r in itertools.islice(archive.scans(), sample)]
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(stamps) if b > a]
    return statistics.median(gaps) if gaps else None


@dataclass
class ReplayFeed:
    """Delivers an archive (and optionally a journal) into the state at the replay clock's pace."""

    state: TuiState
    archive: ScanArchive
    clock: ReplayClock
    journal: JournalReader | None = None
    step_s: float = 0.05
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    delivered: int = 0

    def start(self) -> None:
        self.state.set_bar_interval(bar_interval_s(self.archive))
        self.state.set_bus(LINK_REPLAY, address=self.archive.label)
        self.state.set_replay(ReplayView(label=self.archive.label, speed=self.clock.speed, total=len(self.archive)))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tui-replay", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> None:
        """Nothing to re-read: a replay's state is complete."""

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)
        self.state.update_replay(speed=self.clock.speed)

    def toggle_pause(self) -> None:
        self.clock.set_paused(not self.clock.paused)
        self.state.update_replay(paused=self.clock.paused)

    def _items(self) -> Iterator[tuple[float, str, Any]]:
        scans = ((r.timestamp_ns / 1e9, "scan", r) for r in self.archive.scans())
        events = ((e.ts_s, "journal", e) for e in self.journal.events()) if self.journal is not None else iter(())
        yield from heapq.merge(scans, events, key=lambda item: item[0])

    def _wait_until(self, market_s: float) -> bool:
        while not self._stop.is_set():
            if self.clock.now() >= market_s:
                return True
            self._stop.wait(self.step_s)
        return False

    def _run(self) -> None:
        position = skipped = 0
        first = True
        for ts, kind, item in self._items():
            if first:
                self.clock.reset(ts)
                first = False
            if not self._wait_until(ts):
                return
            if kind == "scan":
                position += 1
                payload = scan_payload(item)
                if payload is None:
                    skipped += 1
                else:
                    self.state.deliver(BusEvent(schema.FEATURES, schema.LATEST_EIGEN_SCAN, "ADDED", payload, ts))
                    self.delivered += 1
                self.state.update_replay(position=position, skipped=skipped)
            else:
                self.state.add_journal(item)
        self.state.update_replay(position=position, skipped=skipped, finished=True)
