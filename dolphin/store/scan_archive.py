"""The scan archive as a whole: list it, resume its counter, load it for a replay, query it.

The archive is a directory of day directories of one-row NG5 files
(`dolphin.store.arrow_scans`). Three consumers read it in bulk:

* the scanner, at start: `highest_scan_number` (from file names only: no file is
  opened) so numbering resumes where it stopped (bible §27.6);
* the backtester: `load_arrow_scans` → the same `ScanTable` a Parquet scan table gives;
* operators: `query_scans(root, "SELECT … FROM scans")` through DuckDB.

Bulk reads avoid per-row Python work: each file is read in one call and parsed by
pyarrow's IPC reader, the batches are concatenated once, and the checks and the
JSON columns are handled column-wise (one JSON document for all price rows).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dolphin.bus.scan_codec import TABLE_FROM_RECORD, decode_assets, decode_price_rows
from dolphin.errors import DataError, UsageError
from dolphin.scan.record import SCHEMA_VERSION, ScanRecord
from dolphin.scan.table import ScanTable
from dolphin.store.arrow_scans import (
    ARCHIVE_DIRNAME,
    DAY_DIR_RE,
    SCAN_COLUMNS,
    SCAN_SCHEMA,
    ScanFileError,
    archive_dir,
    open_scan_batch,
    parse_scan_filename,
    read_scan,
)
from dolphin.store.scan_table import parse_day_ms

log = logging.getLogger("dolphin.store.scan_archive")


class ScanFile(NamedTuple):
    """A scan file known by its name: where it is and what the name says.

    `path` is a plain string: archives hold tens of thousands of files and a pathlib
    object per file costs more than reading it.
    """

    path: str
    day: str
    scan_number: int
    hhmmss: str


@dataclass(frozen=True)
class DuplicateScan:
    """Two files with one scan number: the first (kept) and a later one (skipped)."""

    scan_number: int
    kept: str
    skipped: str


@dataclass(frozen=True)
class ArchiveRead:
    """The validated rows of an archive (27 NG5 columns, scan order) and what was left out."""

    root: Path
    table: pa.Table
    paths: list[str]  # the file of each row
    duplicates: list[DuplicateScan] = field(default_factory=list)
    skipped: list[ScanFileError] = field(default_factory=list)


# ---------------------------------------------------------------- listing
def resolve_archive(path: str | Path) -> Path:
    """The archive directory an operator means by `path`.

    A directory named ``arrow_scans`` is the archive; otherwise ``path/arrow_scans``
    if it exists, or `path` itself if it directly holds day directories (a copy
    under another name); otherwise ``path/arrow_scans``, which may appear later.
    """
    p = Path(path)
    if p.name == ARCHIVE_DIRNAME:
        return p
    nested = p / ARCHIVE_DIRNAME
    if nested.is_dir():
        return nested
    try:
        with os.scandir(p) as entries:
            if any(DAY_DIR_RE.match(e.name) and e.is_dir() for e in entries):
                return p
    except (FileNotFoundError, NotADirectoryError):
        pass
    return nested


def _day_bounds(date_from: str | None, date_to: str | None) -> tuple[str | None, str | None]:
    if date_from:
        parse_day_ms(date_from)
    if date_to:
        parse_day_ms(date_to)
    if date_from and date_to and date_from > date_to:
        raise UsageError(f"date range is empty: from {date_from} is after to {date_to}")
    return date_from, date_to


def list_scan_files(archive: str | Path, date_from: str | None = None, date_to: str | None = None) -> list[ScanFile]:
    """Every scan file of an archive directory, in scan order: (scan number, day, time, name).

    Names that are not ``scan_NNNNNN_HHMMSS.arrow`` in a ``YYYY-MM-DD`` directory are
    ignored (temp files of a write in progress, notes, foreign files).
    """
    root = Path(archive)
    lo, hi = _day_bounds(date_from, date_to)
    found: list[ScanFile] = []
    try:
        days = [e for e in os.scandir(root) if DAY_DIR_RE.match(e.name) and e.is_dir()]
    except FileNotFoundError:
        return []
    for day in days:
        if (lo is not None and day.name < lo) or (hi is not None and day.name > hi):
            continue
        with os.scandir(day.path) as entries:
            for entry in entries:
                parsed = parse_scan_filename(entry.name)
                if parsed is not None and entry.is_file():
                    found.append(ScanFile(entry.path, day.name, parsed[0], parsed[1]))
    found.sort(key=lambda f: (f.scan_number, f.day, f.hhmmss, f.path))
    return found


def iter_scan_files(root: str | Path, date_from: str | None = None, date_to: str | None = None) -> Iterator[Path]:
    """Paths of the scan files under `root` (runtime root or arrow_scans directory), in scan order."""
    for f in list_scan_files(resolve_archive(root), date_from, date_to):
        yield Path(f.path)


def highest_scan_number(root: str | Path) -> int:
    """The largest scan number in the file names under `root`'s archive; 0 when there is none.

    `root` is what `write_scan` takes (the archive is ``root/arrow_scans``, or `root`
    itself when already named so), so the scanner's counter and its files always agree.
    Only names are read: this is cheap even for months of scans.
    """
    files = list_scan_files(archive_dir(root))
    return files[-1].scan_number if files else 0


# ---------------------------------------------------------------- bulk read
def _groups(files: Sequence[ScanFile]) -> list[list[ScanFile]]:
    """Files by scan number, in scan order; within a number, in name order (the first is preferred)."""
    groups: list[list[ScanFile]] = []
    for f in files:
        if groups and groups[-1][0].scan_number == f.scan_number:
            groups[-1].append(f)
        else:
            groups.append([f])
    return groups


def open_checked(f: ScanFile) -> pa.RecordBatch:
    """The file's row batch, refusing a file whose content contradicts its name (another scan number)."""
    batch = open_scan_batch(f.path)
    number = batch.column(SCAN_COLUMNS.index("scan_number"))[0].as_py()
    if number != f.scan_number:
        raise ScanFileError(f.path, "values", f"holds scan_number {number}, its name says {f.scan_number}")
    return batch


