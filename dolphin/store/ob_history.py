"""OB history: Hive-partitioned Parquet under ``<home>/ob_history/``, never pruned (bible §26.4).

Three tables, one folder each, one ``date=YYYY-MM-DD`` partition per UTC day of *market*
time (the bar's close), so a replay of a live session finds its bars where it expects:

* ``universe/`` — the 60 s universe snapshots (§26.2): one row per symbol and snapshot;
* ``features/`` — the per-asset bar features (§9.1, §9.3, docs/obf.md): one row per symbol and bar;
* ``macro/``    — the market-wide bar features (§9.2): one row per bar.

Crash safety: the writer keeps rows in memory and flushes them every snapshot interval
as new part files, each written to a hidden temp name, fsynced and renamed into place
(then the folder is fsynced). A kill -9 loses at most the rows since the last flush and
never leaves a visible file that pyarrow or DuckDB cannot read; leftover temp files are
removed at the next start. A closed day (bars only grow: once a bar of a later day is on
disk, no row of an earlier day can come) is compacted into one part per table
(`compact_day`): crash-safe and duplicate-free, see there. Part names carry the bar range they hold
(``part-<first bar_ms>-<last bar_ms>.parquet``), so a restarted writer knows the last
bar on disk and never writes a bar twice: no duplicate rows. Nothing here deletes or
rewrites a part except the compaction of closed days, and nothing is ever pruned.

Readers: `load_ob_history` (the backtester's `RecordedOBProvider`, vectorised through
DuckDB and numpy) and `ObHistory.connect` (DuckDB views ``universe``, ``features``,
``macro`` for `dolphin obf query`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dolphin.engine.ob import OB_ASSET_FIELDS, OB_MACRO_FIELDS, RecordedOBProvider
from dolphin.errors import DataError, UsageError
from dolphin.isotime import parse_iso_utc

log = logging.getLogger("dolphin.store.ob_history")

HISTORY_DIR = "ob_history"
UNIVERSE = "universe"
FEATURES = "features"
MACRO = "macro"
TABLES = (UNIVERSE, FEATURES, MACRO)

SCHEMAS: dict[str, pa.Schema] = {
    UNIVERSE: pa.schema([
        ("bar_ms", pa.int64()), ("snapshot_utc", pa.float64()), ("symbol", pa.string()),
        ("spread_bps", pa.float64()), ("depth_1pct_usd", pa.float64()), ("depth_quality", pa.float64()),
        ("fill_probability", pa.float64()), ("imbalance", pa.float64()), ("best_bid", pa.float64()),
        ("best_ask", pa.float64()), ("n_bid_levels", pa.int16()), ("n_ask_levels", pa.int16()),
    ]),
    FEATURES: pa.schema([
        ("bar_ms", pa.int64()), ("symbol", pa.string()), ("imbalance", pa.float64()),
        ("imbalance_ma5", pa.float64()), ("imbalance_persistence", pa.float64()),
        ("withdrawal_velocity", pa.float64()), ("depth_quality", pa.float64()), ("fill_probability", pa.float64()),
        ("spread_bps", pa.float64()), ("depth_1pct_usd", pa.float64()), ("cascading", pa.bool_()),
    ]),
    MACRO: pa.schema([
        ("bar_ms", pa.int64()), ("cascade_count", pa.int32()), ("regime_signal", pa.float64()),
        ("market_imbalance", pa.float64()), ("assets", pa.int32()),
    ]),
}

_PART_RE = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
_DATE_DIR_RE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_DAY_MS = 86_400_000


def history_root(path: str | Path) -> Path:
    """The ``ob_history`` folder named by ``path``: the folder itself, or a runtime root holding one."""
    p = Path(path)
    if not (p / FEATURES).is_dir() and (p / HISTORY_DIR).is_dir():
        return p / HISTORY_DIR
    return p


def _day_of(bar_ms: int) -> str:
    return datetime.fromtimestamp(bar_ms / 1000.0, tz=UTC).strftime("%Y-%m-%d")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_part(folder: Path, table: pa.Table) -> Path:
    """One part file, atomically: hidden temp name, fsync, rename, fsync of the folder. Mode 0600."""
    bars = table.column("bar_ms")
    first, last = int(pc.min(bars).as_py()), int(pc.max(bars).as_py())
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / f"part-{first:013d}-{last:013d}.parquet"
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)
    return target


@dataclass
class _Pending:
    """Rows of one table not yet on disk, column by column."""

    schema: pa.Schema
    columns: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.columns = {name: [] for name in self.schema.names}

    def __len__(self) -> int:
        return len(self.columns["bar_ms"])

    def take(self) -> pa.Table | None:
        if not len(self):
            return None
        table = pa.Table.from_pydict(self.columns, schema=self.schema)
        self.columns = {name: [] for name in self.schema.names}
        return table


class ObHistoryWriter:
    """Appends bars to the three tables and flushes them as parts (see the module doc).

    Not thread-safe by itself: the daemon adds rows on its event loop and hands the
    tables `take_pending` returns to a worker thread for `write_tables`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.pending = {name: _Pending(SCHEMAS[name]) for name in TABLES}
        self.last_bar_ms: dict[str, int | None] = {name: None for name in TABLES}
        self.parts_written = 0
        self.rows_written = 0
        self.temp_removed = 0
        self.covered_removed = 0
        self.days_compacted = 0
        self._compacted_before: date | None = None
        # pyarrow imports its pandas shim on the first conversion of a Python list (0.2–0.3 s, holding the
        # GIL): done here, at the daemon's start, so the first flush's `take_pending` (on the event loop)
        # does not stall the OBF hot loop for that long (benchmarks/obf_ingest.py saw a 250 ms gap).
        pa.array([0], type=pa.int64())

    # ---------------------------------------------------------------- start-up
    def recover(self) -> dict[str, int | None]:
        """Remove leftover temp files and compacted small parts of a killed run; learn each table's last bar."""
        for name in TABLES:
            folder = self.root / name
            last: int | None = None
            for _, day in _day_dirs(folder):
                for f in day.iterdir():
                    if f.name.startswith(".") and f.name.endswith(".tmp"):
                        f.unlink(missing_ok=True)
                        self.temp_removed += 1
                        continue
                    m = _PART_RE.match(f.name)
                    if m and (last is None or int(m[2]) > last):
                        last = int(m[2])
                covered = _day_parts(day)[1]
                for p in covered:       # a compaction killed after its wide part was in place
                    p.unlink(missing_ok=True)
                    self.covered_removed += 1
            self.last_bar_ms[name] = last
        if self.temp_removed:
            log.info("OB history: removed %d unfinished part(s) of a previous run", self.temp_removed)
        return dict(self.last_bar_ms)

    def already_has(self, table: str, bar_ms: int) -> bool:
        """Whether ``bar_ms`` is at or before the last bar on disk (a restart must not write it again)."""
        last = self.last_bar_ms[table]
        return last is not None and bar_ms <= last

    # ---------------------------------------------------------------- rows
    def add_rows(self, table: str, rows: Mapping[str, Sequence[Any]]) -> None:
        """Append columns of equal length (names as in `SCHEMAS`); bars already on disk are the caller's to skip."""
        pending = self.pending[table]
        for name, values in rows.items():
            pending.columns[name].extend(values)

    def pending_rows(self) -> int:
        return sum(len(p) for p in self.pending.values())

    def take_pending(self) -> dict[str, pa.Table]:
        """The rows gathered since the last call, as tables (the event loop's half of a flush)."""
        out: dict[str, pa.Table] = {}
        for name, pending in self.pending.items():
            table = pending.take()
            if table is not None:
                out[name] = table
        return out

    def write_tables(self, tables: dict[str, pa.Table]) -> list[Path]:
        """Write each table as one part per market day (the worker thread's half of a flush)."""
        written: list[Path] = []
        for name, table in tables.items():
            days = pc.strftime(pc.cast(table.column("bar_ms"), pa.timestamp("ms", tz="UTC")),
                                       format="%Y-%m-%d")
            for day in pc.unique(days).to_pylist():
                part = table.filter(pc.equal(days, day))
                written.append(write_part(self.root / name / f"date={day}", part))
                self.rows_written += part.num_rows
            last = int(pc.max(table.column("bar_ms")).as_py())
            current = self.last_bar_ms[name]
            self.last_bar_ms[name] = last if current is None else max(current, last)
        self.parts_written += len(written)
        return written

    def flush(self) -> list[Path]:
        return self.write_tables(self.take_pending())

    def closed_before(self) -> date | None:
        """Days before this one are closed: bars only grow, so once a bar of day D is on disk no row of an
        earlier day can come (None while nothing is on disk)."""
        lasts = [v for v in self.last_bar_ms.values() if v is not None]
        if not lasts:
            return None
        return datetime.fromtimestamp(min(lasts) / 1000.0, tz=UTC).date()

    def compact(self) -> int:
        """Compact every closed day of every table into one part (see `compact_day`); the days compacted.

        Cheap when nothing changed: it runs once per new closed day (worker thread; call it after a flush).
        """
        before = self.closed_before()
        if before is None or before == self._compacted_before:
            return 0
        done = 0
        for name in TABLES:
            for d, day in _day_dirs(self.root / name):
                if d < before and compact_day(day) is not None:
                    done += 1
        self._compacted_before = before
        self.days_compacted += done
        if done:
            log.info("OB history: %d closed day partition(s) compacted into one part each", done)
        return done


