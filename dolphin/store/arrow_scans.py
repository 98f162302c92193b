"""One scan, one Arrow IPC file: the doctrinal NG5 layout (bible §27.3, §27.4).

Every scan the scanner produces is written as a one-row Arrow IPC *file* (random-access
format, footer included) at::

    <root>/arrow_scans/YYYY-MM-DD/scan_NNNNNN_HHMMSS.arrow

with the date and time of the scan's market timestamp (UTC) and the scan number padded
to at least six digits. The write is atomic (temp file beside the target, fsync,
rename), so a reader polling the directory — the bridge, an operator's DuckDB session —
never sees half a file. A file that does not match `SCAN_SCHEMA` exactly (names, order,
types, version) is refused with `ScanFileError`, which names the file.

This module is the per-file format; the directory as a whole (listing, resuming the
scan counter, loading thousands of files for a replay, DuckDB) is
`dolphin.store.scan_archive`, whose public functions are re-exported here.
See docs/arrow_scans.md.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from dolphin.bus.scan_codec import record_from_row, record_to_row
from dolphin.errors import DataError
from dolphin.scan.record import SCHEMA_VERSION, WINDOW_COLUMNS, ScanRecord
from dolphin.store.atomic import atomic_write_bytes

ARCHIVE_DIRNAME = "arrow_scans"
SCAN_SCHEMA: pa.Schema = pa.schema(
    [pa.field("scan_number", pa.int64(), nullable=False),
     pa.field("timestamp_ns", pa.int64(), nullable=False),
     pa.field("timestamp", pa.utf8(), nullable=False),
     *[pa.field(name, pa.float64(), nullable=False) for name in WINDOW_COLUMNS],
     pa.field("vel_div", pa.float64(), nullable=False),
     pa.field("regime_signal", pa.float64(), nullable=False),
     pa.field("instability_composite", pa.float64(), nullable=False),
     pa.field("n_assets", pa.int64(), nullable=False),
     pa.field("assets", pa.utf8(), nullable=False),
     pa.field("prices", pa.utf8(), nullable=False),
     pa.field("loadings", pa.utf8(), nullable=False),
     pa.field("schema_version", pa.utf8(), nullable=False)],
    metadata={"dolphin_schema": "NG5", "schema_version": SCHEMA_VERSION},
)
SCAN_COLUMNS: tuple[str, ...] = tuple(SCAN_SCHEMA.names)

# scan_NNNNNN_HHMMSS.arrow — at least six digits; temp files (".scan_….tmp") never match.
SCAN_FILE_RE = re.compile(r"^scan_(?P<number>\d{6,})_(?P<hhmmss>\d{6})\.arrow$")
DAY_DIR_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ScanFileError(DataError):
    """A scan file that cannot be read as NG5: missing, truncated, foreign or inconsistent.

    `reason` is one of ``missing``, ``unreadable`` (not an Arrow IPC file, truncated),
    ``schema`` (names, order, types or version differ) or ``values`` (a row that
    contradicts itself, e.g. n_assets ≠ len(assets)).
    """

    def __init__(self, path: str | Path, reason: str, detail: str) -> None:
        super().__init__(f"{path}: {reason}: {detail}")
        self.path = Path(path)
        self.reason = reason
        self.detail = detail


def _utc(timestamp_ns: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ns // 1_000_000_000, tz=UTC)


# ---------------------------------------------------------------- paths
def archive_dir(root: str | Path) -> Path:
    """The ``arrow_scans`` directory under `root`; a path already named so is not nested again (§27.4)."""
    base = Path(root)
    return base if base.name == ARCHIVE_DIRNAME else base / ARCHIVE_DIRNAME


def scan_filename(scan_number: int, timestamp_ns: int) -> str:
    return f"scan_{scan_number:06d}_{_utc(timestamp_ns).strftime('%H%M%S')}.arrow"


def scan_path(root: str | Path, record: ScanRecord) -> Path:
    """``<root>/arrow_scans/YYYY-MM-DD/scan_NNNNNN_HHMMSS.arrow`` of a record."""
    return archive_dir(root) / record.day / scan_filename(record.scan_number, record.timestamp_ns)


def parse_scan_filename(name: str) -> tuple[int, str] | None:
    """``scan_000123_120005.arrow`` → ``(123, "120005")``; None for any other name."""
    match = SCAN_FILE_RE.match(name)
    return (int(match["number"]), match["hhmmss"]) if match else None


# ---------------------------------------------------------------- write
def _record_columns(record: ScanRecord) -> list[pa.Array]:
    row = record_to_row(record)
    return [pa.array([row[f.name]], type=f.type) for f in SCAN_SCHEMA]


def encode_scan(record: ScanRecord) -> bytes:
    """The Arrow IPC file bytes of one record (one batch, one row)."""
    batch = pa.RecordBatch.from_arrays(_record_columns(record), schema=SCAN_SCHEMA)
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, SCAN_SCHEMA) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def write_scan(root: str | Path, record: ScanRecord, *, overwrite: bool = False) -> Path:
    """Write `record` atomically under `root`; returns its path.

    Refuses to replace an existing file (FileExistsError) unless `overwrite`: a second
    file for the same scan number and second means the counter did not resume, and the
    archive must not lose the first one silently.
    """
    path = scan_path(root, record)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists (scan number {record.scan_number} written twice?)")
    return atomic_write_bytes(path, encode_scan(record))


# ---------------------------------------------------------------- read
def check_schema(path: str | Path, schema: pa.Schema) -> None:
    """Raise ScanFileError unless `schema` has exactly the NG5 names, order and types.

    Nullability and schema metadata are not compared: another NG5 writer may declare
    its fields nullable; nulls are refused value by value instead.
    """
    names = list(schema.names)
    if names != list(SCAN_COLUMNS):
        missing = [n for n in SCAN_COLUMNS if n not in names]
        extra = [n for n in names if n not in SCAN_COLUMNS]
        detail = (f"missing {missing}" if missing else "") + (f" extra {extra}" if extra else "")
        raise ScanFileError(path, "schema", (detail.strip() or "columns out of order") + f" ({len(names)} columns)")
    for field, want in zip(schema, SCAN_SCHEMA, strict=True):
        if not field.type.equals(want.type):
            raise ScanFileError(path, "schema", f"column {field.name!r} is {field.type}, expected {want.type}")


def open_scan_batch(path: str | Path) -> pa.RecordBatch:
    """The single, schema-checked row batch of a scan file, with the canonical schema (no value decoding).

    The file is read into memory in one call and parsed from there: a torn or foreign
    file fails here, never halfway through a consumer. A batch from another NG5 writer
    (same names and types, other nullability or metadata) is given `SCAN_SCHEMA`.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ScanFileError(path, "missing", "file not found") from None
    except OSError as exc:
        raise ScanFileError(path, "unreadable", str(exc)) from None
    try:
        reader = ipc.open_file(pa.py_buffer(data))
        canonical = reader.schema.equals(SCAN_SCHEMA, check_metadata=True)
        if not canonical:
            check_schema(path, reader.schema)
        if reader.num_record_batches != 1:
            raise ScanFileError(path, "values", f"{reader.num_record_batches} record batches, expected 1")
        batch = reader.get_batch(0)
    except (pa.ArrowException, OSError, IndexError) as exc:
        raise ScanFileError(path, "unreadable", f"not a complete Arrow IPC file ({len(data)} bytes): {exc}") from None
    if batch.num_rows != 1:
        raise ScanFileError(path, "values", f"{batch.num_rows} rows, expected 1")
    return batch if canonical else pa.RecordBatch.from_arrays(batch.columns, schema=SCAN_SCHEMA)