def _concat(batches: list[pa.RecordBatch]) -> pa.Table:
    """One contiguous table from many one-row batches (pyarrow ≥ 19 has a direct concat)."""
    if hasattr(pa, "concat_batches"):
        return pa.Table.from_batches([pa.concat_batches(batches)], schema=SCAN_SCHEMA)
    return pa.Table.from_batches(batches, schema=SCAN_SCHEMA).combine_chunks()


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _validate_columns(table: pa.Table, files: Sequence[ScanFile]) -> None:
    for name in SCAN_COLUMNS:
        column = table.column(name)
        if column.null_count:
            row = _first(column.is_null().to_numpy(zero_copy_only=False))
            assert row is not None
            raise ScanFileError(files[row].path, "values", f"column {name!r} is null")
    versions = table.column("schema_version")
    bad = _first(pc.not_equal(versions, SCHEMA_VERSION).to_numpy(zero_copy_only=False))
    if bad is not None:
        raise ScanFileError(files[bad].path, "schema",
                            f"schema_version {versions[bad].as_py()!r}, expected {SCHEMA_VERSION!r}")
    numbers = table.column("scan_number").to_numpy()
    named = np.fromiter((f.scan_number for f in files), dtype=np.int64, count=len(files))
    bad = _first(numbers != named)
    if bad is not None:
        raise ScanFileError(files[bad].path, "values", f"holds scan_number {int(numbers[bad])}, its name says {named[bad]}")


def read_archive(root: str | Path, date_from: str | None = None, date_to: str | None = None, *,
                 skip_corrupt: bool = False, after_scan: int | None = None) -> ArchiveRead:
    """All scans under `root` (runtime root or arrow_scans directory) as one validated Arrow table.

    Duplicate scan numbers keep the first *readable* file in scan order (the NG7 double
    output, §27.1: the later file carries stale prices; a corrupt first file never hides a
    good second one) and are listed in `duplicates`. A file that cannot be read, or whose
    content names another scan number than its file name, raises ScanFileError, or with
    `skip_corrupt` is left out and listed in `skipped`. Days are the archive's day
    directories, inclusive. ``after_scan`` reads only the files numbered above it (an
    incremental reader's new scans; nothing else is opened).
    """
    archive = resolve_archive(root)
    files = list_scan_files(archive, date_from, date_to)
    if after_scan is not None:
        files = [f for f in files if f.scan_number > after_scan]
    if not files:
        span = f" between {date_from or 'the start'} and {date_to or 'the end'}" if (date_from or date_to) else ""
        raise DataError(f"{archive}: no scan files (scan_NNNNNN_HHMMSS.arrow in YYYY-MM-DD directories){span}")
    groups = _groups(files)
    batches: list[pa.RecordBatch] = []
    read: list[ScanFile] = []
    skipped: list[ScanFileError] = []
    duplicates: list[DuplicateScan] = []
    for group in groups:
        kept: ScanFile | None = None
        for f in group:
            if kept is not None:   # the first readable file of a number wins; later ones are duplicates
                duplicates.append(DuplicateScan(f.scan_number, kept.path, f.path))
                continue
            try:
                batches.append(open_checked(f))
            except ScanFileError as exc:
                if not skip_corrupt:
                    raise
                skipped.append(exc)
                continue
            kept = f
            read.append(f)
    if not batches:
        raise DataError(f"{archive}: none of the {len(groups)} scan file(s) could be read ({skipped[0]})")
    table = _concat(batches)
    _validate_columns(table, read)
    return ArchiveRead(root=archive, table=table, paths=[f.path for f in read], duplicates=duplicates,
                       skipped=skipped)