# ==================================================================== readers
def _day_parts(day: Path) -> tuple[list[Path], list[Path]]:
    """(the parts to read, the parts a wider part covers) of one day folder.

    A part whose bar range lies inside another's was compacted into it (the compaction
    was killed before it removed the small ones): reading both would read rows twice.
    """
    ranges = []
    for p in day.iterdir():
        m = _PART_RE.match(p.name)
        if m:
            ranges.append((int(m[1]), int(m[2]), p))
    ranges.sort(key=lambda r: (r[0], -r[1]))
    keep: list[Path] = []
    covered: list[Path] = []
    reach = -1
    for _first, last, path in ranges:
        if last <= reach:
            covered.append(path)
        else:
            keep.append(path)
            reach = last
    return keep, covered


def _day_dirs(folder: Path, date_from: date | None = None, date_to: date | None = None) -> list[tuple[date, Path]]:
    if not folder.is_dir():
        return []
    out = []
    for day in sorted(folder.iterdir()):
        m = _DATE_DIR_RE.match(day.name)
        if not m or not day.is_dir():
            continue
        d = date.fromisoformat(m[1])
        if (date_from is not None and d < date_from) or (date_to is not None and d > date_to):
            continue
        out.append((d, day))
    return out


def _parts(root: Path, table: str, date_from: date | None, date_to: date | None) -> list[Path]:
    found: list[Path] = []
    for _, day in _day_dirs(root / table, date_from, date_to):
        found.extend(_day_parts(day)[0])
    return found


