"""`dolphin backtest` end to end: synthetic market → scans → engine → report files, and replays."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dolphin.backtest.report import TRADE_COLUMNS
from dolphin.backtest.runner import run_backtest
from dolphin.backtest.synthetic import SyntheticFactors, synthetic_scan_table
from dolphin.config import CHAMPION_HASH, load_config
from dolphin.engine.acb import AdaptiveCircuitBreaker
from dolphin.engine.engine import NDAlphaEngine
from dolphin.scan.volatility import vol_regime_ok
from dolphin.store.scan_table import read_scan_table, write_scan_table
from tests.reference.engine_ref import ReferenceEngine
from tests.support import dolphin

# a CLI backtest gets 600 s (its subprocess guard); the suite's 300 s per-test guard must not cut it first
pytestmark = [pytest.mark.signal_fill, pytest.mark.cli, pytest.mark.timeout(900)]


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    import os

    return dolphin("backtest", *args, env={**os.environ, "DOLPHIN_HOME": str(home)}, timeout=600)


@pytest.fixture(scope="module")
def synthetic_two_days():
    return synthetic_scan_table(2, 7)


@pytest.fixture(scope="module")
def scans_file(tmp_path_factory: pytest.TempPathFactory, synthetic_two_days) -> Path:
    path = tmp_path_factory.mktemp("scans") / "scans.parquet"
    write_scan_table(path, synthetic_two_days[0])
    return path


def test_synthetic_backtest_trades_and_writes_files(runtime_root: Path) -> None:
    res = _cli("--synthetic", "--days", "2", "--json", home=runtime_root)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["metrics"]["trades"] > 0
    assert out["config"] == {"name": "blue", "hash": CHAMPION_HASH, "direction": "short"}
    assert out["span"]["days"] == 2 and out["span"]["assets"] == 50
    summary = json.loads(Path(out["files"]["summary"]).read_text())
    assert summary["metrics"]["trades"] == out["metrics"]["trades"]
    assert Path(out["files"]["summary"]).parent == runtime_root / "backtest"
    with open(out["files"]["trades"]) as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == TRADE_COLUMNS and len(rows) == out["metrics"]["trades"]
    assert {r["exit_reason"] for r in rows} <= {"FIXED_TP", "MAX_HOLD", "STOP_LOSS", "HIBERNATE_HALT",
                                                "SUBDAY_ACB_NORMALIZATION", "VD_ADVERSE_TURN"}
    pnl = sum(float(r["pnl"]) for r in rows)
    assert pnl == pytest.approx(out["metrics"]["final_capital"] - out["metrics"]["initial_capital"])


def test_human_output_has_summary_and_days(runtime_root: Path) -> None:
    res = _cli("--synthetic", "--days", "1", "--no-write", home=runtime_root)
    assert res.returncode == 0, res.stderr
    for label in ("ROI", "profit factor", "Sharpe", "max drawdown", "win rate", "trades", "fees", "per day"):
        assert label in res.stdout
    assert not (runtime_root / "backtest").exists()


def test_same_seed_same_trades_bit_for_bit(synthetic_two_days) -> None:
    table, market = synthetic_two_days
    cfg = load_config("blue")
    a = run_backtest(table, cfg, acb_source=SyntheticFactors(market))
    b = run_backtest(synthetic_scan_table(2, 7)[0], cfg, acb_source=SyntheticFactors(market))
    assert a.trades and a.trades == b.trades


def test_scan_file_replay_matches_in_memory(synthetic_two_days, scans_file: Path) -> None:
    table, _ = synthetic_two_days
    cfg = load_config("blue")
    assert run_backtest(read_scan_table(scans_file), cfg).trades == run_backtest(table, cfg).trades


def test_fast_engine_matches_reference_on_synthetic_days(synthetic_two_days) -> None:
    table, market = synthetic_two_days
    cfg = load_config("blue")
    assets = list(table.assets)
    _, vol_ok = vol_regime_ok(table.price("BTCUSDT"), cfg.extras.vol_window, cfg.extras.vol_percentile,
                              cfg.extras.vol_calib_bars)
    fast = NDAlphaEngine(cfg, assets, acb=AdaptiveCircuitBreaker(cfg.acb, SyntheticFactors(market)))
    ref = ReferenceEngine(cfg, assets, acb=AdaptiveCircuitBreaker(cfg.acb, SyntheticFactors(market)))
    per_day = market.bars_per_day
    for d, date in enumerate(["2026-01-05", "2026-01-06"]):
        s, e = d * per_day, (d + 1) * per_day
        args = (np.arange(s, e), table.ts[s:e], table.vel_div[s:e], table.v750_lambda_max_velocity[s:e], vol_ok[s:e],
                table.prices[s:e])
        fast.process_day(date, *args)
        ref.process_day(date, *args)
    assert len(fast.trades) > 5 and len(fast.trades) == len(ref.trades)
    for got, want in zip(fast.trades, ref.trades):
        assert (got.asset, got.entry_bar, got.exit_bar, got.exit_reason, got.pnl) == (
            want.asset, want.entry_bar, want.exit_bar, want.exit_reason, want.pnl)
    assert fast.capital == ref.capital


def test_date_range_and_green(scans_file: Path, runtime_root: Path) -> None:
    res = _cli("--scans", str(scans_file), "--from", "2026-01-06", "--to", "2026-01-06", "--config", "green", "--json",
               "--no-write", home=runtime_root)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["span"]["days"] == 1 and out["span"]["start"].startswith("2026-01-06")
    assert out["config"]["name"] == "green" and out["config"]["direction"] == "long"


@pytest.mark.degradation
@pytest.mark.parametrize(("args", "code", "message"), [
    ((), 2, "choose one input"),
    (("--synthetic", "--scans", "x.parquet"), 2, "choose one input"),
    (("--synthetic", "--days", "0"), 2, "--days"),
    (("--synthetic", "--from", "yesterday"), 2, "--from: expected a date"),
    (("--synthetic", "--days", "1", "--from", "2026-01-06", "--to", "2026-01-05"), 2, "is before --from"),
    (("--synthetic", "--days", "1", "--from", "2030-01-01"), 6, "no bars"),
    (("--scans", "/nonexistent/scans.parquet"), 6, "/nonexistent/scans.parquet"),
    (("--synthetic", "--config", "purple"), 3, "unknown config"),
    (("--journal", "/nonexistent/journal.jsonl"), 2, "add --scans PATH"),
])
def test_operator_errors_are_one_line(args: tuple[str, ...], code: int, message: str, runtime_root: Path) -> None:
    res = _cli(*args, home=runtime_root)
    assert res.returncode == code, (res.stdout, res.stderr)
    assert message in res.stderr and "Traceback" not in res.stderr


@pytest.mark.degradation
def test_malformed_scan_table_is_rejected(tmp_path: Path, runtime_root: Path) -> None:
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"ts": [1, 2], "BTCUSDT": [1.0, 2.0]}), bad)
    res = _cli("--scans", str(bad), home=runtime_root)
    assert res.returncode == 6 and "vel_div" in res.stderr and "Traceback" not in res.stderr
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    res = _cli("--scans", str(garbage), home=runtime_root)
    assert res.returncode == 6 and "Traceback" not in res.stderr