# ---------------------------------------------------------------- replay table
def _universe(table: pa.Table, paths: Sequence[str]) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    """Union of the asset lists in order of first appearance, each row's list index, and column maps."""
    encoded = table.column("assets").combine_chunks().dictionary_encode()
    lists = [_decode_assets(text, paths, encoded.indices, k) for k, text in enumerate(encoded.dictionary.to_pylist())]
    index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_assets = table.column("n_assets").to_numpy()
    lengths = np.array([len(a) for a in lists], dtype=np.int64)[index]
    bad = _first(lengths != n_assets)
    if bad is not None:
        raise ScanFileError(paths[bad], "values", f"n_assets={int(n_assets[bad])} but {int(lengths[bad])} assets")
    universe: dict[str, int] = {}
    for assets in lists:  # the dictionary is in order of first appearance
        for a in assets:
            universe.setdefault(a, len(universe))
    columns = [np.array([universe[a] for a in assets], dtype=np.int64) for assets in lists]
    return list(universe), index, columns


def _decode_assets(text: str, paths: Sequence[str], indices: pa.Array, k: int) -> list[str]:
    try:
        assets = decode_assets(text)
    except msgspec.DecodeError as exc:
        row = _first(pc.equal(indices, k).to_numpy(zero_copy_only=False))
        raise ScanFileError(paths[row or 0], "values", f"assets is not a JSON list of symbols: {exc}") from None
    if len(set(assets)) != len(assets) or not all(assets):
        row = _first(pc.equal(indices, k).to_numpy(zero_copy_only=False))
        raise ScanFileError(paths[row or 0], "values", "assets must be unique, non-empty symbols")
    return assets


def _price_rows(texts: list[str], rows: np.ndarray, width: int, paths: Sequence[str]) -> np.ndarray:
    """Decode many ``prices`` JSON lists at once (one document) into a (rows, width) float matrix."""
    try:
        decoded = decode_price_rows(texts)
    except msgspec.DecodeError:
        for r, text in zip(rows, texts, strict=True):  # find the culprit only on failure
            try:
                decode_price_rows([text])
            except msgspec.DecodeError as exc:
                raise ScanFileError(paths[int(r)], "values", f"prices is not a JSON list of numbers: {exc}") from None
        raise
    for r, values in zip(rows, decoded, strict=True):
        if len(values) != width:
            raise ScanFileError(paths[int(r)], "values", f"{len(values)} prices for {width} assets")
    matrix = np.array(decoded, dtype=np.float64).reshape(len(texts), width)  # None → NaN
    bad = _first(np.asarray(~(np.isnan(matrix) | (np.isfinite(matrix) & (matrix > 0))).any(axis=1)))
    if bad is not None:
        raise ScanFileError(paths[int(rows[bad])], "values", "a price is not positive (use null for a missing price)")
    return matrix


