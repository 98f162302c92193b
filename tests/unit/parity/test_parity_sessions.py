"""The parity comparison on hand-built trading sessions: a clean one, and one injected divergence per cause class.

Each session is a real trader core stepping the synthetic day (its journal is the books);
the report replays it three ways over the same scans (`dolphin.backtest.parity_run`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.backtest.parity import Tolerances
from dolphin.backtest.parity_run import parity_report
from dolphin.enums import KillLevel, ParityCause, ParityDiffKind, ParityStage, ParityStatus, StepCoverage
from tests.unit.parity.support import STOP, VenueExecutor, edit_journal, session
from tests.unit.trader.support import NOW

pytestmark = [pytest.mark.signal_fill]

TOL = Tolerances(price_bps=10.0, fee_bps=1.0)


def _report(market, blue, journal: Path, tol: Tolerances = TOL, **kw):  # noqa: ANN202
    return parity_report(market, blue, journal, tol=tol, now=NOW, **kw)


def _causes(report) -> list[tuple[str, str, str, int]]:  # noqa: ANN001
    return [(str(d.stage), str(d.cause), str(d.kind), d.at_scan) for d in report.diffs]


def test_a_clean_paper_session_is_in_parity(market, blue, tmp_path: Path) -> None:
    report = _report(market, blue, session(market, blue, tmp_path))
    assert report.status is ParityStatus.PARITY and report.exact_match
    assert report.first_scan == 901 and report.last_scan == STOP and report.scans == STOP - 900
    assert report.scan_coverage == 1.0 and report.signal_coverage == 1.0 and report.acted_share == 1.0
    # two closed trades and VET's entry at 3370, still open at the session's last scan (journal and replay agree)
    assert report.replay_entries == report.matched == 3 and report.live_trades == 2
    assert report.missed == report.extra == 0 and report.diffs == [] and report.gaps == [] and report.causes == {}
    assert report.pnl_live == report.pnl_backtest and report.pnl_diff == 0.0
    assert report.price_drift_bps_mean is None          # paper fills are the model's: nothing to drift


def test_a_restart_gap_shows_with_its_cascade(market, blue, tmp_path: Path) -> None:
    """Scans 1585–1599 never stepped (a restart the archive could not fill) and 3250–3300 stepped stale
    (a restart's catch-up): the gaps show; HBAR's take-profit at 1590 fell in the gap and was taken at
    1600 (a changed trade), SNX's entry at 3267 was a stale scan (a missed one) — each a coverage gap,
    nothing unexplained. (The timing cascade after a gap is worked by hand in test_parity_compare.)"""
    journal = session(market, blue, tmp_path, skip=range(1585, 1600), stale=range(3250, 3301))
    report = _report(market, blue, journal)
    assert report.status is ParityStatus.DIVERGENT and report.exact_match and report.unexplained == 0
    assert [(str(g.kind), g.first_scan, g.last_scan, g.scans) for g in report.gaps] == [
        ("unstepped", 1585, 1599, 15), ("untraded", 3250, 3300, 51)]
    assert report.unstepped_scans == 15 and report.untraded_scans == 51
    assert report.scan_coverage == pytest.approx((2500 - 66) / 2500)
    assert _causes(report) == [
        ("inputs", "coverage_gap", "changed", 1590),      # HBAR's FIXED_TP exit fell in the gap: taken at 1600
        ("inputs", "coverage_gap", "missed", 3267),       # SNX entered at a stale scan in the backtest only
    ]
    assert report.missed == 1 and report.extra == 0 and report.matched == 2
    assert report.replay_entries == 3 and report.seen_entries == 2 and report.signal_coverage == pytest.approx(2 / 3)
    assert report.pnl_diff == pytest.approx(report.pnl_live - report.pnl_backtest) and report.pnl_diff != 0.0
    assert report.pnl_execution == 0.0 and report.pnl_inputs == report.pnl_diff
    first = report.diffs[0]
    assert (first.asset, first.live_exit_scan, first.replay_exit_scan) == ("HBARUSDT", 1600, 1590)


def test_kill_switch_levels_are_controls_not_gaps(market, blue, tmp_path: Path) -> None:
    """A pause over the XRP entry is a control; a halt makes halted scans, which do not count against coverage."""
    kill = {2000: KillLevel.HALT, 2011: KillLevel.CLEAR, 3260: KillLevel.PAUSE, 3280: KillLevel.CLEAR}
    report = _report(market, blue, session(market, blue, tmp_path, kill=kill))
    assert report.status is ParityStatus.DIVERGENT and report.unexplained == 0 and report.exact_match
    assert [(str(g.kind), g.first_scan, g.last_scan) for g in report.gaps] == [("halted", 2000, 2010)]
    assert report.halted_scans == 11 and report.scan_coverage == 1.0
    assert _causes(report) == [("inputs", "control", "missed", 3267)]
    assert "kill switch was at pause" in report.diffs[0].detail


def test_fill_price_drift_on_a_venue_is_measured_and_classified(market, blue, tmp_path: Path) -> None:
    venue = VenueExecutor(price_bps=30.0, fee_rate=0.0004)
    report = _report(market, blue, session(market, blue, tmp_path, executor=venue),
                     tol=Tolerances(price_bps=10.0, fee_bps=1e4))
    assert report.venue == "sim" and report.exact_match and report.unexplained == 0
    assert report.status is ParityStatus.DIVERGENT
    price = [d for d in report.diffs if d.cause is ParityCause.FILL_PRICE]
    assert price and all(d.stage is ParityStage.EXECUTION and d.kind is ParityDiffKind.CHANGED for d in price)
    assert report.price_drift_bps_max is not None and report.price_drift_bps_max > 10.0
    assert report.pnl_execution < 0                       # adverse fills cost money against the model
    assert all(d.cause in (ParityCause.FILL_PRICE, ParityCause.TIMING) for d in report.diffs)
    assert report.scan_coverage == 1.0 and report.signal_coverage == 1.0


def test_fee_drift_on_a_venue_is_measured_and_classified(market, blue, tmp_path: Path) -> None:
    venue = VenueExecutor(price_bps=0.0, fee_rate=0.0012)   # 12 bps a leg: far above the engine's fee model
    report = _report(market, blue, session(market, blue, tmp_path, executor=venue),
                     tol=Tolerances(price_bps=1e4, fee_bps=1.0))
    assert report.exact_match and report.unexplained == 0 and report.status is ParityStatus.DIVERGENT
    fees = [d for d in report.diffs if d.cause is ParityCause.FEE]
    assert fees and all(d.stage is ParityStage.EXECUTION for d in fees)
    assert report.fee_drift_bps_mean is not None and report.fee_drift_bps_mean > 1.0
    assert not [d for d in report.diffs if d.cause is ParityCause.FILL_PRICE]   # inside the price tolerance


def test_books_that_differ_from_their_exact_replay_are_unexplained(market, blue, tmp_path: Path) -> None:
    """A journal whose trade does not follow from its inputs (a fill price the replay does not reproduce)."""
    journal = session(market, blue, tmp_path)

    def tamper(record: dict) -> dict:
        if record["type"] == "trade" and record["trade"]["trade_id"] == 2:
            record["trade"]["exit_price"] *= 1.001
        return record

    edit_journal(journal, tamper)
    report = _report(market, blue, journal)
    assert report.status is ParityStatus.UNEXPLAINED and not report.exact_match and report.unexplained == 1
    (diff,) = [d for d in report.diffs if d.stage is ParityStage.EXACT]
    assert diff.cause is ParityCause.UNEXPLAINED and diff.trade_id == 2 and "exit_price" in diff.detail


def test_since_counts_only_what_happened_from_that_day(market, blue, tmp_path: Path) -> None:
    journal = session(market, blue, tmp_path, skip=range(1500, 1536))
    after_gap = int(market.ts[2000])
    report = _report(market, blue, journal, since_ms=after_gap)
    assert report.since_ts == after_gap and report.gaps == [] and report.diffs == []
    assert report.scan_coverage == 1.0 and report.status is ParityStatus.PARITY


def test_no_committed_step_is_no_session(market, blue, tmp_path: Path) -> None:
    report = _report(market, blue, tmp_path / "journal" / "blue.jsonl")
    assert report.status is ParityStatus.NO_SESSION and "no trader journal" in (report.error or "")
    assert StepCoverage.TRADED == "traded"
