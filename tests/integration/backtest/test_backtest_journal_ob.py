"""`dolphin backtest --journal J --ob H`: the journal's OB replays bit for bit; the history fills and is checked.

A real `TraderCore` steps a synthetic span through the trader's own OB read path
(`ObFeed.at_or_fallback`, the feed filled by hand so the test decides, step by step, which
OB bar the trader had), and the OBF history is written by the daemon's writer. The test
therefore knows every step's verdict: the history agrees, differs (and why), or does not
cover the step.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dolphin.backtest import journal_ob
from dolphin.backtest.journal_ob import DiffCause, cross_check, with_history
from dolphin.backtest.ob_replay import history_provider, replay_span
from dolphin.backtest.runner import run_backtest
from dolphin.backtest.session import SessionInputs
from dolphin.backtest.synthetic import synthetic_scan_table
from dolphin.bus import ob_codec
from dolphin.bus.ob_feed import MAX_AGE_MS, ObFeed
from dolphin.config import load_config
from dolphin.enums import ObRegime
from dolphin.market.ob_features import AssetFeatures, MacroFeatures, Snapshot
from dolphin.store.ob_history import FEATURES, MACRO, ObHistoryWriter
from dolphin.store.scan_table import ScanTable, write_scan_table
from tests.support import dolphin
from tests.unit.trader.support import NOW, WARM, bars_of, make_core, run

pytestmark = [pytest.mark.signal_fill, pytest.mark.cli, pytest.mark.timeout(900)]

BAR = 5_000
LIVE = 800                                   # live steps after the warm-up: the span holds a trade (HBARUSDT)
COVERED = ("BTCUSDT", "ETHUSDT", "HBARUSDT")  # the assets OBF has bars of
NOT_YET = 3                                  # the first live steps: the trader's feed has no bar yet
HISTORY_LOST = 40                            # the history misses OBF's last bars (a part lost): 40 steps' closes
SNAP = Snapshot(best_bid=99.9, best_ask=100.1, mid=100.0, spread_bps=20.0, bid_usd=1e5, ask_usd=1e5,
                n_bid_levels=5, n_ask_levels=5)


def feats(k: int, j: int) -> AssetFeatures:
    """Features of OB bar ``k`` of asset ``j``: every bar's values are its own (a stale bar is recognisable)."""
    x = (k % 97) / 97
    return AssetFeatures(snapshot=SNAP, depth_quality=0.5 + x + j / 10, fill_probability=0.2 + x / 2,
                         imbalance_ma5=x - 0.5, imbalance_persistence=x, withdrawal_velocity=-x / 3, cascading=False)


def macro(k: int) -> MacroFeatures:
    return MacroFeatures(k % 3, (ObRegime.CALM, ObRegime.NEUTRAL, ObRegime.STRESS)[k % 3], (k % 89) / 200 - 0.2,
                         len(COVERED))


def early(i: int) -> bool:
    """Live step ``i`` reaches the trader before OBF's bar for its close: it reads the bar before."""
    return i % 7 == 3


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return dolphin("backtest", *args, env={**os.environ, "DOLPHIN_HOME": str(home)}, timeout=600)


