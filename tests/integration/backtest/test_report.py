"""The HTML/PNG report: `dolphin backtest --report`, `dolphin report JOURNAL`, and the terminal tables.

Every page is parsed (tables, inlined pictures, the series block) and checked against the
numbers it was drawn from: `pnl_groups` of the same trades, the equity curve, vel_div.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from dolphin.backtest.metrics import pnl_groups
from dolphin.backtest.report_data import backtest_report_data, equity_curve, journal_report_data
from dolphin.backtest.report_html import write_html_report
from dolphin.backtest.runner import run_backtest
from dolphin.backtest.synthetic import SyntheticFactors, synthetic_scan_table
from dolphin.config import load_config
from dolphin.engine.trades import ClosedTrade
from dolphin.scan.definitions import DEFAULT_WINDOWS
from dolphin.scan.record import ScanRecord, iso_from_ns
from dolphin.scan.table import ScanTable
from dolphin.store.arrow_scans import write_scan
from dolphin.store.journal import Commit, Journal, ScanInput, SessionStart, TradeRecord, read_books
from dolphin.store.scan_table import write_scan_table

pytestmark = [pytest.mark.cli, pytest.mark.data_integrity]

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PNG_SIZES = {"equity": (1100, 500), "vel_div": (1100, 420), "daily_pnl": (1100, 340)}


# ---------------------------------------------------------------- reading a page back
class Page(HTMLParser):
    """A report page as data: its tables (rows of cells with their exact values), pictures, series block."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.images: dict[str, bytes] = {}
        self.missing: set[str] = set()
        self.data: dict[str, Any] = {}
        self._table: str | None = None
        self._row: dict[str, Any] | None = None
        self._script = False
        self._text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table and "data-key" in a:
            self._row = {"key": a["data-key"], "values": []}
            self.tables[self._table].append(self._row)
        elif tag == "td" and self._row is not None and "data-value" in a:
            self._row["values"].append(float(a["data-value"] or "nan"))
        elif tag == "img":
            src = a.get("src") or ""
            assert src.startswith("data:image/png;base64,"), "pictures must be inlined (a self-contained page)"
            self.images[(a.get("id") or "").removesuffix("-chart")] = base64.b64decode(src.split(",", 1)[1])
        elif tag == "p" and (a.get("id") or "").endswith("-missing"):
            self.missing.add((a.get("id") or "").removesuffix("-missing"))
        elif tag == "script" and a.get("id") == "report-data":
            self._script = True
        for key in ("src", "href"):
            value = a.get(key) or ""
            assert not value.startswith(("http:", "https:", "//")), f"the page fetches {value}"

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "tr":
            self._row = None
        elif tag == "script" and self._script:
            self._script = False
            self.data = json.loads("".join(self._text))

    def handle_data(self, data: str) -> None:
        if self._script:
            self._text.append(data)


def _group_values(g: Any) -> list[float]:
    return [g.trades, g.win_rate, g.pnl, g.avg_pnl, g.avg_pnl_pct, g.best, g.worst, g.fees]


def check_tables(page: Page, trades: list[ClosedTrade]) -> None:
    """The page's per-pair and per-exit-reason rows are exactly `pnl_groups` of the trades, in order."""
    for table_id, by in (("per-pair", "asset"), ("per-exit-reason", "exit_reason")):
        want = pnl_groups(trades, by)
        got = page.tables[table_id]
        assert [r["key"] for r in got] == [g.key for g in want]
        assert [r["values"] for r in got] == [_group_values(g) for g in want]


def check_pictures(page: Page, directory: Path, expected: set[str]) -> None:
    """Each PNG file decodes at its size, has content, and is the picture inlined in the page."""
    from PIL import Image

    assert set(page.images) == expected
    for name in expected:
        raw = (directory / f"{name}.png").read_bytes()
        assert raw == page.images[name]
        with Image.open(io.BytesIO(raw)) as img:
            assert img.format == "PNG" and img.size == PNG_SIZES[name]
            pixels = np.asarray(img.convert("RGB"))
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, f"{name}.png is blank"


def _dolphin(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOLPHIN_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT), "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "commands", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


# ---------------------------------------------------------------- a backtest
@pytest.fixture(scope="module")
def one_day() -> tuple[ScanTable, Any]:
    table, market = synthetic_scan_table(1, 7)
    result = run_backtest(table, load_config("blue"), acb_source=SyntheticFactors(market), source="synthetic 1 day")
    assert len(result.trades) >= 5
    return table, result


