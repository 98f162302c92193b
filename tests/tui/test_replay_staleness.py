"""Staleness follows the data's bar interval: 1-minute bars replayed are not stale between bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dolphin.bus import BusEvent, schema
from dolphin.scan.table import ScanTable
from dolphin.store.scan_table import write_scan_table
from tests.tui import _support as S
from tui.panels import ScanPanel
from tui.replay import ParquetScanArchive, bar_interval_s, scan_payload
from tui.state import SCAN, SOURCES, TuiState

pytestmark = pytest.mark.data_integrity


def _minute_bars(path: Path, rows: int = 8) -> Path:
    n = np.arange(rows)
    table = ScanTable(ts=int(S.T0 * 1000) + 60_000 * n, scan_number=1 + n, vel_div=np.full(rows, -0.02),
                      v50_lambda_max_velocity=np.full(rows, -0.01), v150_lambda_max_velocity=np.full(rows, 0.002),
                      v300_lambda_max_velocity=np.full(rows, -0.001), v750_lambda_max_velocity=np.full(rows, 0.01),
                      instability_50=np.full(rows, 0.03), instability_150=np.full(rows, 0.02),
                      assets=("BTCUSDT",), prices=np.full((rows, 1), 64000.0))
    return write_scan_table(path, table)


def test_a_minute_bar_archive_sets_thresholds_of_three_bars(tmp_path: Path) -> None:
    archive = ParquetScanArchive(_minute_bars(tmp_path / "minutes.parquet"))
    assert bar_interval_s(archive) == 60.0

    now = [S.T0]
    state = TuiState(clock=lambda: now[0])
    first = next(iter(archive.scans()))
    payload = scan_payload(first)
    assert payload is not None
    state.deliver(BusEvent(schema.FEATURES, schema.LATEST_EIGEN_SCAN, "ADDED", payload, first.timestamp_ns / 1e9))
    panel = ScanPanel(state, id="scan")
    now[0] = first.timestamp_ns / 1e9 + 45.0          # 45 s after a 1-minute bar: the next one is not due yet
    assert panel.age_status(now[0])[1] is True        # with the live 30 s threshold it would read STALE
    state.set_bar_interval(bar_interval_s(archive))
    assert state.stale_after(SOURCES[SCAN]) == 180.0
    assert panel.age_status(now[0])[1] is False
    now[0] += 150.0                                   # three bars without a scan: now it is stale
    assert panel.age_status(now[0])[1] is True
    state.set_bar_interval(5.0)                       # a 5 s scanner keeps its own 30 s threshold
    assert state.stale_after(SOURCES[SCAN]) == 30.0
