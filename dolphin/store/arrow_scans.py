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

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from dolphin.errors import DataError
from dolphin.scan.definitions import VEL_DIV_LONG, VEL_DIV_SHORT
from dolphin.scan.features import ScanFeatures
from dolphin.store.atomic import atomic_write_bytes

SCHEMA_VERSION = "5.0.0"
ARCHIVE_DIRNAME = "arrow_scans"
#: Windows of the NG5 layout, in column order.
NG5_WINDOWS: tuple[int, ...] = (50, 150, 300, 750)
#: Per-window statistics, in column order within a window.
WINDOW_STATS: tuple[str, ...] = ("lambda_max", "velocity", "acceleration", "instability")
#: regime_signal gates (bible §4.1): SHORT below, LONG above.
REGIME_SHORT_GATE: float = VEL_DIV_SHORT
REGIME_LONG_GATE: float = VEL_DIV_LONG

WINDOW_COLUMNS: tuple[str, ...] = tuple(f"w{w}_{stat}" for w in NG5_WINDOWS for stat in WINDOW_STATS)

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

_JSON = msgspec.json.Encoder()
_ASSETS = msgspec.json.Decoder(list[str])
_PRICES = msgspec.json.Decoder(list[float | None])
_LOADINGS = msgspec.json.Decoder(dict[str, list[float | None]])


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


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def iso_from_ns(timestamp_ns: int) -> str:
    """ISO-8601 UTC (``+00:00``) of a Unix-ns time, exact to the microsecond."""
    seconds, rem = divmod(int(timestamp_ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rem // 1000).isoformat()


def regime_signal(vel_div: float) -> float:
    """−1 below the SHORT gate, +1 above the LONG gate, 0 between, NaN while vel_div is undefined."""
    if math.isnan(vel_div):
        return math.nan
    if vel_div < REGIME_SHORT_GATE:
        return -1.0
    if vel_div > REGIME_LONG_GATE:
        return 1.0
    return 0.0


def instability_composite(values: Sequence[float]) -> float:
    """Mean of the defined window instabilities; NaN when none is defined."""
    defined = [v for v in values if not math.isnan(v)]
    return math.fsum(defined) / len(defined) if defined else math.nan


class ScanRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One scan as stored: the 27 NG5 columns in file order.

    The three JSON columns are held decoded: `assets` (symbols), `prices` (close per
    asset, None = no price) and `loadings` (window → top eigenvector aligned with
    assets, None = asset not eligible). Float statistics keep NaN for "undefined"
    (warm-up); the constructor checks the row is self-consistent.
    """

    scan_number: int
    timestamp_ns: int
    timestamp: str
    w50_lambda_max: float
    w50_velocity: float
    w50_acceleration: float
    w50_instability: float
    w150_lambda_max: float
    w150_velocity: float
    w150_acceleration: float
    w150_instability: float
    w300_lambda_max: float
    w300_velocity: float
    w300_acceleration: float
    w300_instability: float
    w750_lambda_max: float
    w750_velocity: float
    w750_acceleration: float
    w750_instability: float
    vel_div: float
    regime_signal: float
    instability_composite: float
    n_assets: int
    assets: tuple[str, ...]
    prices: tuple[float | None, ...]
    loadings: dict[str, tuple[float | None, ...]]
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.scan_number < 0:
            raise ValueError(f"scan_number={self.scan_number} is negative")
        if self.timestamp_ns <= 0:
            raise ValueError(f"timestamp_ns={self.timestamp_ns} must be positive")
        try:
            datetime.fromisoformat(self.timestamp.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"timestamp={self.timestamp!r} is not ISO-8601") from None
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version={self.schema_version!r}, expected {SCHEMA_VERSION!r}")
        n = self.n_assets
        if n != len(self.assets) or n != len(self.prices):
            raise ValueError(f"n_assets={n} but {len(self.assets)} assets and {len(self.prices)} prices")
        if len(set(self.assets)) != n or not all(self.assets):
            raise ValueError("assets must be unique, non-empty symbols")
        for price in self.prices:
            if price is not None and not (math.isfinite(price) and price > 0):
                raise ValueError(f"price {price} is not a positive finite number (use null for missing)")
        allowed = {str(w) for w in NG5_WINDOWS}
        for key, vector in self.loadings.items():
            if key not in allowed:
                raise ValueError(f"loadings key {key!r} is not a window ({', '.join(sorted(allowed, key=int))})")
            if len(vector) != n:
                raise ValueError(f"loadings[{key!r}] has {len(vector)} values for {n} assets")

    # ------------------------------------------------------------ accessors
    def window(self, w: int) -> tuple[float, float, float, float]:
        """(lambda_max, velocity, acceleration, instability) of window w."""
        if w not in NG5_WINDOWS:
            raise KeyError(f"window {w} not in {NG5_WINDOWS}")
        return (getattr(self, f"w{w}_lambda_max"), getattr(self, f"w{w}_velocity"),
                getattr(self, f"w{w}_acceleration"), getattr(self, f"w{w}_instability"))

    def price_map(self) -> dict[str, float]:
        """Symbol → close for the assets that have a price."""
        return {a: p for a, p in zip(self.assets, self.prices, strict=True) if p is not None}

    @property
    def day(self) -> str:
        """UTC date of the market timestamp (the archive's day directory)."""
        return _utc(self.timestamp_ns).strftime("%Y-%m-%d")

    # ------------------------------------------------------------ construction
    @classmethod
    def from_features(cls, scan_number: int, timestamp_ns: int, assets: Sequence[str], prices_row: np.ndarray,
                      features: ScanFeatures) -> ScanRecord:
        """The record of one live scan: `features` from `ScanUpdater.update(prices_row)`.

        The scan must run on the NG5 windows (50, 150, 300, 750). Invalid prices (NaN,
        ±inf, ≤ 0 — what the scan itself treats as missing) are stored as null.
        """
        if tuple(features.windows) != NG5_WINDOWS:
            raise ValueError(f"NG5 files hold windows {NG5_WINDOWS}; the scan ran on {features.windows}")
        names = tuple(str(a) for a in assets)
        row = np.asarray(prices_row, dtype=np.float64)
        if row.shape != (len(names),) or features.loadings.shape != (len(NG5_WINDOWS), len(names)):
            raise ValueError(f"{len(names)} assets, prices {row.shape}, loadings {features.loadings.shape} disagree")
        stats: dict[str, float] = {}
        values = features.values
        for k, w in enumerate(NG5_WINDOWS):
            stats[f"w{w}_lambda_max"] = float(values[k, 0])
            stats[f"w{w}_velocity"] = float(values[k, 2])
            stats[f"w{w}_acceleration"] = float(values[k, 3])
            stats[f"w{w}_instability"] = float(values[k, 4])
        vel_div = float(features.vel_div)
        prices = tuple(float(p) if math.isfinite(p) and p > 0 else None for p in row.tolist())
        loadings = {str(w): tuple(_finite_or_none(v) for v in features.loadings[k].tolist())
                    for k, w in enumerate(NG5_WINDOWS)}
        return cls(scan_number=int(scan_number), timestamp_ns=int(timestamp_ns), timestamp=iso_from_ns(timestamp_ns),
                   **stats, vel_div=vel_div, regime_signal=regime_signal(vel_div),
                   instability_composite=instability_composite([stats[f"w{w}_instability"] for w in NG5_WINDOWS]),
                   n_assets=len(names), assets=names, prices=prices, loadings=loadings)


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
    values: list[Any] = [record.scan_number, record.timestamp_ns, record.timestamp]
    values += [getattr(record, name) for name in WINDOW_COLUMNS]
    values += [record.vel_div, record.regime_signal, record.instability_composite, record.n_assets,
               _JSON.encode(list(record.assets)).decode(), _JSON.encode(list(record.prices)).decode(),
               _JSON.encode({k: list(v) for k, v in record.loadings.items()}).decode(), record.schema_version]
    return [pa.array([v], type=f.type) for v, f in zip(values, SCAN_SCHEMA, strict=True)]


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
        row["assets"] = tuple(_ASSETS.decode(row["assets"]))
        row["prices"] = tuple(_PRICES.decode(row["prices"]))
        row["loadings"] = {k: tuple(v) for k, v in _LOADINGS.decode(row["loadings"]).items()}
        return ScanRecord(**row)
    except (msgspec.DecodeError, ValueError) as exc:
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


__all__ = ["ARCHIVE_DIRNAME", "NG5_WINDOWS", "SCAN_COLUMNS", "SCAN_SCHEMA", "SCHEMA_VERSION", "ScanFileError",
           "ScanRecord", "archive_dir", "check_schema", "encode_scan", "instability_composite", "iso_from_ns",
           "open_scan_batch", "parse_scan_filename", "read_scan", "regime_signal", "scan_filename", "scan_path",
           "write_scan", *_ARCHIVE_EXPORTS]
