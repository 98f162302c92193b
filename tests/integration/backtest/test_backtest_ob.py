"""`dolphin backtest --scans … --ob PATH`: recorded OBF history reaches the engine, as-of each bar's close."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dolphin.backtest.runner import run_backtest
from dolphin.bus import ob_codec
from dolphin.config import load_config
from dolphin.engine.ob import OB_ASSET_FIELDS, RecordedOBProvider
from dolphin.enums import ObRegime
from dolphin.market.ob_features import AssetFeatures, MacroFeatures, Snapshot
from dolphin.store.ob_history import FEATURES, MACRO, ObHistoryWriter
from dolphin.store.scan_table import ScanTable, write_scan_table
from tests.support import dolphin

pytestmark = [pytest.mark.signal_fill, pytest.mark.cli, pytest.mark.timeout(900)]

OB_EVERY_MS = 30_000            # one OB bar every 30 s: always within the trader feed's 60 s
SNAP = Snapshot(best_bid=99.9, best_ask=100.1, mid=100.0, spread_bps=20.0, bid_usd=1e5, ask_usd=1e5,
                n_bid_levels=5, n_ask_levels=5)
FEATS = AssetFeatures(snapshot=SNAP, depth_quality=1.2, fill_probability=0.9, imbalance_ma5=0.1,
                      imbalance_persistence=0.6, withdrawal_velocity=-0.05, cascading=False)


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return dolphin("backtest", *args, env={**os.environ, "DOLPHIN_HOME": str(home)}, timeout=600)


@pytest.fixture(scope="module")
def one_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[ScanTable, Path, Path]:
    """A synthetic day of scans on disk, and an OBF history over it (cascades everywhere: exits change)."""
    from dolphin.backtest.synthetic import synthetic_scan_table

    table, _ = synthetic_scan_table(1, 7)
    root = tmp_path_factory.mktemp("ob_replay")
    scans = root / "scans.parquet"
    write_scan_table(scans, table)
    writer = ObHistoryWriter(root / "home" / "ob_history")
    writer.recover()
    first = int(table.ts[0]) // OB_EVERY_MS * OB_EVERY_MS
    for bar_ms in range(first, int(table.ts[-1]) + OB_EVERY_MS, OB_EVERY_MS):
        writer.add_rows(FEATURES, ob_codec.feature_rows(bar_ms, [(a, FEATS) for a in table.assets[:2]]))
        writer.add_rows(MACRO, ob_codec.macro_rows(bar_ms, MacroFeatures(3, ObRegime.STRESS, 0.1, 2)))
    writer.flush()
    return table, scans, root / "home"


def test_ob_history_reaches_the_engine(one_day: tuple[ScanTable, Path, Path], runtime_root: Path) -> None:
    table, scans, history = one_day
    plain = _cli("--scans", str(scans), "--json", "--no-write", home=runtime_root)
    with_ob = _cli("--scans", str(scans), "--ob", str(history), "--json", "--no-write", home=runtime_root)
    assert plain.returncode == 0, plain.stderr
    assert with_ob.returncode == 0, with_ob.stderr
    a, b = json.loads(plain.stdout)["metrics"], json.loads(with_ob.stdout)["metrics"]
    assert a["trades"] > 0 and b["trades"] > 0
    assert (a["final_capital"], a["exit_reasons"]) != (b["final_capital"], b["exit_reasons"])

    # the same replay in process with the expected provider, built by hand: every OB bar, read as of
    # the scan bar's close (open + 5 s) and at most 60 s old
    ts = np.arange(int(table.ts[0]) // OB_EVERY_MS * OB_EVERY_MS, int(table.ts[-1]) + OB_EVERY_MS, OB_EVERY_MS,
                   dtype=np.int64)
    symbols = tuple(sorted(table.assets[:2]))
    values = np.tile([getattr(FEATS, f) for f in OB_ASSET_FIELDS], (len(ts), len(symbols), 1)).astype(float)
    macro = np.tile([3.0, 1.0, 0.1], (len(ts), 1))
    expected = run_backtest(table, load_config("blue"), ob_provider=RecordedOBProvider(
        symbols, ts, values, ts.copy(), macro, offset_ms=int(table.ts[1] - table.ts[0]), max_age_ms=60_000))
    assert b["trades"] == len(expected.trades)
    assert b["final_capital"] == expected.metrics.final_capital


@pytest.mark.degradation
def test_ob_errors_are_one_line(one_day: tuple[ScanTable, Path, Path], tmp_path: Path, runtime_root: Path) -> None:
    _, scans, _ = one_day
    for args, code, message in [
        (("--scans", str(scans), "--ob", "/nonexistent/ob_history"), 6, "/nonexistent/ob_history: OB history not found"),
        (("--scans", str(scans), "--ob", str(tmp_path)), 6, "no OB feature history"),
        (("--synthetic", "--ob", str(tmp_path)), 2, "use it with --scans"),
    ]:
        res = _cli(*args, home=runtime_root)
        assert res.returncode == code, (res.stdout, res.stderr)
        assert message in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