def test_backtest_report_has_the_right_series_tables_and_pictures(one_day: tuple[ScanTable, Any],
                                                                  tmp_path: Path) -> None:
    table, result = one_day
    written = write_html_report(backtest_report_data(result, table), tmp_path / "report")
    page = Page(written.html.read_text())
    check_tables(page, result.trades)
    check_pictures(page, tmp_path / "report", set(PNG_SIZES))
    data, m = page.data, result.metrics
    curve = equity_curve(m.initial_capital, result.trades, result.span_start_ms)
    assert data["equity"]["equity"] == curve.equity and data["equity"]["ts_ms"] == curve.ts_ms
    assert data["equity"]["equity"][-1] == m.final_capital and data["equity"]["max_drawdown"] == m.max_drawdown
    span = (table.ts >= result.span_start_ms) & (table.ts <= result.span_end_ms)
    vd = table.vel_div[span]
    assert data["vel_div"]["scans"] == int(np.isfinite(vd).sum()) and data["vel_div"]["min"] == np.nanmin(vd)
    cfg = load_config("blue")
    assert (data["vel_div"]["threshold"], data["vel_div"]["extreme"]) == (cfg.signal_threshold, cfg.signal_extreme)
    assert data["entries"]["vel_div"] == [t.vel_div_entry for t in result.trades]
    assert data["entries"]["ts_ms"] == [t.entry_ts for t in result.trades]
    ts = table.ts[span][np.isfinite(vd)]
    finite = vd[np.isfinite(vd)]
    assert data["exits"]["vel_div"] == [float(finite[np.searchsorted(ts, t.exit_ts, side="right") - 1])
                                        for t in result.trades]
    assert [(d["date"], d["pnl"]) for d in data["daily_pnl"]] == [(g.key, g.pnl) for g in
                                                                  pnl_groups(result.trades, "day")]
    assert sum(d["trades"] for d in data["daily_pnl"]) == m.trades