def to_scan_table(read: ArchiveRead) -> ScanTable:
    """The backtester's replay table from archive rows: ts = timestamp_ns // 1e6 (ms).

    The asset universe is the union of every row's assets in order of first
    appearance; a row's missing assets are NaN. ts must be strictly increasing in scan
    order (an archive whose counter restarted is not one replay: split it per run).
    """
    table, paths = read.table, read.paths
    ts = table.column("timestamp_ns").to_numpy() // 1_000_000
    bad = _first(np.diff(ts) <= 0)
    if bad is not None:
        raise DataError(f"{read.root}: scan times must increase with the scan number: {paths[bad + 1]} "
                        f"(ts {int(ts[bad + 1])} ms) follows {paths[bad]} (ts {int(ts[bad])} ms); "
                        "did the scanner's counter restart?")
    universe, index, columns = _universe(table, paths)
    prices = np.full((table.num_rows, len(universe)), np.nan)
    texts = table.column("prices").to_pylist()
    for k, cols in enumerate(columns):
        rows = np.flatnonzero(index == k)
        prices[rows[:, None], cols[None, :]] = _price_rows([texts[r] for r in rows], rows, cols.size, paths)

    def floats(name: str) -> np.ndarray:
        return table.column(name).to_numpy().astype(np.float64, copy=False)

    return ScanTable(
        ts=ts.astype(np.int64, copy=False),
        scan_number=table.column("scan_number").to_numpy().astype(np.int64, copy=False),
        **{column: floats(field) for column, field in TABLE_FROM_RECORD.items()},
        assets=tuple(universe),
        prices=prices,
    )


def report_read(read: ArchiveRead) -> None:
    """Log, once per load, what the archive held that the replay does not use."""
    if read.duplicates:
        d = read.duplicates[0]
        log.warning("%s: %d duplicate scan number(s); kept the first file of each (e.g. scan %d: kept %s, skipped %s)",
                    read.root, len(read.duplicates), d.scan_number, os.path.basename(d.kept), os.path.basename(d.skipped))
    if read.skipped:
        log.warning("%s: %d unreadable scan file(s) skipped (first: %s)", read.root, len(read.skipped), read.skipped[0])


def load_arrow_scans(root: str | Path, date_from: str | None = None, date_to: str | None = None, *,
                     skip_corrupt: bool = False, after_scan: int | None = None) -> ScanTable:
    """Load an Arrow scan archive as the backtester's `ScanTable` (duplicates reported, see `read_archive`)."""
    read = read_archive(root, date_from, date_to, skip_corrupt=skip_corrupt, after_scan=after_scan)
    report_read(read)
    table = to_scan_table(read)
    if date_from or date_to:  # a file filed under the wrong day must still respect the range
        lo = parse_day_ms(date_from) if date_from else None
        hi = parse_day_ms(date_to, end=True) if date_to else None
        mask = np.ones(table.rows, dtype=bool)
        if lo is not None:
            mask &= table.ts >= lo
        if hi is not None:
            mask &= table.ts < hi
        if not mask.all():
            table = table.take(mask)
    return table


# ---------------------------------------------------------------- index, quarantine, resume
QUARANTINE_DIRNAME = "arrow_scans_quarantine"


def quarantine_dir(archive: str | Path) -> Path:
    """Where unreadable files of `archive` are moved: beside it, never inside (no loader lists it)."""
    root = Path(archive)
    return root.parent / QUARANTINE_DIRNAME


def quarantine(f: ScanFile, archive: str | Path, reason: str) -> Path | None:
    """Move a bad scan file out of the archive (same filesystem: a rename); None if it vanished."""
    target_dir = quarantine_dir(archive) / f.day
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / Path(f.path).name
    n = 1
    while target.exists():
        target = target_dir / f"{Path(f.path).name}.{n}"
        n += 1
    try:
        os.replace(f.path, target)
    except FileNotFoundError:
        return None
    log.warning("quarantined %s → %s (%s)", f.path, target, reason)
    return target


def last_valid_scan(root: str | Path, *, quarantine_bad: bool = True) -> tuple[ScanFile, ScanRecord] | None:
    """The highest-numbered scan whose *content* reads as NG5 and matches its name, newest first.

    Files that cannot be read (torn, foreign, another number than their name) are moved to
    the quarantine directory with a log line, so a foreign ``scan_009999_….arrow`` can
    never renumber the archive. None when no valid file is left.
    """
    archive = archive_dir(root)
    for group in reversed(_groups(list_scan_files(archive))):
        for f in group:
            try:
                record = read_scan(f.path)
                if record.scan_number != f.scan_number:
                    raise ScanFileError(f.path, "values",
                                        f"holds scan_number {record.scan_number}, its name says {f.scan_number}")
                return f, record
            except ScanFileError as exc:
                if quarantine_bad:
                    quarantine(f, archive, f"{exc.reason}: {exc.detail}")
                else:
                    log.warning("skipping unreadable scan file %s (%s)", f.path, exc.detail)
    return None