class Session:
    """A paper session over ``LIVE`` steps of a synthetic day, and OBF's history of it."""

    def __init__(self, root: Path, table: ScanTable, *, with_ob: bool) -> None:
        self.table, self.root = table, root
        self.scans, self.journal, self.home = root / "scans.parquet", root / "j.jsonl", root / "home"
        write_scan_table(self.scans, table)
        self.closes = [int(t) + BAR for t in table.ts[WARM:WARM + LIVE]]
        self.history_end = self.closes[-HISTORY_LOST - 1]
        writer = ObHistoryWriter(self.home / "ob_history")
        writer.recover()
        for k, close in enumerate(self.closes[:-HISTORY_LOST]):   # OBF's bars close on the scan bars' closes
            writer.add_rows(FEATURES, ob_codec.feature_rows(close, [(s, feats(k, j)) for j, s in enumerate(COVERED)]))
            writer.add_rows(MACRO, ob_codec.macro_rows(close, macro(k)))
        writer.flush()
        feed = ObFeed()
        core = make_core(load_config("blue"), table, self.journal,
                         ob_view=(lambda close: feed.at_or_fallback(close, lambda: None)) if with_ob else None)

        def publish(k: int) -> None:               # OBF's bar k on the bus (what the trader's listeners note)
            close = self.closes[k]
            for j, s in enumerate(COVERED):
                feed.note(s, ob_codec.features_payload(feats(k, j), bar_ms=close, regime_signal=None, timestamp=NOW))
            feed.note_macro(ob_codec.macro_payload(macro(k), bar_ms=close, pushed_at=NOW))

        async def go() -> None:
            await core.start()
            core.warm(bars_of(table, 0, WARM, published=None))
            published = -1
            for i, bar in enumerate(bars_of(table, WARM, WARM + LIVE)):
                upto = -1 if i < NOT_YET else i - 1 if early(i) else i
                while published < upto:
                    published += 1
                    publish(published)
                await core.process(bar)

        run(go())
        core.journal.close()
        self.trades, self.capital = core.trades, core.engine.capital

    def expected_verdicts(self) -> tuple[int, int, int, dict[str, int]]:
        """(agree, differ, uncovered, causes) the schedule above implies."""
        agree = differ = uncovered = 0
        causes: dict[str, int] = {}

        def add(cause: DiffCause) -> None:
            nonlocal differ
            differ += 1
            causes[str(cause)] = causes.get(str(cause), 0) + len(COVERED) + 1   # each asset and the macro

        for i, close in enumerate(self.closes):
            if close - self.history_end > MAX_AGE_MS:
                uncovered += 1
            elif i < NOT_YET:
                add(DiffCause.NO_LIVE_BAR)
            elif close > self.history_end and not (early(i) and self.closes[i - 1] == self.history_end):
                add(DiffCause.OTHER)            # the trader's bar is not in the history; its last one is older
            elif early(i):
                add(DiffCause.EARLY_STEP)
            else:
                agree += 1
        return agree, differ, uncovered, dict(sorted(causes.items()))


@pytest.fixture(scope="module")
def table() -> ScanTable:
    return synthetic_scan_table(1, 7)[0]


@pytest.fixture(scope="module")
def session(table: ScanTable, tmp_path_factory: pytest.TempPathFactory) -> Session:
    return Session(tmp_path_factory.mktemp("journal_ob"), table, with_ob=True)


