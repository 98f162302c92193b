"""`dolphin trades` and `dolphin pnl` on a hand-built journal: every figure checked by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from dolphin.engine.trades import ClosedTrade
from dolphin.store.journal import Commit, Journal, SessionStart, TradeRecord

pytestmark = [pytest.mark.cli]

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DAY1 = 1_775_390_400_000      # 2026-04-05 12:00 UTC
DAY2 = DAY1 + 86_400_000


def _trade(tid: int, asset: str, pnl: float, exit_ts: int, reason: str, fee: float = 1.0,
           pnl_pct: float = 0.0) -> ClosedTrade:
    return ClosedTrade(trade_id=tid, asset=asset, side="SHORT", entry_bar=tid * 10, entry_ts=exit_ts - 60_000,
                       entry_price=100.0, exit_bar=tid * 10 + 12, exit_ts=exit_ts, exit_price=99.0, notional=1000.0,
                       leverage=1.0, fraction=0.1, pnl=pnl, pnl_pct=pnl_pct, entry_fee=fee / 2, exit_fee=fee / 2,
                       exit_reason=reason, bars_held=12, bucket=3, vel_div_entry=-0.03, confidence=0.6,
                       capital_after=25_000.0 + pnl)


TRADES = [_trade(1, "BTCUSDT", 10.0, DAY1, "FIXED_TP", pnl_pct=0.011),
          _trade(2, "ETHUSDT", -4.0, DAY1 + 60_000, "MAX_HOLD", pnl_pct=-0.003),
          _trade(3, "BTCUSDT", 6.0, DAY2, "FIXED_TP", pnl_pct=0.007),
          _trade(4, "SOLUSDT", -2.0, DAY2 + 1, "MANUAL", fee=2.0, pnl_pct=-0.001)]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    j = Journal(tmp_path / "journal" / "blue.jsonl", fsync=False)
    j.append(SessionStart(seq=j.next_seq(), wall_ts=0.0, strategy="blue", config_hash="x", venue="sim", book_id="b",
                          pid=1))
    capital = 25_000.0
    for t in TRADES:
        capital += t.pnl
        j.append(TradeRecord(seq=j.next_seq(), scan_number=t.exit_bar, trade=msgspec.to_builtins(t)),
                 Commit(seq=j.next_seq(), scan_number=t.exit_bar, capital=capital))
    j.append(TradeRecord(seq=j.next_seq(), scan_number=99, trade=msgspec.to_builtins(TRADES[0])))  # a re-journal
    j.close()
    return tmp_path


def _dolphin(home: Path, *args: str) -> dict:
    env = {**os.environ, "DOLPHIN_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}
    res = subprocess.run([sys.executable, "-m", "commands", *args, "--json"], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_pnl_summary_by_hand(home: Path) -> None:
    out = _dolphin(home, "pnl")
    assert out["trades"] == 4 and out["wins"] == 2 and out["losses"] == 2      # trade 1 counted once
    assert out["capital"] == pytest.approx(25_010.0) and out["roi"] == pytest.approx(10.0 / 25_000.0)
    assert out["profit_factor"] == pytest.approx(16.0 / 6.0) and out["win_rate"] == 0.5
    assert out["fees"] == pytest.approx(5.0) and out["venue"] == "sim"
    assert out["exit_reasons"] == {"FIXED_TP": 2, "MAX_HOLD": 1, "MANUAL": 1}


def test_pnl_per_day_pair_and_exit_reason(home: Path) -> None:
    daily = _dolphin(home, "pnl", "--daily")["groups"]
    assert [(g["key"], g["trades"], g["pnl"]) for g in daily] == [("2026-04-05", 2, 6.0), ("2026-04-06", 2, 4.0)]
    pairs = _dolphin(home, "pnl", "--per-asset")["groups"]
    assert [(g["key"], g["pnl"], g["win_rate"]) for g in pairs] == [("BTCUSDT", 16.0, 1.0), ("SOLUSDT", -2.0, 0.0),
                                                                     ("ETHUSDT", -4.0, 0.0)]
    assert pairs[0]["best"] == 10.0 and pairs[0]["worst"] == 6.0 and pairs[0]["avg_pnl_pct"] == pytest.approx(0.009)
    reasons = _dolphin(home, "pnl", "--per-exit-reason")["groups"]
    assert reasons[0]["key"] == "FIXED_TP" and reasons[0]["trades"] == 2 and reasons[-1]["key"] == "MAX_HOLD"


def test_trades_filters(home: Path) -> None:
    out = _dolphin(home, "trades", "--asset", "btcusdt")
    assert out["total"] == 2 and [t["trade_id"] for t in out["trades"]] == [1, 3]
    assert [t["trade_id"] for t in _dolphin(home, "trades", "--since", "2026-04-06")["trades"]] == [3, 4]
    assert _dolphin(home, "pnl", "--since", "2026-04-06")["trades"] == 2


def test_no_journal_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "DOLPHIN_HOME": str(tmp_path), "PYTHONPATH": str(PROJECT_ROOT)}
    res = subprocess.run([sys.executable, "-m", "commands", "pnl"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 6 and "no trader journal" in res.stderr and len(res.stderr.strip().splitlines()) == 1