class ScanIndex:
    """Scan number → file, kept current by listing only the day directories that changed.

    For consumers that need a few scans by number (the trader's gap fill, the check of a
    bus scan against its archived file) without loading the archive: `refresh` costs one
    directory listing per changed day, `record(n)` reads one file.
    """

    def __init__(self, root: str | Path) -> None:
        self.archive = archive_dir(root)
        self._files: dict[int, list[ScanFile]] = {}
        self._day_numbers: dict[str, set[int]] = {}
        self._day_mtime: dict[str, int] = {}

    def refresh(self) -> None:
        try:
            days = sorted((e for e in os.scandir(self.archive) if DAY_DIR_RE.match(e.name) and e.is_dir()),
                          key=lambda e: e.name)
        except FileNotFoundError:
            return
        for day in days:
            mtime = day.stat().st_mtime_ns
            if self._day_mtime.get(day.name) == mtime:
                continue
            self._day_mtime[day.name] = mtime
            for n in self._day_numbers.pop(day.name, set()):
                kept = [f for f in self._files.get(n, ()) if f.day != day.name]
                if kept:
                    self._files[n] = kept
                else:
                    self._files.pop(n, None)
            numbers: set[int] = set()
            with os.scandir(day.path) as entries:
                for entry in entries:
                    parsed = parse_scan_filename(entry.name)
                    if parsed is not None:
                        numbered = self._files.setdefault(parsed[0], [])
                        numbered.append(ScanFile(entry.path, day.name, *parsed))
                        numbered.sort(key=lambda f: (f.day, f.hhmmss, f.path))
                        numbers.add(parsed[0])
            self._day_numbers[day.name] = numbers

    def __contains__(self, scan_number: int) -> bool:
        return bool(self._files.get(scan_number))

    @property
    def highest(self) -> int:
        return max((n for n, fs in self._files.items() if fs), default=0)

    def record(self, scan_number: int) -> ScanRecord | None:
        """The scan's record from its first readable file (None when absent or unreadable)."""
        for f in self._files.get(scan_number, ()):
            try:
                record = read_scan(f.path)
            except ScanFileError as exc:
                log.warning("scan file %s unreadable (%s)", f.path, exc.detail)
                continue
            if record.scan_number == scan_number:
                return record
        return None

    def records(self, after: int, before: int) -> list[ScanRecord]:
        """The readable scans with after < number < before, in order (absent numbers are skipped)."""
        out: list[ScanRecord] = []
        for n in sorted(k for k in self._files if after < k < before):
            record = self.record(n)
            if record is not None:
                out.append(record)
        return out


# ---------------------------------------------------------------- DuckDB
def register_scans(connection: Any, root: str | Path, date_from: str | None = None, date_to: str | None = None, *,
                   name: str = "scans", skip_corrupt: bool = False) -> ArchiveRead:
    """Register the archive's rows as the view `name` on a DuckDB connection (via pyarrow)."""
    read = read_archive(root, date_from, date_to, skip_corrupt=skip_corrupt)
    report_read(read)
    connection.register(name, read.table)
    return read


def query_scans(root: str | Path, sql: str, date_from: str | None = None, date_to: str | None = None, *,
                params: Sequence[Any] | None = None, skip_corrupt: bool = False) -> pa.Table:
    """Run `sql` against the archive as table ``scans``; the result as a pyarrow Table.

    Example: ``query_scans(root, "SELECT scan_number, vel_div FROM scans WHERE vel_div < ?", params=[-0.02])``.
    """
    import duckdb

    connection = duckdb.connect()
    try:
        register_scans(connection, root, date_from, date_to, skip_corrupt=skip_corrupt)
        relation = connection.sql(sql, params=list(params) if params is not None else None)
        if hasattr(relation, "to_arrow_table"):
            return relation.to_arrow_table()
        result = relation.arrow()  # duckdb < 1.4 returns a Table here
        return result.read_all() if isinstance(result, pa.RecordBatchReader) else result
    finally:
        connection.close()


__all__ = ["QUARANTINE_DIRNAME", "ArchiveRead", "DuplicateScan", "ScanFile", "ScanIndex", "highest_scan_number",
           "last_valid_scan", "open_checked", "quarantine", "quarantine_dir", "iter_scan_files", "list_scan_files",
           "load_arrow_scans", "query_scans", "read_archive", "register_scans", "report_read", "resolve_archive",
           "to_scan_table"]
