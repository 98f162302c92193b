"""Klines reader: validation at the edge, pivot, resampling, the real reference file."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from dolphin.errors import DataError, UsageError
from dolphin.paths import shared_data_dir
from dolphin.store.klines import format_ms, infer_interval_ms, load_close_matrix, parse_bar, read_klines

pytestmark = [pytest.mark.scan, pytest.mark.data_integrity]

REAL = shared_data_dir() / "binance_spot_1m_2021-04-06_2021-04-19.parquet"
T0 = 1_617_667_200_000          # 2021-04-06 00:00 UTC
MIN = 60_000


def klines_table(bars: int = 30, symbols: tuple[str, ...] = ("ETHUSDT", "BTCUSDT", "ADAUSDT"),
                 step: int = MIN, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ts = np.repeat(T0 + step * np.arange(bars), len(symbols))
    sym = np.tile(np.array(symbols), bars)
    close = 100 * np.exp(np.cumsum(1e-3 * rng.standard_normal((bars, len(symbols))), axis=0)).ravel()
    return pa.table({"ts": ts, "symbol": sym, "open": close, "high": close * 1.001, "low": close * 0.999,
                     "close": close, "volume": np.full(ts.shape, 5.0)})


def write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trip_and_pivot(tmp_path: Path, suffix: str) -> None:
    table = klines_table()
    cm = load_close_matrix(write(table, tmp_path / f"k{suffix}"))
    assert cm.symbols == ("ADAUSDT", "BTCUSDT", "ETHUSDT")
    assert cm.interval_ms == MIN and cm.bars == 30
    assert np.array_equal(cm.ts, T0 + MIN * np.arange(30))
    eth = table.filter(pa.compute.equal(table["symbol"], "ETHUSDT"))["close"].to_numpy()
    assert np.array_equal(cm.close[:, 2], eth)


def test_unsorted_input_and_missing_cells(tmp_path: Path) -> None:
    table = klines_table(bars=20)
    rng = np.random.default_rng(1)
    shuffled = table.take(rng.permutation(table.num_rows))
    drop = np.ones(table.num_rows, dtype=bool)
    drop[[4, 5, 40]] = False          # rows 4, 5 → bar 1 (BTC, ADA); row 40 → bar 13 (BTC)
    sparse = table.filter(pa.array(drop))
    a = load_close_matrix(write(shuffled, tmp_path / "a.parquet"))
    b = load_close_matrix(write(table, tmp_path / "b.parquet"))
    assert np.array_equal(a.close, b.close) and a.symbols == b.symbols
    c = load_close_matrix(write(sparse, tmp_path / "c.parquet"))
    assert np.isnan(c.close).sum() == 3
    assert np.isnan(c.close[1, [0, 1]]).all() and np.isnan(c.close[13, 1])


def test_resample_takes_the_last_close_in_each_bar(tmp_path: Path) -> None:
    table = klines_table(bars=12, symbols=("AAAUSDT",))
    cm1 = load_close_matrix(write(table, tmp_path / "k.parquet"))
    cm5 = load_close_matrix(tmp_path / "k.parquet", bar="5m")
    assert cm5.interval_ms == 5 * MIN and cm5.bars == 3
    assert np.array_equal(cm5.ts, T0 + 5 * MIN * np.arange(3))
    assert np.array_equal(cm5.close[:, 0], cm1.close[[4, 9, 11], 0])
    # a missing last candle: the bar's close is the last close that exists inside it
    holes = table.filter(pa.array(np.arange(12) != 9))
    cm5h = load_close_matrix(write(holes, tmp_path / "h.parquet"), bar="5m")
    assert cm5h.close[1, 0] == cm1.close[8, 0]
    assert load_close_matrix(tmp_path / "k.parquet", bar="1m").close.shape == (12, 1)


def test_bar_errors(tmp_path: Path) -> None:
    path = write(klines_table(), tmp_path / "k.parquet")
    with pytest.raises(DataError, match="finer than"):
        load_close_matrix(path, bar="5s")
    with pytest.raises(DataError, match="not a multiple"):
        load_close_matrix(path, bar="90s")
    for bad in ("", "5", "1w", "0m", "-1m", "m5"):
        with pytest.raises(UsageError, match="bad bar size"):
            parse_bar(bad)
    assert parse_bar("5s") == 5_000 and parse_bar("1h") == 3_600_000 and parse_bar("250ms") == 250
    assert format_ms(60_000) == "1m" and format_ms(5_000) == "5s" and format_ms(1_500) == "1500ms"


def _expect(tmp_path: Path, table: pa.Table, match: str, suffix: str = ".parquet") -> None:
    path = write(table, tmp_path / f"bad{suffix}")
    with pytest.raises(DataError, match=match) as err:
        read_klines(path)
    assert str(path) in str(err.value)


def test_missing_column(tmp_path: Path) -> None:
    _expect(tmp_path, klines_table().drop_columns(["volume", "low"]), r"missing column\(s\) low, volume")


def test_nan_inf_and_negative_prices(tmp_path: Path) -> None:
    table = klines_table()
    close = table["close"].to_numpy().copy()
    close[7] = np.nan
    _expect(tmp_path, table.set_column(5, "close", pa.array(close)), r"'close' has 1 NaN/inf .*row 7")
    close[7] = np.inf
    _expect(tmp_path, table.set_column(5, "close", pa.array(close)), r"'close' has 1 NaN/inf")
    close[7] = -3.0
    _expect(tmp_path, table.set_column(5, "close", pa.array(close)), r"'close' has 1 zero or negative")
    high = table["high"].to_numpy().copy()
    high[3] = 0.0
    _expect(tmp_path, table.set_column(3, "high", pa.array(high)), r"'high' has 1 zero or negative")
    vol = table["volume"].to_numpy().copy()
    vol[0] = -1
    _expect(tmp_path, table.set_column(6, "volume", pa.array(vol)), r"'volume' has 1 negative")


def test_csv_nan_and_nulls(tmp_path: Path) -> None:
    table = klines_table()
    close = table["close"].to_numpy().copy()
    close[2] = np.nan
    # pyarrow's CSV reader turns "nan" into a null: still reported with the column name
    _expect(tmp_path, table.set_column(5, "close", pa.array(close)), r"'close' has 1 (missing|NaN)", ".csv")


def test_wrong_types(tmp_path: Path) -> None:
    table = klines_table()
    _expect(tmp_path, table.set_column(0, "ts", table["ts"].cast(pa.float64())), r"'ts' must be integer")
    _expect(tmp_path, table.set_column(5, "close", table["close"].cast(pa.string())), r"'close' must be numeric")
    _expect(tmp_path, table.set_column(1, "symbol", pa.array(np.arange(table.num_rows))), r"'symbol' must be text")


def test_grid_duplicates_and_files(tmp_path: Path) -> None:
    table = klines_table(bars=10)
    ts = table["ts"].to_numpy().copy()
    ts[4] += 1_000
    with pytest.raises(DataError, match="not on the 1m grid"):
        load_close_matrix(write(table.set_column(0, "ts", pa.array(ts)), tmp_path / "g.parquet"))
    dup = pa.concat_tables([table, table.slice(0, 1)])
    with pytest.raises(DataError, match="duplicate candle for symbol ETHUSDT"):
        load_close_matrix(write(dup, tmp_path / "d.parquet"))
    with pytest.raises(DataError, match="not found"):
        read_klines(tmp_path / "nope.parquet")
    (tmp_path / "k.json").write_text("{}")
    with pytest.raises(DataError, match="unsupported"):
        read_klines(tmp_path / "k.json")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read"):
        read_klines(tmp_path / "junk.parquet")
    with pytest.raises(DataError, match="no klines rows"):
        read_klines(write(table.slice(0, 0), tmp_path / "empty.parquet"))
    one_ts = table.filter(pa.compute.equal(table["ts"], T0))
    with pytest.raises(DataError, match="two distinct timestamps"):
        load_close_matrix(write(one_ts, tmp_path / "one.parquet"))


def test_interval_is_the_most_common_step() -> None:
    ts = np.array([0, 60, 120, 180, 300, 360, 420]) * 1000
    assert infer_interval_ms(ts) == 60_000


@pytest.mark.skipif(not REAL.is_file(), reason=f"reference data not present at {REAL}")
def test_real_reference_file_loads_quickly() -> None:
    t0 = time.perf_counter()
    cm = load_close_matrix(REAL)
    elapsed = time.perf_counter() - t0
    assert cm.close.shape == (20_160, 87) and cm.interval_ms == MIN
    assert not np.isnan(cm.close).any()
    assert cm.ts[0] == T0 and "BTCUSDT" in cm.symbols
    assert elapsed < 5.0
    cm5 = load_close_matrix(REAL, bar="5m")
    assert cm5.close.shape == (4032, 87) and np.array_equal(cm5.close, cm.close[4::5])
