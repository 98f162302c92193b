"""Scan tables on disk (Parquet): write atomically, read with validation and a date filter.

Layout (see `dolphin.scan.table`): ts (int64 ms), scan_number (int64), vel_div,
v50/v150/v300/v750_lambda_max_velocity, instability_50, instability_150 (float64), then
one float64 close column per asset named by symbol. `META_COLUMNS` lists the non-asset
columns so readers can tell asset columns apart.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dolphin.errors import DataError, UsageError
from dolphin.scan.table import FEATURE_COLUMNS, SCAN_META_COLUMNS, ScanTable

META_COLUMNS: tuple[str, ...] = SCAN_META_COLUMNS
_DAY_MS = 86_400_000
#: Rows per Parquet row group (and per piece a streamed read hands out): a streamed replay
#: holds about one group in memory, so a table of any length replays in bounded memory.
ROW_GROUP_ROWS = 65_536

__all__ = ["META_COLUMNS", "FEATURE_COLUMNS", "ROW_GROUP_ROWS", "ScanTable", "ScanTableFile", "write_scan_table",
           "read_scan_table", "parse_day_ms"]


def write_scan_table(path: str | Path, table: ScanTable, metadata: dict[str, str] | None = None) -> Path:
    """Write `table` to `path` (zstd Parquet) via a temporary file, so readers never see half a file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = len(table.assets)
    if table.prices.shape != (table.rows, n):
        raise ValueError(f"prices must be (rows={table.rows}, assets={n}), got {table.prices.shape}")
    cols: dict[str, pa.Array] = {
        "ts": pa.array(np.asarray(table.ts, dtype=np.int64)),
        "scan_number": pa.array(np.asarray(table.scan_number, dtype=np.int64)),
    }
    for name in FEATURE_COLUMNS:
        cols[name] = pa.array(np.asarray(table.feature(name), dtype=np.float64))
    prices = np.asarray(table.prices, dtype=np.float64)
    for k, asset in enumerate(table.assets):
        cols[asset] = pa.array(np.ascontiguousarray(prices[:, k]))
    arrow = pa.table(cols)
    if metadata:
        arrow = arrow.replace_schema_metadata({str(k): str(v) for k, v in metadata.items()})
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(arrow, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    os.replace(tmp, out)
    return out


def parse_day_ms(text: str, *, end: bool = False) -> int:
    """'YYYY-MM-DD' → ms UTC at the start of that day (end=True: start of the next day)."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise UsageError(f"bad date {text!r}: use YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"bad date {text!r}: no such day") from None
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    return start + _DAY_MS if end else start


def _numeric(path: Path, name: str, typ: pa.DataType, *, integer: bool) -> None:
    ok = pa.types.is_integer(typ) if integer else pa.types.is_floating(typ)
    if not ok:
        want = "integer (int64)" if integer else "float64"
        raise DataError(f"{path}: column {name!r} must be {want}, got {typ}")


def _scan_table_assets(p: Path) -> tuple[str, ...]:
    """Validate a scan table's schema (columns and types); its asset columns, in file order."""
    if not p.is_file():
        raise DataError(f"{p}: scan table not found")
    try:
        schema = pq.read_schema(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{p}: cannot read scan table: {exc}") from None
    names = list(schema.names)
    missing = [c for c in META_COLUMNS if c not in names]
    if missing:
        raise DataError(f"{p}: not a scan table: missing column(s) {', '.join(missing)}")
    assets = tuple(c for c in names if c not in META_COLUMNS)
    if not assets:
        raise DataError(f"{p}: scan table has no asset price columns")
    _numeric(p, "ts", schema.field("ts").type, integer=True)
    _numeric(p, "scan_number", schema.field("scan_number").type, integer=True)
    for name in (*FEATURE_COLUMNS, *assets):
        _numeric(p, name, schema.field(name).type, integer=False)
    return assets


def _keys(p: Path, table: pa.Table | pa.RecordBatch, last_ts: int | None, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The checked ts and scan_number columns of rows ``offset…`` (ts strictly increasing after ``last_ts``)."""
    for name in ("ts", "scan_number"):
        if table.column(name).null_count:
            raise DataError(f"{p}: column {name!r} has {table.column(name).null_count} missing value(s)")
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    scan_number = table.column("scan_number").cast(pa.int64()).to_numpy()
    if ts.shape[0] and last_ts is not None and int(ts[0]) <= last_ts:
        raise DataError(f"{p}: ts must be strictly increasing (row {offset}: {int(ts[0])} after {last_ts})")
    if ts.shape[0] > 1:
        bad = np.flatnonzero(np.diff(ts) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise DataError(f"{p}: ts must be strictly increasing (row {offset + i}: {int(ts[i])} after "
                            f"{int(ts[i - 1])})")
    return ts, scan_number


def _rows(table: pa.Table | pa.RecordBatch, assets: tuple[str, ...], ts: np.ndarray,
          scan_number: np.ndarray) -> ScanTable:
    def floats(name: str) -> np.ndarray:
        return table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)

    prices = np.empty((table.num_rows, len(assets)))
    for k, asset in enumerate(assets):
        prices[:, k] = floats(asset)
    return ScanTable(ts=ts, scan_number=scan_number, **{name: floats(name) for name in FEATURE_COLUMNS},
                     assets=assets, prices=prices)


class ScanTableFile:
    """A scan table read piece by piece (a row group at a time): a replay of any length in bounded memory.

    `keys()` reads and checks only ts and scan_number (the span plan); `pieces()` the
    full rows. The values equal `read_scan_table`'s.
    """

    def __init__(self, path: str | Path, *, progress: Callable[[str, int, int, float], None] | None = None) -> None:
        self.path = Path(path)
        self._assets = _scan_table_assets(self.path)
        self.progress = progress
        self.stages: dict[str, float] = {"read": 0.0}

    @property
    def assets(self) -> tuple[str, ...]:
        return self._assets

    def _batches(self, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        try:
            reader = pq.ParquetFile(self.path)
            for i in range(reader.num_row_groups):
                yield from reader.iter_batches(batch_size=ROW_GROUP_ROWS, row_groups=[i], columns=columns)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{self.path}: cannot read scan table: {exc}") from None

    def keys(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last: int | None = None
        offset = 0
        for batch in self._batches(["ts", "scan_number"]):
            ts, scan_number = _keys(self.path, batch, last, offset)
            if ts.shape[0]:
                last = int(ts[-1])
            offset += batch.num_rows
            yield ts, scan_number

    def pieces(self, stop: int | None = None) -> Iterator[ScanTable]:
        last: int | None = None
        offset = 0
        batches = self._batches(None)
        total = pq.ParquetFile(self.path).metadata.num_rows if stop is None else stop
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                return
            ts, scan_number = _keys(self.path, batch, last, offset)
            if ts.shape[0]:
                last = int(ts[-1])
            offset += batch.num_rows
            piece = _rows(batch, self._assets, ts, scan_number)
            self.stages["read"] += time.perf_counter() - t0
            if self.progress is not None:
                self.progress("read", min(offset, total), total, self.stages["read"])
            yield piece
            if stop is not None and offset >= stop:
                return


def read_scan_table(path: str | Path, date_from: str | None = None, date_to: str | None = None) -> ScanTable:
    """Read and validate a scan table; optionally keep only days date_from..date_to (inclusive, UTC)."""
    p = Path(path)
    lo = parse_day_ms(date_from) if date_from else None
    hi = parse_day_ms(date_to, end=True) if date_to else None
    if lo is not None and hi is not None and lo >= hi:
        raise UsageError(f"date range is empty: from {date_from} is after to {date_to}")
    assets = _scan_table_assets(p)
    try:
        table = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{p}: cannot read scan table: {exc}") from None
    ts, scan_number = _keys(p, table, None, 0)
    full = _rows(table, assets, ts, scan_number)
    if lo is None and hi is None:
        return full
    mask = np.ones(full.rows, dtype=bool)
    if lo is not None:
        mask &= full.ts >= lo
    if hi is not None:
        mask &= full.ts < hi
    return full.take(mask)
