"""Backtest output files: ``summary_<ts>.json`` and ``trades_<ts>.csv`` under run_logs/backtest/."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from dolphin.paths import runtime_root
from dolphin.store.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from dolphin.backtest.runner import BacktestResult

TRADE_COLUMNS = ("trade_id", "entry_time", "exit_time", "asset", "side", "entry_price", "exit_price", "notional",
                 "leverage", "fraction", "pnl", "pnl_pct", "entry_fee", "exit_fee", "fees", "exit_reason",
                 "bars_held", "bucket", "vel_div_entry", "entry_bar", "exit_bar")


@dataclass(frozen=True, slots=True)
class ReportPaths:
    summary: Path
    trades: Path


def iso_utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000.0, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def trades_csv(result: BacktestResult) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRADE_COLUMNS)
    for t in result.trades:
        writer.writerow([t.trade_id, iso_utc(t.entry_ts), iso_utc(t.exit_ts), t.asset, t.side, repr(t.entry_price),
                         repr(t.exit_price), repr(t.notional), repr(t.leverage), repr(t.fraction), repr(t.pnl),
                         repr(t.pnl_pct), repr(t.entry_fee), repr(t.exit_fee), repr(t.fees), t.exit_reason,
                         t.bars_held, t.bucket, repr(t.vel_div_entry), t.entry_bar, t.exit_bar])
    return buf.getvalue()


def _stamp(directory: Path, now: datetime) -> str:
    base = now.strftime("%Y%m%d_%H%M%S")
    stamp, n = base, 1
    while (directory / f"summary_{stamp}.json").exists() or (directory / f"trades_{stamp}.csv").exists():
        n += 1
        stamp = f"{base}_{n}"
    return stamp


def write_report(result: BacktestResult, directory: Path | None = None, now: datetime | None = None) -> ReportPaths:
    """Write both files atomically; the timestamp is the wall-clock time of the run (UTC)."""
    out = directory or runtime_root() / "backtest"
    out.mkdir(parents=True, exist_ok=True)
    stamp = _stamp(out, now or datetime.now(UTC))
    summary = atomic_write_bytes(out / f"summary_{stamp}.json",
                                 msgspec.json.format(msgspec.json.encode(result.summary()), indent=2) + b"\n")
    trades = atomic_write_text(out / f"trades_{stamp}.csv", trades_csv(result))
    return ReportPaths(summary=summary, trades=trades)
