"""The NG5 scan file: exact schema, round trips (pyarrow, JSON), paths, and refusal of bad files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from dolphin.errors import DataError
from dolphin.scan import ScanUpdater
from dolphin.scan.record import (
    SCHEMA_VERSION,
    WINDOW_COLUMNS,
    ScanRecord,
    instability_composite,
    iso_from_ns,
    regime_signal,
)
from dolphin.store.arrow_scans import (
    SCAN_SCHEMA,
    ScanFileError,
    archive_dir,
    encode_scan,
    read_scan,
    scan_path,
    write_scan,
)

pytestmark = [pytest.mark.data_integrity]

T0_NS = 1_775_390_405_000_000_000  # 2026-04-05 12:00:05 UTC

EXPECTED_LAYOUT: list[tuple[str, pa.DataType]] = [
    ("scan_number", pa.int64()), ("timestamp_ns", pa.int64()), ("timestamp", pa.utf8()),
    ("w50_lambda_max", pa.float64()), ("w50_velocity", pa.float64()),
    ("w50_acceleration", pa.float64()), ("w50_instability", pa.float64()),
    ("w150_lambda_max", pa.float64()), ("w150_velocity", pa.float64()),
    ("w150_acceleration", pa.float64()), ("w150_instability", pa.float64()),
    ("w300_lambda_max", pa.float64()), ("w300_velocity", pa.float64()),
    ("w300_acceleration", pa.float64()), ("w300_instability", pa.float64()),
    ("w750_lambda_max", pa.float64()), ("w750_velocity", pa.float64()),
    ("w750_acceleration", pa.float64()), ("w750_instability", pa.float64()),
    ("vel_div", pa.float64()), ("regime_signal", pa.float64()), ("instability_composite", pa.float64()),
    ("n_assets", pa.int64()), ("assets", pa.utf8()), ("prices", pa.utf8()), ("loadings", pa.utf8()),
    ("schema_version", pa.utf8()),
]


def _record(n: int = 7, ts_ns: int = T0_NS, vel_div: float = -0.03, **overrides: Any) -> ScanRecord:
    stats = {c: 0.5 + k / 100 for k, c in enumerate(WINDOW_COLUMNS)}
    fields: dict[str, Any] = dict(scan_number=n, timestamp_ns=ts_ns, timestamp=iso_from_ns(ts_ns), **stats,
                                  vel_div=vel_div, regime_signal=regime_signal(vel_div),
                                  instability_composite=0.5, n_assets=2, assets=("BTCUSDT", "ETHUSDT"),
                                  prices=(70000.5, None), loadings={"50": (0.7, None)})
    fields.update(overrides)
    return ScanRecord(**fields)


def _same(a: ScanRecord, b: ScanRecord) -> bool:
    """Field-by-field equality where NaN equals NaN."""
    def norm(x: Any) -> Any:
        return "NaN" if isinstance(x, float) and math.isnan(x) else x
    return all(norm(getattr(a, f)) == norm(getattr(b, f)) for f in ScanRecord.__struct_fields__)


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _row_table(record: ScanRecord) -> pa.Table:
    with pa.ipc.open_file(pa.py_buffer(encode_scan(record))) as reader:
        return reader.read_all()


# ---------------------------------------------------------------- schema
def test_schema_is_the_documented_ng5_layout() -> None:
    assert SCHEMA_VERSION == "5.0.0"
    assert len(SCAN_SCHEMA) == 27
    assert [(f.name, f.type) for f in SCAN_SCHEMA] == EXPECTED_LAYOUT
    assert list(ScanRecord.__struct_fields__) == [name for name, _ in EXPECTED_LAYOUT]


def test_written_file_has_the_schema_and_one_row(tmp_path: Path) -> None:
    path = write_scan(tmp_path, _record())
    with pa.memory_map(str(path)) as source:
        reader = ipc.open_file(source)
        table = reader.read_all()
    assert reader.num_record_batches == 1 and table.num_rows == 1
    assert [(f.name, f.type) for f in table.schema] == EXPECTED_LAYOUT
    assert table.column("schema_version")[0].as_py() == "5.0.0"


# ---------------------------------------------------------------- round trips
def test_record_from_live_scan_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n_bars, assets = 60, ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT")
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_bars, len(assets))), axis=0))
    prices[-1, 4] = np.nan  # a missing price on the last bar
    prices[-20:, 3] = np.nan  # an asset that drops out: not eligible in w50 at the end
    updater = ScanUpdater(len(assets))
    for row in prices:
        features = updater.update(row)
    record = ScanRecord.from_features(60, T0_NS, assets, prices[-1], features)

    assert math.isfinite(record.w50_lambda_max) and math.isnan(record.w150_lambda_max)  # w150 still warming up
    assert math.isnan(record.vel_div) and math.isnan(record.regime_signal)
    assert record.instability_composite == record.w50_instability  # the only defined window
    assert record.prices[4] is None and record.prices[3] is None and record.prices[0] == prices[-1, 0]
    assert record.loadings["50"][3] is None and record.loadings["50"][0] is not None
    assert all(v is None for v in record.loadings["750"])
    assert record.timestamp == "2026-04-05T12:00:05+00:00"

    path = write_scan(tmp_path, record)
    assert path == tmp_path / "arrow_scans" / "2026-04-05" / "scan_000060_120005.arrow"
    assert _same(read_scan(path), record)


def test_other_readers_see_plain_values(tmp_path: Path) -> None:
    record = _record(vel_div=-0.031, w50_velocity=math.nan)
    path = write_scan(tmp_path, record)
    row = ipc.open_file(pa.memory_map(str(path))).read_all().to_pylist()[0]
    assert row["scan_number"] == 7 and row["timestamp_ns"] == T0_NS and row["vel_div"] == -0.031
    assert math.isnan(row["w50_velocity"])  # NaN stays NaN in the float columns
    assert row["regime_signal"] == -1.0
    # the JSON columns are plain JSON any reader parses; null marks a missing value
    assert json.loads(row["assets"]) == ["BTCUSDT", "ETHUSDT"]
    assert json.loads(row["prices"]) == [70000.5, None]
    assert json.loads(row["loadings"]) == {"50": [0.7, None]}


def test_iso_timestamp_is_exact_to_the_microsecond() -> None:
    assert iso_from_ns(1_775_390_405_123_456_789) == "2026-04-05T12:00:05.123456+00:00"
    assert iso_from_ns(T0_NS) == "2026-04-05T12:00:05+00:00"


@pytest.mark.parametrize(("vel_div", "signal"), [(-0.03, -1.0), (-0.02, 0.0), (0.0, 0.0), (0.01, 0.0),
                                                   (0.010001, 1.0), (-0.020001, -1.0)])
def test_regime_signal_gates(vel_div: float, signal: float) -> None:
    assert regime_signal(vel_div) == signal


def test_regime_signal_and_composite_undefined() -> None:
    assert math.isnan(regime_signal(math.nan))
    assert math.isnan(instability_composite([math.nan] * 4))
    assert instability_composite([0.1, math.nan, 0.3, math.nan]) == pytest.approx(0.2)


# ---------------------------------------------------------------- paths and writes
def test_paths_follow_the_ng5_layout(tmp_path: Path) -> None:
    record = _record(n=1_234_567, ts_ns=T0_NS + 86_400 * 10**9 - 5 * 10**9)  # 2026-04-06 12:00:00
    assert scan_path(tmp_path, record) == tmp_path / "arrow_scans" / "2026-04-06" / "scan_1234567_120000.arrow"
    assert scan_path(tmp_path / "arrow_scans", _record()).parent.parent == tmp_path / "arrow_scans"  # no nesting
    assert archive_dir(tmp_path / "arrow_scans") == tmp_path / "arrow_scans"


def test_write_refuses_to_replace_a_scan(tmp_path: Path) -> None:
    write_scan(tmp_path, _record())
    with pytest.raises(FileExistsError):
        write_scan(tmp_path, _record(vel_div=0.5))
    write_scan(tmp_path, _record(vel_div=0.5), overwrite=True)
    assert read_scan(scan_path(tmp_path, _record())).vel_div == 0.5
    assert [p.name for p in scan_path(tmp_path, _record()).parent.iterdir()] == ["scan_000007_120005.arrow"]


@pytest.mark.parametrize("change", [
    dict(prices=(-1.0, None)),
    dict(prices=(1.0,)),
    dict(assets=("BTCUSDT", "BTCUSDT")),
    dict(loadings={"50": (0.1,)}),
    dict(loadings={"60": (0.1, 0.2)}),
    dict(scan_number=-1),
    dict(timestamp_ns=0),
    dict(timestamp="yesterday"),
    dict(schema_version="4.0.0"),
])
def test_record_refuses_inconsistent_rows(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _record(**change)


# ---------------------------------------------------------------- bad files
def _foreign(record: ScanRecord, mutate: str) -> bytes:
    table = _row_table(record)
    if mutate == "missing_column":
        table = table.drop_columns(["loadings"])
    elif mutate == "wrong_type":
        table = table.set_column(0, pa.field("scan_number", pa.int32()), pa.array([7], pa.int32()))
    elif mutate == "reordered":
        names = table.column_names
        table = table.select([names[1], names[0], *names[2:]])
    elif mutate == "version":
        table = table.set_column(26, "schema_version", pa.array(["4.1.0"]))
    elif mutate == "two_rows":
        table = pa.concat_tables([table, table])
    elif mutate == "null":
        table = table.set_column(19, pa.field("vel_div", pa.float64()), pa.array([None], pa.float64()))
    elif mutate == "n_assets":
        table = table.set_column(22, "n_assets", pa.array([3], pa.int64()))
    elif mutate == "bad_json":
        table = table.set_column(24, "prices", pa.array(["[70000.5, "]))
    return _ipc_bytes(table)


@pytest.mark.parametrize(("kind", "reason"), [
    ("empty", "unreadable"), ("garbage", "unreadable"), ("truncated", "unreadable"), ("stream_format", "unreadable"),
    ("missing_column", "schema"), ("wrong_type", "schema"), ("reordered", "schema"), ("version", "schema"),
    ("two_rows", "values"), ("null", "values"), ("n_assets", "values"), ("bad_json", "values"), ("absent", "missing"),
])
def test_read_refuses_bad_files_with_a_clear_error(tmp_path: Path, kind: str, reason: str) -> None:
    record = _record()
    good = encode_scan(record)
    path = tmp_path / "scan_000007_120005.arrow"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"not an arrow file at all" * 10)
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "stream_format":
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, SCAN_SCHEMA) as writer:
            writer.write_table(_row_table(record))
        path.write_bytes(sink.getvalue().to_pybytes())
    elif kind != "absent":
        path.write_bytes(_foreign(record, kind))
    with pytest.raises(ScanFileError) as info:
        read_scan(path)
    assert info.value.reason == reason
    assert str(path) in str(info.value)
    assert isinstance(info.value, DataError)  # operator-facing: exit 6 from the CLI


def test_every_truncation_is_refused(tmp_path: Path) -> None:
    good = encode_scan(_record())
    path = tmp_path / "scan.arrow"
    for cut in range(0, len(good), max(1, len(good) // 97)):
        path.write_bytes(good[:cut])
        with pytest.raises(ScanFileError):
            read_scan(path)
    path.write_bytes(good)
    assert read_scan(path).scan_number == 7


def test_nullable_fields_from_another_writer_are_accepted(tmp_path: Path) -> None:
    """Another NG5 writer may declare its fields nullable: same names and types is the contract."""
    table = _row_table(_record())
    loose = pa.schema([pa.field(f.name, f.type, nullable=True) for f in SCAN_SCHEMA])
    path = tmp_path / "scan_000007_120005.arrow"
    path.write_bytes(_ipc_bytes(table.cast(loose)))
    assert _same(read_scan(path), _record())


def test_json_columns_use_msgspec_canonical_floats() -> None:
    """Prices survive the JSON column bit for bit (shortest round-trip repr)."""
    price = 0.1 + 0.2
    record = _record(prices=(price, 1e-9))
    text = _row_table(record).column("prices")[0].as_py()
    assert msgspec.json.decode(text) == [price, 1e-9]
