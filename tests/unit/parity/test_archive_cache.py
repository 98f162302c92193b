"""The parity monitor's incremental archive read: the same table as a full read, new files only, bad files skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dolphin.backtest.parity_run import ArchiveCache
from dolphin.bus.scan_codec import records_from_table
from dolphin.errors import DataError
from dolphin.store.arrow_scans import encode_scan, scan_path
from dolphin.store.scan_archive import load_arrow_scans

pytestmark = [pytest.mark.data_integrity]


def _write(home: Path, records) -> None:  # noqa: ANN001
    for rec in records:
        path = scan_path(home, rec)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_scan(rec))


def test_incremental_reads_match_a_full_read(market, tmp_path: Path) -> None:
    records = list(records_from_table(market.take(np.arange(1000, 1060))))
    cache = ArchiveCache(tmp_path)
    with pytest.raises(DataError, match="no readable scan files"):
        cache.table()
    _write(tmp_path, records[:40])
    first = cache.table()
    assert first.rows == 40 and cache.files_read == 40
    assert cache.table() is first                                 # nothing new: the same table, no file opened
    _write(tmp_path, records[40:])
    bad = scan_path(tmp_path, records[-1]).with_name("scan_999999_235959.arrow")
    bad.write_bytes(b"not an arrow file")                         # a foreign file with a scan's name
    table = cache.table()
    assert cache.files_read == 60                                 # only the 20 new ones were opened
    full = load_arrow_scans(tmp_path, skip_corrupt=True)
    assert np.array_equal(table.scan_number, full.scan_number) and table.assets == full.assets
    assert np.array_equal(table.prices, full.prices, equal_nan=True)
    assert np.array_equal(table.vel_div, full.vel_div, equal_nan=True)
