"""The scan archive: counter resume, listing, replay equivalence with the scan table, DuckDB, atomicity."""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from dolphin.errors import DataError, UsageError
from dolphin.scan import ScanUpdater, build_scan_table
from dolphin.scan.record import WINDOW_COLUMNS, ScanRecord, iso_from_ns, regime_signal
from dolphin.scan.table import FEATURE_COLUMNS
from dolphin.store.arrow_scans import (
    ScanFileError,
    encode_scan,
    read_scan,
    scan_path,
    write_scan,
)
from dolphin.store.scan_archive import (
    highest_scan_number,
    iter_scan_files,
    load_arrow_scans,
    query_scans,
    read_archive,
)

pytestmark = [pytest.mark.data_integrity]

T0_NS = 1_775_390_400_000_000_000  # 2026-04-05 12:00:00 UTC
STEP_NS = 5_000_000_000


def _record(n: int, ts_ns: int | None = None, *, assets: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
            prices: tuple[float | None, ...] | None = None, vel_div: float = -0.01) -> ScanRecord:
    ts = T0_NS + n * STEP_NS if ts_ns is None else ts_ns
    values = prices if prices is not None else tuple(100.0 + n + k for k in range(len(assets)))
    return ScanRecord(scan_number=n, timestamp_ns=ts, timestamp=iso_from_ns(ts),
                      **{c: 0.25 for c in WINDOW_COLUMNS}, vel_div=vel_div, regime_signal=regime_signal(vel_div),
                      instability_composite=0.25, n_assets=len(assets), assets=assets, prices=values,
                      loadings={"50": tuple(0.5 for _ in assets)})


# ---------------------------------------------------------------- counter and listing
def test_highest_scan_number_reads_names_only_and_resumes(tmp_path: Path) -> None:
    assert highest_scan_number(tmp_path) == 0  # no archive at all
    for n in (1, 2, 3):
        write_scan(tmp_path, _record(n))
    day = tmp_path / "arrow_scans" / "2026-04-05"
    (day / ".scan_000099_120000.arrow.x1y2.tmp").write_bytes(b"half")  # a write in progress
    (day / "scan_000098_120000.arrow.tmp").write_bytes(b"half")
    (day / "scan_12_120000.arrow").write_bytes(b"")  # too few digits
    (day / "notes.txt").write_text("x")
    (tmp_path / "arrow_scans" / "misc").mkdir()
    (tmp_path / "arrow_scans" / "misc" / "scan_000097_120000.arrow").write_bytes(b"")  # not a day directory
    assert highest_scan_number(tmp_path) == 3
    assert highest_scan_number(tmp_path / "arrow_scans") == 3

    # a scanner restart resumes from the highest file (bible §27.6), also past six digits
    resumed = highest_scan_number(tmp_path) + 1
    write_scan(tmp_path, _record(resumed))
    write_scan(tmp_path, _record(1_000_000))
    assert highest_scan_number(tmp_path) == 1_000_000
    assert list(iter_scan_files(tmp_path))[-2:] == [scan_path(tmp_path, _record(4)),
                                                     scan_path(tmp_path, _record(1_000_000))]
    assert scan_path(tmp_path, _record(1_000_000)).name.startswith("scan_1000000_")


def test_iter_scan_files_is_in_scan_order_across_days(tmp_path: Path) -> None:
    day = 86_400 * 10**9
    for n, ts in ((3, T0_NS + day), (1, T0_NS), (2, T0_NS + 10 * STEP_NS), (4, T0_NS + 2 * day)):
        write_scan(tmp_path, _record(n, ts))
    assert [read_scan(p).scan_number for p in iter_scan_files(tmp_path)] == [1, 2, 3, 4]
    assert [read_scan(p).scan_number for p in iter_scan_files(tmp_path, "2026-04-06", "2026-04-06")] == [3]
    with pytest.raises(UsageError):
        list(iter_scan_files(tmp_path, "2026-04-07", "2026-04-05"))