def test_backtest_cli_prints_the_tables_and_writes_the_report(tmp_path: Path) -> None:
    """`dolphin backtest --synthetic --days 1 --report DIR`: the tables in the summary, the files, the page."""
    res = _dolphin(tmp_path / "home", "backtest", "--synthetic", "--days", "1", "--report", str(tmp_path / "rep"))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "per pair" in out and "per exit reason" in out and f"report:  {tmp_path / 'rep' / 'report.html'}" in out
    (trades_csv,) = (tmp_path / "home" / "backtest").glob("trades_*.csv")
    with open(trades_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    lines = out.splitlines()
    for column in ("asset", "exit_reason"):
        for key in {r[column] for r in rows}:
            total = math.fsum(float(r["pnl"]) for r in rows if r[column] == key)
            count = sum(1 for r in rows if r[column] == key)
            row = [line for line in lines if line.startswith(key + " ")]
            assert row and row[-1].split()[1:4:2] == [str(count), f"{total:+.2f}"], (key, row)
    page = Page((tmp_path / "rep" / "report.html").read_text())
    per_pair = {r["key"]: r["values"] for r in page.tables["per-pair"]}
    for asset in {r["asset"] for r in rows}:   # the CSV's repr floats reproduce the page's sums exactly
        assert per_pair[asset][2] == math.fsum(float(r["pnl"]) for r in rows if r["asset"] == asset)
    check_pictures(page, tmp_path / "rep", set(PNG_SIZES))


def test_backtest_json_adds_the_groups_and_the_report_file(one_day: tuple[ScanTable, Any], tmp_path: Path) -> None:
    """`--json` keeps its keys and adds the groups and the report's path (a scan table: no market to generate)."""
    scans = write_scan_table(tmp_path / "scans.parquet", one_day[0])
    res = _dolphin(tmp_path / "home", "backtest", "--scans", str(scans), "--json", "--no-write",
                   "--report", str(tmp_path / "rep"))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert {"config", "source", "span", "metrics", "days", "open_position_at_end"} <= set(out)   # stable keys
    assert sum(g["trades"] for g in out["per_pair"]) == out["metrics"]["trades"] > 0
    assert {g["key"]: g["trades"] for g in out["per_exit_reason"]} == out["metrics"]["exit_reasons"]
    assert out["files"] == {"report": str(tmp_path / "rep" / "report.html")}
    page = Page(Path(out["files"]["report"]).read_text())
    assert [(r["key"], r["values"][2]) for r in page.tables["per-pair"]] == [(g["key"], g["pnl"])
                                                                            for g in out["per_pair"]]
    assert page.data["vel_div"]["source"] == str(scans)
    assert not (tmp_path / "home" / "backtest").exists()


# ---------------------------------------------------------------- a trader's journal
T0 = 1_775_347_200_000      # 2026-04-05 00:00 UTC
STEP = 600_000              # a scan every 10 minutes: 300 scans span three days


def _vd(n: int) -> float:
    return round(0.03 * math.sin(n / 9.0) - 0.012, 6)


def _trade(tid: int, asset: str, entry: int, exit_: int, pnl: float, capital_after: float,
           reason: str) -> ClosedTrade:
    return ClosedTrade(trade_id=tid, asset=asset, side="SHORT", entry_bar=entry, entry_ts=T0 + entry * STEP,
                       entry_price=100.0, exit_bar=exit_, exit_ts=T0 + exit_ * STEP, exit_price=99.0,
                       notional=1000.0, leverage=1.0, fraction=0.1, pnl=pnl, pnl_pct=pnl / 1000.0, entry_fee=0.4,
                       exit_fee=0.6, exit_reason=reason, bars_held=exit_ - entry, bucket=3,
                       vel_div_entry=_vd(entry), confidence=0.6, capital_after=capital_after)


def build_journal(path: Path, *, scans: bool = True) -> list[tuple[int, float]]:
    """A session of 300 scans, four trades (one re-journaled), a funding charge; returns the capital changes."""
    j = Journal(path, fsync=False)
    j.append(SessionStart(seq=j.next_seq(), wall_ts=0.0, strategy="blue", config_hash="x", venue="sim", book_id="b",
                          pid=1))
    plan = {30: ("BTCUSDT", 20, 12.5, "FIXED_TP"), 110: ("ETHUSDT", 95, -7.25, "MAX_HOLD"),
            160: ("BTCUSDT", 150, 4.0, "FIXED_TP"), 260: ("SOLUSDT", 240, -3.5, "MANUAL")}
    capital, tid = 25_000.0, 0
    changes = [(T0 + STEP, capital)]
    for n in range(1, 301):
        if scans:
            j.append(ScanInput(seq=j.next_seq(), scan_number=n, ts_ms=T0 + n * STEP, vel_div=_vd(n), v50=None,
                               v750=None, vol_ok=True, prices={"BTCUSDT": 64_000.0}, trade=True))
        if n in plan:
            asset, entry, pnl, reason = plan[n]
            tid += 1
            capital += pnl
            changes.append((T0 + n * STEP, capital))
            trade = _trade(tid, asset, entry, n, pnl, capital, reason)
            j.append(TradeRecord(seq=j.next_seq(), scan_number=n, trade=msgspec.to_builtins(trade)))
            if tid == 1:   # a recovery re-journals a trade: the books count it once
                j.append(TradeRecord(seq=j.next_seq(), scan_number=n, trade=msgspec.to_builtins(trade)))
        if n == 200:       # funding: capital moves with no trade
            capital -= 1.75
            changes.append((T0 + n * STEP, capital))
        j.append(Commit(seq=j.next_seq(), scan_number=n, capital=capital))
    j.close()
    return changes


def test_report_of_a_hand_built_journal(tmp_path: Path) -> None:
    journal = tmp_path / "blue.jsonl"
    changes = build_journal(journal)
    res = _dolphin(tmp_path / "home", "report", str(journal), "--out", str(tmp_path / "rep"), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    trades = read_books(journal).trades
    assert len(trades) == out["trades"] == 4
    assert out["final_capital"] == 25_000.0 + 12.5 - 7.25 + 4.0 - 3.5 - 1.75 and out["vel_div_scans"] == 300
    page = Page(Path(out["report"]).read_text())
    check_tables(page, trades)
    check_pictures(page, tmp_path / "rep", set(PNG_SIZES))
    equity = page.data["equity"]
    assert list(zip(equity["ts_ms"], equity["equity"])) == changes   # the committed capital, funding included
    peak = 25_000.0 + 12.5      # then −7.25, +4.0, −1.75 funding, −3.5: the trough is 8.5 below the peak
    assert equity["max_drawdown"] == pytest.approx(8.5 / peak)
    assert page.data["exits"]["vel_div"] == [_vd(t.exit_bar) for t in trades]
    assert page.data["entries"]["vel_div"] == [_vd(t.entry_bar) for t in trades]
    assert [d["date"] for d in page.data["daily_pnl"]] == ["2026-04-05", "2026-04-06", "2026-04-07"]
    assert [d["pnl"] for d in page.data["daily_pnl"]] == [12.5 - 7.25, 4.0 - 3.5, 0.0]
    assert out["per_pair"] == msgspec.to_builtins(pnl_groups(trades, "asset"))


def test_report_vel_div_from_a_scan_table_and_the_terminal_tables(tmp_path: Path) -> None:
    journal = tmp_path / "blue.jsonl"
    build_journal(journal)
    n = np.arange(1, 301)
    table = ScanTable(ts=T0 + n * STEP, scan_number=n, vel_div=np.full(300, -0.0444), v50_lambda_max_velocity=n * 0.0,
                      v150_lambda_max_velocity=n * 0.0, v300_lambda_max_velocity=n * 0.0,
                      v750_lambda_max_velocity=n * 0.0, instability_50=n * 0.0, instability_150=n * 0.0,
                      assets=("BTCUSDT",), prices=np.full((300, 1), 64_000.0))
    scans = write_scan_table(tmp_path / "scans.parquet", table)
    res = _dolphin(tmp_path / "home", "report", str(journal), "--scans", str(scans), "--out", str(tmp_path / "rep"))
    assert res.returncode == 0, res.stderr
    assert "per pair" in res.stdout and "per exit reason" in res.stdout and "BTCUSDT" in res.stdout
    assert f"report: {tmp_path / 'rep' / 'report.html'}" in res.stdout
    page = Page((tmp_path / "rep" / "report.html").read_text())
    assert page.data["vel_div"]["source"] == str(scans) and page.data["vel_div"]["max"] == -0.0444
    assert page.data["exits"]["vel_div"] == [-0.0444] * 4


def _record(n: int, vd: float) -> ScanRecord:
    stats = {f"w{w}_{k}": v for w in DEFAULT_WINDOWS
             for k, v in (("lambda_max", 10.0), ("velocity", 0.0), ("acceleration", 0.0), ("instability", 0.02))}
    ts = (T0 + n * STEP) * 1_000_000
    return ScanRecord(scan_number=n, timestamp_ns=ts, timestamp=iso_from_ns(ts), **stats, vel_div=vd,
                      regime_signal=0.0, instability_composite=0.02, n_assets=1, assets=("BTCUSDT",),
                      prices=(64_000.0,), loadings={"50": (1.0,)})


def test_report_without_scan_inputs_uses_the_home_archive_or_says_why(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / "blue.jsonl"
    build_journal(journal, scans=False)
    bare = journal_report_data(journal, load_config("blue"))
    assert bare.vel_div is None and "--scans" in bare.notes[0]
    written = write_html_report(bare, tmp_path / "bare")
    page = Page(written.html.read_text())
    assert page.missing == {"vel_div"} and set(page.images) == {"equity", "daily_pnl"}
    assert not (tmp_path / "bare" / "vel_div.png").exists()
    # trades only: the curve is each close's capital (the funding charge shows at the next close)
    assert page.data["equity"]["equity"] == [25_000.0, 25_012.5, 25_005.25, 25_009.25, 25_004.0]
    home = tmp_path / "home"
    for n in range(1, 301):
        write_scan(home, _record(n, -0.01 - n / 10_000))
    monkeypatch.setenv("DOLPHIN_HOME", str(home))
    archived = journal_report_data(journal, load_config("blue"))
    assert archived.vel_div is not None and not archived.notes
    assert len(archived.vel_div) == 260 - 20 + 1    # the span of the trades: the first entry to the last exit
    assert archived.marks().exit_vd == [-0.01 - t.exit_bar / 10_000 for t in archived.trades]


def test_report_errors_are_one_line(tmp_path: Path) -> None:
    missing = _dolphin(tmp_path, "report", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 6 and "trader journal not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    journal = tmp_path / "blue.jsonl"
    build_journal(journal)
    (tmp_path / "afile").write_text("x")
    bad_out = _dolphin(tmp_path, "report", str(journal), "--out", str(tmp_path / "afile"))
    assert bad_out.returncode == 2 and "is a file, not a directory" in bad_out.stderr
    assert len(bad_out.stderr.strip().splitlines()) == 1
