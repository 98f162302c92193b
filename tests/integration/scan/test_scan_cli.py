"""`dolphin scan build` end to end: CliRunner on generated klines, the installed script on real data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from commands.app import app
from dolphin.paths import shared_data_dir
from dolphin.store.scan_table import read_scan_table
from tests.support import dolphin

pytestmark = [pytest.mark.scan, pytest.mark.cli]

REAL = shared_data_dir() / "binance_spot_1m_2021-04-06_2021-04-19.parquet"
T0 = 1_617_667_200_000


def _klines(path: Path, bars: int = 1000, n: int = 5, step_ms: int = 5_000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((bars, 1))
    close = 50 * np.exp(np.cumsum(2e-3 * (0.8 * f + 0.6 * rng.standard_normal((bars, n))), axis=0))
    syms = [f"S{i}USDT" for i in range(n)]
    table = pa.table({
        "ts": np.repeat(T0 + step_ms * np.arange(bars), n),
        "symbol": np.tile(np.array(syms), bars),
        "open": close.ravel(), "high": close.ravel(), "low": close.ravel(), "close": close.ravel(),
        "volume": np.ones(bars * n),
    })
    if path.suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


def test_build_json(tmp_path: Path) -> None:
    src = _klines(tmp_path / "k.csv")
    out = tmp_path / "scan.parquet"
    res = CliRunner().invoke(app, ["scan", "build", "--klines", str(src), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["bars"] == 1000 and summary["assets"] == 5 and summary["bar"] == "5s"
    assert summary["from"] == "2021-04-06 00:00:00" and summary["to"] == "2021-04-06 01:23:15"
    assert summary["bars_with_vel_div"] == 1000 - 751
    table = read_scan_table(out)
    assert summary["bars_below_threshold"] == int(np.sum(table.vel_div < -0.02))
    assert table.assets == tuple(f"S{i}USDT" for i in range(5))


def test_build_text_and_resample(tmp_path: Path) -> None:
    src = _klines(tmp_path / "k.parquet", bars=1200)
    out = tmp_path / "scan.parquet"
    res = CliRunner().invoke(app, ["scan", "build", "--klines", str(src), "--out", str(out), "--bar", "15s"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.stdout and "400 bars × 5 assets, bar 15s" in res.stdout
    assert read_scan_table(out).rows == 400


def test_user_errors_exit_with_one_line(tmp_path: Path) -> None:
    src = _klines(tmp_path / "k.parquet", bars=20)
    cases = [
        (["--klines", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o.parquet")], 6, "not found"),
        (["--klines", str(src), "--out", str(tmp_path / "o.parquet"), "--bar", "1s"], 6, "finer than"),
        (["--klines", str(src), "--out", str(tmp_path / "o.parquet"), "--bar", "fast"], 2, "bad bar size"),
        (["--klines", str(src), "--out", str(tmp_path / "o.csv")], 2, "Parquet"),
    ]
    for args, code, text in cases:
        proc = dolphin("scan", "build", *args)
        assert proc.returncode == code, (args, proc.stderr)
        assert text in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.skipif(not REAL.is_file(), reason=f"reference data not present at {REAL}")
def test_real_data_slice_through_the_installed_script(tmp_path: Path) -> None:
    """Two days of the real 1-minute file, 20 symbols including BTC, through `dolphin scan build`."""
    table = pq.read_table(REAL)
    keep = sorted(s for s in pc.unique(table["symbol"]).to_pylist() if s != "BTCUSDT")[:19] + ["BTCUSDT"]
    table = table.filter(pc.and_(pc.is_in(table["symbol"], pa.array(keep)),
                                 pc.less(table["ts"], T0 + 2 * 86_400_000)))
    src = tmp_path / "real.parquet"
    pq.write_table(table, src)
    out = tmp_path / "scan.parquet"
    script = Path(sys.executable).with_name("dolphin")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "commands"]
    proc = subprocess.run([*cmd, "scan", "build", "--klines", str(src), "--out", str(out), "--bar", "5m", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["bars"] == 576 and summary["assets"] == 20 and summary["bar"] == "5m"
    scan = read_scan_table(out, "2021-04-07", "2021-04-07")
    assert scan.rows == 288 and "BTCUSDT" in scan.assets
    assert np.isfinite(scan.v50_lambda_max_velocity).all()