# ---------------------------------------------------------------- replay equivalence
def _market(bars: int, n_assets: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factor = rng.normal(0, 0.004, (bars, 1))
    returns = factor * rng.uniform(0.5, 1.5, n_assets) + rng.normal(0, 0.003, (bars, n_assets))
    close = 50.0 * np.exp(np.cumsum(returns, axis=0))
    close[100:140, 2] = np.nan  # a gap
    close[:300, 5] = np.nan  # a late listing
    return close


@pytest.mark.scan
def test_archive_replays_exactly_like_the_scan_table(tmp_path: Path) -> None:
    bars, assets = 800, tuple(f"C{k}USDT" for k in range(6))
    close = _market(bars, len(assets), seed=11)
    ts_ms = 1_775_347_200_000 + np.arange(bars, dtype=np.int64) * 5_000
    updater = ScanUpdater(len(assets))
    for i in range(bars):  # the live path: one bar at a time, one file per bar
        features = updater.update(close[i])
        write_scan(tmp_path, ScanRecord.from_features(i + 1, int(ts_ms[i]) * 1_000_000, assets, close[i], features))

    loaded = load_arrow_scans(tmp_path)
    built = build_scan_table(ts_ms, assets, close)
    np.testing.assert_array_equal(loaded.ts, built.ts)
    np.testing.assert_array_equal(loaded.scan_number, built.scan_number)
    for name in FEATURE_COLUMNS:  # bit for bit, NaN where the batch scan has NaN
        np.testing.assert_array_equal(loaded.feature(name), built.feature(name), err_msg=name)
    assert loaded.assets == built.assets
    np.testing.assert_array_equal(loaded.prices, built.prices)
    assert np.isfinite(loaded.vel_div).sum() == bars - 751  # the default windows' warm-up

    # DuckDB sees the same rows
    result = query_scans(tmp_path, "SELECT scan_number, vel_div, regime_signal FROM scans "
                                   "WHERE NOT isnan(vel_div) AND vel_div < ? ORDER BY scan_number", params=[0.0])
    expected = np.flatnonzero(np.isfinite(built.vel_div) & (built.vel_div < 0.0)) + 1
    assert result.column("scan_number").to_pylist() == expected.tolist()
    np.testing.assert_array_equal(result.column("vel_div").to_numpy(), built.vel_div[expected - 1])
    assert set(result.column("regime_signal").to_pylist()) <= {-1.0, 0.0}


def test_duckdb_aggregates_over_the_archive(tmp_path: Path) -> None:
    for n in range(1, 6):
        write_scan(tmp_path, _record(n, vel_div=-0.01 * n))
    result = query_scans(tmp_path / "arrow_scans",
                         "SELECT count(*) AS n, min(scan_number) AS lo, max(timestamp_ns) AS hi, "
                         "sum(CASE WHEN regime_signal = -1 THEN 1 ELSE 0 END) AS shorts, "
                         "any_value(schema_version) AS v FROM scans").to_pylist()[0]
    assert result == {"n": 5, "lo": 1, "hi": T0_NS + 5 * STEP_NS, "shorts": 3, "v": "5.0.0"}


def test_universe_is_the_union_in_order_of_first_appearance(tmp_path: Path) -> None:
    write_scan(tmp_path, _record(1, assets=("BTCUSDT", "ETHUSDT"), prices=(1.0, 2.0)))
    write_scan(tmp_path, _record(2, assets=("ETHUSDT", "SOLUSDT"), prices=(3.0, None)))
    write_scan(tmp_path, _record(3, assets=("SOLUSDT", "BTCUSDT"), prices=(5.0, 6.0)))
    write_scan(tmp_path, _record(4, assets=("BTCUSDT", "ETHUSDT"), prices=(7.0, 8.0)))
    table = load_arrow_scans(tmp_path)
    assert table.assets == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    nan = math.nan
    np.testing.assert_array_equal(table.prices, [[1, 2, nan], [nan, 3, nan], [6, nan, 5], [7, 8, nan]])


# ---------------------------------------------------------------- what the loader refuses or reports
def test_duplicate_scan_numbers_keep_the_first_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for n in (1, 2, 3):
        write_scan(tmp_path, _record(n))
    late = _record(2, T0_NS + 2 * STEP_NS + 180 * 10**9, prices=(1.0, 1.0))  # NG7's slow cycle, 3 min later
    write_scan(tmp_path, late)
    read = read_archive(tmp_path)
    assert len(read.duplicates) == 1 and read.duplicates[0].skipped == str(scan_path(tmp_path, late))
    with caplog.at_level(logging.WARNING, logger="dolphin.store.scan_archive"):
        table = load_arrow_scans(tmp_path)
    assert table.scan_number.tolist() == [1, 2, 3] and table.prices[1, 0] == 102.0
    assert "1 duplicate scan number" in caplog.text and "scan_000002_120310.arrow" in caplog.text


def test_a_counter_restart_is_not_one_replay(tmp_path: Path) -> None:
    write_scan(tmp_path, _record(5))
    write_scan(tmp_path, _record(1, T0_NS + 100 * STEP_NS))  # a new run, later in time, lower number
    with pytest.raises(DataError, match="counter restart"):
        load_arrow_scans(tmp_path)


def test_date_range_filters_days(tmp_path: Path) -> None:
    day = 86_400 * 10**9
    for n in range(1, 4):
        write_scan(tmp_path, _record(n, T0_NS + (n - 1) * day))
    assert load_arrow_scans(tmp_path, "2026-04-06").scan_number.tolist() == [2, 3]
    assert load_arrow_scans(tmp_path, None, "2026-04-06").scan_number.tolist() == [1, 2]
    with pytest.raises(DataError, match="no scan files"):
        load_arrow_scans(tmp_path, "2026-05-01")
    with pytest.raises(UsageError):
        load_arrow_scans(tmp_path, "2026-13-01")


def test_a_corrupt_file_stops_the_load_unless_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for n in (1, 2, 3):
        write_scan(tmp_path, _record(n))
    bad = scan_path(tmp_path, _record(2))
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(ScanFileError, match="scan_000002_120010.arrow"):
        load_arrow_scans(tmp_path)
    with caplog.at_level(logging.WARNING, logger="dolphin.store.scan_archive"):
        table = load_arrow_scans(tmp_path, skip_corrupt=True)
    assert table.scan_number.tolist() == [1, 3]
    assert "1 unreadable scan file" in caplog.text


def test_a_file_whose_content_contradicts_its_name_is_refused(tmp_path: Path) -> None:
    write_scan(tmp_path, _record(1))
    wrong = tmp_path / "arrow_scans" / "2026-04-05" / "scan_000009_120045.arrow"
    wrong.write_bytes(encode_scan(_record(2)))
    with pytest.raises(ScanFileError, match="its name says 9"):
        load_arrow_scans(tmp_path)


def test_an_empty_archive_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no scan files"):
        load_arrow_scans(tmp_path)


# ---------------------------------------------------------------- atomic writes
def test_a_polling_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    """Writers rename complete files into place: a reader polling the directory only fails on
    files someone wrote without that discipline (here: deliberately, every 25th scan)."""
    day = tmp_path / "arrow_scans" / "2026-04-05"
    total, corrupt_every = 300, 25
    deliberately_bad: set[str] = set()
    done = threading.Event()
    errors: dict[str, str] = {}
    good_reads: set[str] = set()

    def writer() -> None:
        try:
            for n in range(1, total + 1):
                record = _record(n, prices=tuple(float(100 + n + k) for k in range(40)),
                                 assets=tuple(f"A{k}USDT" for k in range(40)))
                if n % corrupt_every == 0:  # torn on purpose: written in place, in two halves
                    path = scan_path(tmp_path, record)
                    deliberately_bad.add(path.name)
                    data = encode_scan(record)
                    with open(path, "wb") as fh:
                        fh.write(data[: len(data) // 3])
                        fh.flush()
                else:
                    write_scan(tmp_path, record)
        finally:
            done.set()

    def reader() -> None:
        while True:
            finished = done.is_set()
            names = sorted(os.listdir(day)) if day.is_dir() else []
            for name in names:
                if name in good_reads or name in errors or not name.endswith(".arrow"):
                    continue
                try:
                    read_scan(day / name)
                    good_reads.add(name)
                except ScanFileError as exc:
                    errors[name] = exc.reason
            if finished:
                return

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert set(errors) <= deliberately_bad, {k: v for k, v in errors.items() if k not in deliberately_bad}
    assert len(good_reads) == total - len(deliberately_bad)
    assert not [n for n in os.listdir(day) if n.endswith(".tmp")]  # no temp file left behind


def test_load_reports_nothing_for_a_clean_archive(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for n in (1, 2):
        write_scan(tmp_path, _record(n))
    with caplog.at_level(logging.WARNING):
        read = read_archive(tmp_path)
        load_arrow_scans(tmp_path)
    assert read.duplicates == [] and read.skipped == [] and len(read.paths) == 2
    assert caplog.text == ""