def _row_value(path: Path, batch: pa.RecordBatch, index: int) -> Any:
    value = batch.column(index)[0].as_py()
    if value is None:
        raise ScanFileError(path, "values", f"column {SCAN_COLUMNS[index]!r} is null")
    return value


def read_scan(path: str | Path) -> ScanRecord:
    """Read and validate one scan file; ScanFileError (a DataError) names the file and the fault."""
    p = Path(path)
    batch = open_scan_batch(p)
    row = {name: _row_value(p, batch, i) for i, name in enumerate(SCAN_COLUMNS)}
    if row["schema_version"] != SCHEMA_VERSION:
        raise ScanFileError(p, "schema", f"schema_version {row['schema_version']!r}, expected {SCHEMA_VERSION!r}")
    try:
        return record_from_row(row)
    except ValueError as exc:
        raise ScanFileError(p, "values", str(exc)) from None


# ---------------------------------------------------------------- the archive (re-exported)
_ARCHIVE_EXPORTS = ("ArchiveRead", "DuplicateScan", "highest_scan_number", "iter_scan_files", "list_scan_files",
                    "load_arrow_scans", "query_scans", "read_archive", "register_scans", "resolve_archive",
                    "to_scan_table")


def __getattr__(name: str) -> Any:
    """Lazy re-export of `dolphin.store.scan_archive` (it imports this module, so not at import time)."""
    if name in _ARCHIVE_EXPORTS:
        from dolphin.store import scan_archive

        return getattr(scan_archive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ARCHIVE_DIRNAME", "SCAN_COLUMNS", "SCAN_SCHEMA", "ScanFileError", "archive_dir", "check_schema",
           "encode_scan", "open_scan_batch", "parse_scan_filename", "read_scan", "scan_filename", "scan_path",
           "write_scan", *_ARCHIVE_EXPORTS]
