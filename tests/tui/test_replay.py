"""`--replay`: archived scans (and trades) drive the same screen, on market time."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from dolphin.errors import DataError
from dolphin.scan.definitions import DEFAULT_WINDOWS
from dolphin.scan.record import ScanRecord, iso_from_ns
from dolphin.scan.table import ScanTable
from dolphin.store.scan_table import write_scan_table
from tests.tui import support as S
from tests.tui.support import panel_text, wait_for
from tui.replay import ArrowScanArchive, ReplayClock, open_archive, scan_payload

pytestmark = pytest.mark.data_integrity

T0_MS = int(S.T0 * 1000)


def _table(path: Path, rows: int = 12, warmup: int = 2) -> Path:
    n = np.arange(rows)
    v50 = -0.01 - 0.001 * n
    v750 = 0.01 + 0.0005 * n
    v50[:warmup] = np.nan  # warm-up bars: features not defined yet
    table = ScanTable(ts=T0_MS + 5000 * n, scan_number=1 + n, vel_div=v50 - v750, v50_lambda_max_velocity=v50,
                      v150_lambda_max_velocity=np.full(rows, 0.002), v300_lambda_max_velocity=np.full(rows, -0.001),
                      v750_lambda_max_velocity=v750, instability_50=np.full(rows, 0.03),
                      instability_150=np.full(rows, 0.02), assets=("BTCUSDT", "ETHUSDT"),
                      prices=np.column_stack([64000 + n, np.where(n == 5, np.nan, 3100 + n)]))
    return write_scan_table(path, table)


def _record(n: int, *, vel_div: float | None = None, prices: tuple[float | None, ...] = (64000.0, None)) -> ScanRecord:
    stats = {f"w{w}_{k}": v for w in DEFAULT_WINDOWS
             for k, v in (("lambda_max", 10.0 + w / 100), ("velocity", (-0.01 if w == 50 else 0.01) * n),
                          ("acceleration", 0.0), ("instability", 0.02))}
    ts = (T0_MS + 5000 * n) * 1_000_000
    vd = -0.02 * n if vel_div is None else vel_div
    return ScanRecord(scan_number=n, timestamp_ns=ts, timestamp=iso_from_ns(ts), **stats, vel_div=vd,
                      regime_signal=0.0, instability_composite=0.02, n_assets=2, assets=("BTCUSDT", "ETHUSDT"),
                      prices=prices, loadings={"50": (0.7, None)})


def test_archived_scans_become_ng8_payloads() -> None:
    payload = scan_payload(_record(7))
    assert payload is not None and payload.scan_number == 7 and payload.bridge_ts == S.T0 + 35
    assert payload.asset_prices == {"BTCUSDT": 64000.0}  # missing prices are dropped, not published
    assert payload.multi_window_results["50"].lambda_max == 10.5 and payload.vel_div == pytest.approx(-0.14)
    assert scan_payload(_record(1, vel_div=math.nan)) is None  # warm-up: vel_div undefined


def test_arrow_archive_reads_records_and_skips_unreadable_files(tmp_path: Path) -> None:
    files = [tmp_path / "scan_000003.arrow", tmp_path / "broken.arrow", tmp_path / "scan_000004.arrow"]
    by_file = {files[0]: _record(3), files[2]: _record(4)}

    def read(f: Path) -> ScanRecord:
        if f not in by_file:
            raise DataError(f"{f}: unreadable")
        return by_file[f]

    archive = ArrowScanArchive(tmp_path, iter_files=lambda root: files, read=read)
    assert [s.scan_number for s in archive.scans()] == [3, 4] and archive.unreadable == 1


def test_open_archive_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        open_archive(tmp_path / "missing")


def test_replay_clock_runs_at_speed_and_pauses() -> None:
    wall = [100.0]
    clock = ReplayClock(start_s=S.T0, speed=10.0, wall=lambda: wall[0])
    wall[0] += 2
    assert clock.now() == S.T0 + 20
    clock.set_paused(True)
    wall[0] += 5
    assert clock.now() == S.T0 + 20
    clock.set_paused(False)
    clock.set_speed(100.0)
    wall[0] += 1
    assert clock.now() == S.T0 + 120


def test_replay_drives_the_screen_on_market_time(tmp_path: Path) -> None:
    from tui.app import build_replay_app

    path = _table(tmp_path / "span.parquet")

    async def scenario() -> None:
        app = build_replay_app(path, speed=200.0, results_path=tmp_path / "none.json")
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: app.state.replay is not None and app.state.replay.finished)
            await wait_for(pilot, lambda: "#12" in panel_text(app, "scan"))
            # the header repaints on its own: it may still say "scan 9/12" when the scan panel shows #12
            await wait_for(pilot, lambda: all(s in panel_text(app, "header", width=200)
                                              for s in ("REPLAY", "span.parquet", "scan 12/12")))
            assert app.state.replay.skipped == 2  # warm-up rows are not scans the scanner would publish
            assert len(app.state.vel_div_history()) == 10
            # ages are market time of the replay: the last scan is "0 s" old when it lands
            assert "is not in this replay" in panel_text(app, "syshealth")
            await pilot.press("space")
            assert app.state.replay.paused
            await wait_for(pilot, lambda: "PAUSED" in panel_text(app, "header", width=200))  # repainted on a message
            await pilot.press("plus")
            assert app.feeds[0].clock.speed == 400.0
    asyncio.run(scenario())


def test_replay_with_a_trade_journal_shows_the_trades(tmp_path: Path) -> None:
    import dolphin.store.journal as journal_mod
    from tui.app import build_replay_app

    path = _table(tmp_path / "span.parquet", rows=6, warmup=0)
    journal = journal_mod.Journal(tmp_path / "blue.journal")
    for i in range(6):
        journal.append(journal_mod.ScanInput(seq=journal.next_seq(), scan_number=i + 1, ts_ms=T0_MS + 5000 * i,
                                             vel_div=-0.03, v50=-0.02, v750=0.01, vol_ok=True, prices={}, trade=True))
    journal.append(journal_mod.TradeRecord(seq=journal.next_seq(), scan_number=4,
                                           trade={"trade_id": 9, "asset": "ETHUSDT", "side": "SHORT", "pnl": 12.5,
                                                  "exit_reason": "FIXED_TP"}))
    journal.close()

    async def scenario() -> None:
        app = build_replay_app(path, speed=500.0, journal=tmp_path / "blue.journal",
                               results_path=tmp_path / "none.json")
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: app.state.replay is not None and app.state.replay.finished)
            await wait_for(pilot, lambda: "ETHUSDT +12.50" in panel_text(app, "trader", width=80))
    asyncio.run(scenario())


def test_replay_of_the_scanners_arrow_files(tmp_path: Path) -> None:
    import dolphin.store.arrow_scans as arrow
    from tui.app import build_replay_app

    def record(n: int) -> ScanRecord:
        return _record(n, prices=(64000.0 + n, None))

    for n in range(1, 5):
        arrow.write_scan(tmp_path, record(n))

    async def scenario() -> None:
        app = build_replay_app(tmp_path, speed=500.0, results_path=tmp_path / "none.json")
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: app.state.replay is not None and app.state.replay.finished)
            await wait_for(pilot, lambda: "#4" in panel_text(app, "scan"))
            text = panel_text(app, "scan")
            assert "1 assets" in text and "10.500" in text and "17.500" in text  # λmax per window from the file
            # panels repaint on their own timers: the alpha panel may show scan 4 a frame later
            await wait_for(pilot, lambda: "-0.0800" in panel_text(app, "alpha"))
    asyncio.run(scenario())
