"""The trader obeys the MC-Forewarner (§12): a report on the bus is applied at the next step, journaled, and
replayed by `backtest --journal`; a garbled report is counted and dropped, and the last good one stands."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dolphin.backtest.runner import run_backtest
from dolphin.backtest.session import SessionInputs
from dolphin.bus import schema
from dolphin.bus.codec import default_codec
from dolphin.bus.payloads import McForewarner, iso_utc
from dolphin.config import load_config
from dolphin.enums import McStatus
from dolphin.scan.record import ScanRecord
from dolphin.store.arrow_scans import write_scan
from dolphin.store.journal import Journal, TradeRecord
from dolphin.store.scan_archive import load_arrow_scans
from tests.integration.trader.support import ARCHIVED, Harness
from tests.support import wait_until

pytestmark = [pytest.mark.actor, pytest.mark.degradation]

MC_LABEL = f"{schema.FEATURES}[{schema.MC_FOREWARNER_LATEST}]"


def _report(prob: float, envelope: float, status: McStatus) -> McForewarner:
    return McForewarner(status=status, catastrophic_prob=prob, envelope_score=envelope, source="MONTE_CARLO",
                        timestamp=iso_utc(time.time()), paths=1000)


def test_the_trader_applies_journals_and_replays_mc_reports_and_drops_a_garbled_one(
        harness: Harness, records: list[ScanRecord], tmp_path: Path) -> None:
    scans = iter(records[ARCHIVED:])
    stepped: list[ScanRecord] = []

    def step() -> ScanRecord:
        rec = next(scans)
        harness.step(rec)
        stepped.append(rec)
        return rec

    def applied_mc() -> tuple[float, float] | None:
        """Step one scan; the MC report its journaled input carries (the listener delivers asynchronously)."""
        (inp,) = harness.journaled(step().scan_number)
        return None if inp.mc is None else (float(inp.mc[0]), float(inp.mc[1]))

    step()
    harness.bus.put(schema.FEATURES, schema.MC_FOREWARNER_LATEST, _report(0.25, 0.30, McStatus.RED))
    assert wait_until(applied_mc, 60, what="the RED report in a step's journaled input") == (0.25, 0.30)
    assert applied_mc() is None          # applied once, at one step; it stands until the next report

    before = default_codec.rejections.count(MC_LABEL)
    harness.raw.put(schema.MC_FOREWARNER_LATEST, '{"status": "GREEN", "catastrophic_prob": NaN}')
    wait_until(lambda: default_codec.rejections.count(MC_LABEL) > before, 30, what="the garbled report's rejection")
    assert applied_mc() is None          # dropped: nothing reached the engine
    harness.raw.put(schema.MC_FOREWARNER_LATEST, '{"status": "PURPLE", "catastrophic_prob": 0.01, '
                                                 '"envelope_score": 0.9, "source": "x", "timestamp": "2026-01-01"}')
    wait_until(lambda: default_codec.rejections.count(MC_LABEL) > before + 1, 30,
               what="the unknown status's rejection")
    assert applied_mc() is None

    harness.bus.put(schema.FEATURES, schema.MC_FOREWARNER_LATEST, _report(0.02, 0.90, McStatus.GREEN))
    assert wait_until(applied_mc, 60, what="the GREEN report in a step's journaled input") == (0.02, 0.90)
    for _ in range(5):
        step()
    state = harness.state()
    assert state.errors == 0 and state.last_scan_number == stepped[-1].scan_number

    # `backtest --journal`: the same scans and the journaled inputs (the two reports included) give the same books
    replay_home = tmp_path / "replay"
    for rec in records[:ARCHIVED] + stepped:
        write_scan(replay_home, rec)
    journal = harness.home / "journal" / "blue.jsonl"
    session = SessionInputs.from_journal(journal)
    assert sum(1 for f in session.steps.values() if f.mc is not None) == 2
    replayed = run_backtest(load_arrow_scans(replay_home), load_config("blue"), session=session)
    assert replayed.metrics.final_capital == state.capital
    assert len(replayed.trades) == sum(1 for r in Journal(journal).iter_records() if isinstance(r, TradeRecord))