def test_the_journal_replays_bit_for_bit_and_the_history_is_cross_checked(session: Session, runtime_root: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    agree, differ, uncovered, causes = session.expected_verdicts()
    assert agree > 600 and differ > 100 and uncovered > 20      # the schedule exercises every verdict
    assert len(session.trades) >= 1
    res = _cli("--scans", str(session.scans), "--journal", str(session.journal), "--ob", str(session.home), "--json",
               "--no-write", home=runtime_root)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["metrics"]["trades"] == len(session.trades)
    assert out["metrics"]["final_capital"] == session.capital      # the live books, exactly
    check = out["ob_check"]
    assert (check["steps"], check["agree"], check["differ"], check["uncovered"], check["filled"]) == (
        LIVE, agree, differ, uncovered, 0)
    assert check["causes"] == causes
    assert check["sources"] == {"bus": LIVE - NOT_YET, "none": NOT_YET}
    first = check["differences"][0]                                 # the first step: the trader had nothing yet
    assert first["scan_number"] == int(session.table.scan_number[WARM]) and first["cause"] == "no_live_bar"
    assert first["asset"] == "BTCUSDT" and first["field"] == "imbalance_ma5" and first["journal"] == 0.0
    assert first["history"] == feats(0, 0).imbalance_ma5 and first["history_bar_ms"] == session.closes[0]
    shown = [d["cause"] for d in check["differences"]]                # the first three steps of each cause
    assert sorted(shown) == sorted(3 * ["no_live_bar", "trader_stepped_early", "other"])
    assert [d["scan_number"] for d in check["differences"]] == sorted(d["scan_number"] for d in check["differences"])
    # an early step names the bar the trader had and the one OBF wrote for that close
    data = SessionInputs.from_journal(session.journal)
    history = history_provider(session.home, replay_span([(session.table.ts, session.table.scan_number)], 0,
                                                         WARM + LIVE), list(session.table.assets))
    full = cross_check(data.ob_between(data.first_scan, data.last_scan), history, session.table.assets, keep=10_000)
    monkeypatch.setattr(journal_ob, "CHUNK", 97)                     # chunked the same, whatever the chunk
    assert cross_check(data.ob_between(data.first_scan, data.last_scan), history, session.table.assets,
                       keep=10_000) == full
    assert (full.agree, full.differ, full.uncovered) == (agree, differ, uncovered)
    early_one = next(d for d in full.differences if d.cause is DiffCause.EARLY_STEP)
    step = int(np.flatnonzero(session.table.scan_number == early_one.scan_number)[0]) - WARM
    assert early(step)
    assert (early_one.journal_bar_ms, early_one.history_bar_ms) == (session.closes[step - 1], session.closes[step])
    # the table an operator reads
    text = dolphin("backtest", "--scans", str(session.scans), "--journal", str(session.journal), "--ob",
                   str(session.home), "--no-write", env={**os.environ, "DOLPHIN_HOME": str(runtime_root),
                                                         "COLUMNS": "200"}, timeout=600)
    assert text.returncode == 0, text.stderr
    assert "OB: journal vs recorded history" in text.stdout and "stepped before OBF's bar" in text.stdout


def test_the_history_fills_the_steps_a_journal_carries_no_ob_for(table: ScanTable, tmp_path: Path,
                                                                  runtime_root: Path) -> None:
    old = Session(tmp_path, table, with_ob=False)       # a trader without OB: its records carry none
    data = SessionInputs.from_journal(old.journal)
    assert all(r.values is None for r in data.ob_records) and len(data.ob_records) == LIVE
    assets = list(table.assets)
    history = history_provider(old.home, replay_span([(table.ts, table.scan_number)], 0, WARM + LIVE), assets)
    provider = with_history(data, history, assets)
    live_ts = table.ts[WARM:WARM + LIVE].astype(np.int64)
    got, want = provider.block(live_ts, assets), history.block(live_ts, assets)
    assert np.array_equal(got.asset, want.asset) and np.array_equal(got.macro, want.macro)
    warm_up = provider.block(table.ts[:WARM].astype(np.int64), assets)   # rows no step covers: as without --ob
    plain = run_backtest(table, load_config("blue"), session=data)
    assert np.all(warm_up.asset == np.asarray([0.0, 0.0, 0.0, 0.75, 0.5])) and np.all(warm_up.macro == 0.0)
    res = _cli("--scans", str(old.scans), "--journal", str(old.journal), "--ob", str(old.home), "--json",
               "--no-write", home=runtime_root)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ob_check"]["filled"] == LIVE and out["ob_check"]["steps"] == 0
    assert out["ob_check"]["sources"] == {"unrecorded": LIVE}
    replayed = run_backtest(table, load_config("blue"), session=data, ob_provider=provider)
    assert out["metrics"]["final_capital"] == replayed.metrics.final_capital
    assert plain.trades == old.trades                     # without --ob the replay is the session's, as before


@pytest.mark.degradation
def test_journal_and_ob_errors_are_one_line(session: Session, tmp_path: Path, runtime_root: Path) -> None:
    for args, code, message in [
        (("--journal", str(session.journal), "--ob", "/nonexistent/ob"), 6, "/nonexistent/ob: OB history not found"),
        (("--journal", "/nonexistent/j.jsonl", "--ob", str(session.home)), 6, "trader journal not found"),
        (("--journal", str(session.journal), "--ob", str(tmp_path)), 6, "no OB feature history"),
    ]:
        res = _cli("--scans", str(session.scans), *args, home=runtime_root)
        assert res.returncode == code, (res.stdout, res.stderr)
        assert message in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