def compact_day(day: Path) -> Path | None:
    """Rewrite a closed day's parts as one part, crash-safely; the new part, or None when there was nothing to do.

    The day's parts are streamed in bar order into ``part-<first>-<last>.parquet`` (written
    like any part: temp name, fsync, rename); only then are the small parts removed. Killed
    in between, the day holds the wide part and some small ones inside its range: readers
    skip those (`_day_parts`) and the next `recover` removes them. So a day is never read
    twice and never missing, and the rows are the same rows.
    """
    keep, covered = _day_parts(day)
    for p in covered:
        p.unlink(missing_ok=True)
    if len(keep) <= 1:
        if covered:
            _fsync_dir(day)
        return None
    first = min(int(_PART_RE.match(p.name)[1]) for p in keep)  # type: ignore[index]
    last = max(int(_PART_RE.match(p.name)[2]) for p in keep)  # type: ignore[index]
    target = day / f"part-{first:013d}-{last:013d}.parquet"
    tmp = day / f".{target.name}.{os.getpid()}.tmp"
    schema = pq.read_schema(keep[0])
    try:
        with open(tmp, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            with pq.ParquetWriter(fh, schema, compression="zstd") as writer:
                for p in keep:
                    writer.write_table(pq.read_table(p).cast(schema))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(day)
    for p in keep:
        if p != target:
            p.unlink(missing_ok=True)
    _fsync_dir(day)
    return target


def _as_date(value: date | str | None, what: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DataError(f"{what} {value!r} is not a YYYY-MM-DD date") from None


def _sql_list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _empty_select(table: str) -> str:
    duck = {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.int16(): "SMALLINT", pa.float64(): "DOUBLE",
            pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN"}
    cols = ", ".join(f"CAST(NULL AS {duck[f.type]}) AS {f.name}" for f in SCHEMAS[table])
    return f"SELECT {cols}, CAST(NULL AS DATE) AS date WHERE false"


class ObHistory:
    """Read access to an ``ob_history`` folder through DuckDB."""

    def __init__(self, path: str | Path) -> None:
        self.root = history_root(path)

    def parts(self, table: str, date_from: date | str | None = None, date_to: date | str | None = None) -> list[Path]:
        return _parts(self.root, table, _as_date(date_from, "date_from"), _as_date(date_to, "date_to"))

    def connect(self, date_from: date | str | None = None, date_to: date | str | None = None) -> Any:
        """An in-memory DuckDB connection with views ``universe``, ``features`` and ``macro`` (+ column ``date``)."""
        import duckdb

        con = duckdb.connect(":memory:")
        for table in TABLES:
            parts = self.parts(table, date_from, date_to)
            if parts:
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({_sql_list(parts)}, "
                            "hive_partitioning = true, union_by_name = true)")
            else:
                con.execute(f"CREATE VIEW {table} AS {_empty_select(table)}")
        return con


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A market-time range from the operator's ``--from`` / ``--to``: days for the partitions, ms for the rows.

    A bare date covers its whole UTC day (``--to 2026-01-06`` includes that day); an ISO
    time is exact. ``hi_ms`` is exclusive.
    """

    date_from: date | None = None
    date_to: date | None = None
    lo_ms: int | None = None
    hi_ms: int | None = None

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> TimeRange:
        lo_day = hi_day = None
        lo_ms = hi_ms = None
        if start:
            lo_day, lo_ms, _ = _bound(start, "--from")
        if end:
            hi_day, hi_ms, whole_day = _bound(end, "--to")
            if whole_day:
                hi_ms = (hi_ms or 0) + _DAY_MS
            else:
                hi_ms = (hi_ms or 0) + 1
        if lo_ms is not None and hi_ms is not None and hi_ms <= lo_ms:
            raise UsageError(f"--to {end} is not after --from {start}")
        return cls(lo_day, hi_day, lo_ms, hi_ms)

    def where(self) -> list[str]:
        out = []
        if self.lo_ms is not None:
            out.append(f"bar_ms >= {self.lo_ms}")
        if self.hi_ms is not None:
            out.append(f"bar_ms < {self.hi_ms}")
        return out


def _bound(value: str, flag: str) -> tuple[date, int, bool]:
    """(UTC day, ms, whether it was a bare date) of an operator's time."""
    text = value.strip()
    try:
        day = date.fromisoformat(text)
        return day, int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000), True
    except ValueError:
        pass
    try:
        seconds = parse_iso_utc(text)
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not a date (YYYY-MM-DD) or an ISO-8601 time") from None
    return datetime.fromtimestamp(seconds, tz=UTC).date(), int(round(seconds * 1000)), False


def query_history(path: str | Path, sql: str, span: TimeRange | None = None) -> pa.Table:
    """Run ``sql`` over the views ``universe``, ``features``, ``macro`` (partitions narrowed to ``span``'s days).

    Raises `DataError` when there is no history at all, `UsageError` for SQL DuckDB refuses
    (its message, one line).
    """
    import duckdb

    hist = ObHistory(path)
    if not any((hist.root / t).is_dir() for t in TABLES):
        raise DataError(f"no OB history under {hist.root} (the obf service writes it there)")
    span = span or TimeRange()
    con = hist.connect(span.date_from, span.date_to)
    try:
        return _arrow(con.sql(sql))
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"query failed: {first}") from None
    finally:
        con.close()


def asset_history(path: str | Path, symbol: str, span: TimeRange | None = None, *, table: str = FEATURES,
                  limit: int | None = None) -> pa.Table:
    """One symbol's rows of ``table`` (features or universe) in ``span``, oldest first."""
    if table not in (FEATURES, UNIVERSE):
        raise UsageError(f"--table must be {FEATURES} or {UNIVERSE}, not {table!r}")
    if not re.fullmatch(r"[A-Z0-9]{2,32}", symbol):
        raise UsageError(f"{symbol!r} is not a symbol (uppercase letters and digits, e.g. BTCUSDT)")
    span = span or TimeRange()
    where = " AND ".join([f"symbol = '{symbol}'", *span.where()])
    sql = f"SELECT * EXCLUDE (date) FROM {table} WHERE {where} ORDER BY bar_ms"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return query_history(path, sql, span)


def _ms_bounds(date_from: date | None, date_to: date | None) -> tuple[int | None, int | None]:
    lo = None if date_from is None else int(datetime(date_from.year, date_from.month, date_from.day,
                                                       tzinfo=UTC).timestamp() * 1000)
    hi = None
    if date_to is not None:
        nxt = date_to + timedelta(days=1)
        hi = int(datetime(nxt.year, nxt.month, nxt.day, tzinfo=UTC).timestamp() * 1000)
    return lo, hi


def load_ob_history(path: str | Path, date_from: date | str | None = None, date_to: date | str | None = None,
                    symbols: Iterable[str] | None = None) -> RecordedOBProvider:
    """Recorded OB features for a backtest: per-asset (`OB_ASSET_FIELDS` order) and macro (`OB_MACRO_FIELDS`).

    ``path`` is an ``ob_history`` folder or a runtime root holding one; ``date_from`` /
    ``date_to`` (inclusive, market days) and ``symbols`` narrow what is loaded. Records
    are keyed by ``bar_ms`` (the market time their bar closed); the provider serves each
    engine bar the latest record at or before it. A symbol without a row at some bar
    reads as missing there (NaN: the engine's neutral value). Raises `DataError` when
    the history holds no feature rows in the range.
    """
    import duckdb

    lo_day, hi_day = _as_date(date_from, "date_from"), _as_date(date_to, "date_to")
    if lo_day is not None and hi_day is not None and hi_day < lo_day:
        raise DataError(f"date_to {hi_day} is before date_from {lo_day}")
    hist = ObHistory(path)
    feature_parts = hist.parts(FEATURES, lo_day, hi_day)
    if not feature_parts:
        raise DataError(f"no OB feature history under {hist.root / FEATURES}"
                        + (f" between {lo_day or '…'} and {hi_day or '…'}" if lo_day or hi_day else ""))
    lo_ms, hi_ms = _ms_bounds(lo_day, hi_day)
    in_time = [w for w in (None if lo_ms is None else f"bar_ms >= {lo_ms}",
                           None if hi_ms is None else f"bar_ms < {hi_ms}") if w]
    wanted = None if symbols is None else sorted(set(symbols))
    con = duckdb.connect(":memory:")
    try:
        where = list(in_time)
        if wanted is not None:
            con.register("wanted", pa.table({"symbol": pa.array(wanted, pa.string())}))
            where.append("symbol IN (SELECT symbol FROM wanted)")
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        asset = _arrow(con.sql(f"SELECT bar_ms, symbol, {', '.join(OB_ASSET_FIELDS)} FROM "
                               f"read_parquet({_sql_list(feature_parts)}){cond}"))
        macro_parts = hist.parts(MACRO, lo_day, hi_day)
        mcond = (" WHERE " + " AND ".join(in_time)) if in_time else ""
        macro = (_arrow(con.sql(f"SELECT bar_ms, {', '.join(OB_MACRO_FIELDS)} FROM "
                                f"read_parquet({_sql_list(macro_parts)}){mcond}")) if macro_parts else None)
    except (duckdb.Error, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"OB history under {hist.root} cannot be read: {first}") from None
    finally:
        con.close()
    if asset.num_rows == 0:
        raise DataError(f"no OB feature rows under {hist.root / FEATURES} for that range and those symbols")
    asset_ts, asset_values, names = _pivot(asset)
    if macro is not None and macro.num_rows:
        mts = macro.column("bar_ms").to_numpy()
        order = np.argsort(mts, kind="stable")
        macro_ts = mts[order]
        macro_values = np.column_stack([macro.column(f).to_numpy().astype(np.float64)[order]
                                        for f in OB_MACRO_FIELDS])
    else:
        macro_ts = np.zeros(0, dtype=np.int64)
        macro_values = np.zeros((0, len(OB_MACRO_FIELDS)))
    return RecordedOBProvider(symbols=names, asset_ts=asset_ts, asset_values=asset_values, macro_ts=macro_ts,
                              macro_values=macro_values)


def _arrow(relation: Any) -> pa.Table:
    """A DuckDB relation as a pyarrow Table (``to_arrow_table`` since 1.4; ``arrow()`` before)."""
    if hasattr(relation, "to_arrow_table"):
        return relation.to_arrow_table()
    result = relation.arrow()
    return result.read_all() if isinstance(result, pa.RecordBatchReader) else result


def _pivot(asset: pa.Table) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(sorted unique bar_ms, values (n_bars, n_symbols, 5) with NaN where a symbol has no row, symbols)."""
    bars = asset.column("bar_ms").to_numpy()
    ts, rows = np.unique(bars, return_inverse=True)
    encoded = pc.dictionary_encode(asset.column("symbol")).combine_chunks()
    names_raw = encoded.dictionary.to_pylist()
    order = sorted(range(len(names_raw)), key=names_raw.__getitem__)
    remap = np.empty(len(names_raw), dtype=np.int64)
    remap[order] = np.arange(len(names_raw))
    cols = remap[encoded.indices.to_numpy()]
    values = np.full((ts.shape[0], len(names_raw), len(OB_ASSET_FIELDS)), np.nan)
    stacked = np.column_stack([asset.column(f).to_numpy().astype(np.float64) for f in OB_ASSET_FIELDS])
    values[rows, cols, :] = stacked
    return ts.astype(np.int64), values, tuple(names_raw[i] for i in order)


__all__ = ["FEATURES", "HISTORY_DIR", "MACRO", "SCHEMAS", "TABLES", "UNIVERSE", "ObHistory", "ObHistoryWriter",
           "TimeRange", "compact_day", "asset_history", "history_root", "load_ob_history", "query_history", "write_part"]
