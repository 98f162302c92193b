"""Scan table: build from closes, write, read back, reject malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dolphin.errors import DataError, UsageError
from dolphin.scan.batch import build_scan_features
from dolphin.scan.table import ScanTable, build_scan_table
from dolphin.store.scan_table import FEATURE_COLUMNS, META_COLUMNS, read_scan_table, write_scan_table

pytestmark = [pytest.mark.scan, pytest.mark.data_integrity]

DAY = 86_400_000
T0 = 1_617_667_200_000   # 2021-04-06 00:00 UTC


@pytest.fixture
def table(make_prices) -> ScanTable:
    P = make_prices(900, 4, seed=31)
    P[100:110, 2] = np.nan
    ts = T0 + 300_000 * np.arange(900, dtype=np.int64)   # 5-minute bars: 3.1 days
    return build_scan_table(ts, ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"), P)


def test_columns_follow_the_features(table: ScanTable) -> None:
    F = build_scan_features(table.prices)
    assert np.array_equal(table.vel_div, F.vel_div, equal_nan=True)
    for w in (50, 150, 300, 750):
        assert np.array_equal(table.feature(f"v{w}_lambda_max_velocity"), F.column("velocity", w), equal_nan=True)
    assert np.array_equal(table.instability_150, F.column("instability", 150), equal_nan=True)
    assert table.scan_number.tolist() == list(range(1, 901))
    assert np.isnan(table.vel_div[:751]).all() and np.isfinite(table.vel_div[751:]).all()
    with pytest.raises(KeyError):
        table.feature("BTCUSDT")


def test_round_trip(tmp_path: Path, table: ScanTable) -> None:
    path = write_scan_table(tmp_path / "sub" / "scan.parquet", table, {"dolphin.bar_ms": "300000"})
    assert not list(path.parent.glob("*.tmp"))
    schema = pq.read_schema(path)
    assert tuple(schema.names) == META_COLUMNS + table.assets
    assert schema.field("ts").type == pa.int64() and schema.field("scan_number").type == pa.int64()
    assert all(schema.field(c).type == pa.float64() for c in FEATURE_COLUMNS + table.assets)
    assert schema.metadata[b"dolphin.bar_ms"] == b"300000"
    back = read_scan_table(path)
    assert back.assets == table.assets
    for name in ("ts", "scan_number", *FEATURE_COLUMNS, "prices"):
        assert np.array_equal(getattr(back, name), getattr(table, name), equal_nan=True), name
    assert np.array_equal(back.price("ETHUSDT"), table.prices[:, 1], equal_nan=True)


def test_date_filter_is_inclusive_utc(tmp_path: Path, table: ScanTable) -> None:
    path = write_scan_table(tmp_path / "scan.parquet", table)
    one = read_scan_table(path, "2021-04-07", "2021-04-07")
    assert one.rows == 288
    assert one.ts[0] == T0 + DAY and one.ts[-1] == T0 + 2 * DAY - 300_000
    assert one.scan_number[0] == 289
    assert read_scan_table(path, date_from="2021-04-08").ts[0] == T0 + 2 * DAY
    assert read_scan_table(path, date_to="2021-04-06").rows == 288
    assert read_scan_table(path, "2022-01-01", "2022-01-02").rows == 0
    for bad in ("2021-4-7", "20210407", "2021-02-30", "yesterday"):
        with pytest.raises(UsageError, match="bad date"):
            read_scan_table(path, bad)
    with pytest.raises(UsageError, match="empty"):
        read_scan_table(path, "2021-04-08", "2021-04-07")


def _write_raw(path: Path, cols: dict[str, object]) -> Path:
    pq.write_table(pa.table(cols), path)
    return path


def _good_columns(rows: int = 5) -> dict[str, object]:
    cols: dict[str, object] = {"ts": pa.array(T0 + 1000 * np.arange(rows)),
                               "scan_number": pa.array(np.arange(1, rows + 1))}
    for name in FEATURE_COLUMNS:
        cols[name] = pa.array(np.zeros(rows))
    cols["BTCUSDT"] = pa.array(np.ones(rows))
    return cols


def test_reader_validation(tmp_path: Path) -> None:
    good = _write_raw(tmp_path / "good.parquet", _good_columns())
    assert read_scan_table(good).rows == 5

    cols = _good_columns()
    del cols["vel_div"]
    with pytest.raises(DataError, match=r"missing column\(s\) vel_div"):
        read_scan_table(_write_raw(tmp_path / "a.parquet", cols))

    cols = _good_columns()
    cols["ts"] = pa.array(T0 + 1000 * np.array([0, 1, 3, 2, 4]))
    with pytest.raises(DataError, match=r"strictly increasing \(row 3"):
        read_scan_table(_write_raw(tmp_path / "b.parquet", cols))

    cols = _good_columns()
    cols["ts"] = pa.array(T0 + 1000 * np.array([0, 1, 1, 2, 4]))
    with pytest.raises(DataError, match="strictly increasing"):
        read_scan_table(_write_raw(tmp_path / "b2.parquet", cols))

    cols = _good_columns()
    cols["ts"] = pa.array((T0 + 1000 * np.arange(5)).astype(float))
    with pytest.raises(DataError, match="'ts' must be integer"):
        read_scan_table(_write_raw(tmp_path / "c.parquet", cols))

    cols = _good_columns()
    cols["v50_lambda_max_velocity"] = pa.array(["x"] * 5)
    with pytest.raises(DataError, match="'v50_lambda_max_velocity' must be float64"):
        read_scan_table(_write_raw(tmp_path / "d.parquet", cols))

    cols = _good_columns()
    cols["ETHUSDT"] = pa.array(["1"] * 5)
    with pytest.raises(DataError, match="'ETHUSDT' must be float64"):
        read_scan_table(_write_raw(tmp_path / "e.parquet", cols))

    cols = _good_columns()
    del cols["BTCUSDT"]
    with pytest.raises(DataError, match="no asset price columns"):
        read_scan_table(_write_raw(tmp_path / "f.parquet", cols))

    with pytest.raises(DataError, match="not found"):
        read_scan_table(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot read"):
        read_scan_table(tmp_path / "junk.parquet")


def test_builder_rejects_bad_shapes_and_names(make_prices) -> None:
    P = make_prices(10, 2)
    ts = np.arange(10)
    with pytest.raises(ValueError, match="close must be"):
        build_scan_table(ts, ("A",), P)
    with pytest.raises(ValueError, match="unique"):
        build_scan_table(ts, ("A", "A"), P)
    with pytest.raises(ValueError, match="vel_div"):
        build_scan_table(ts, ("A", "vel_div"), P)
