"""The trader service's own sessions through parity: a paper session on the simulator is in parity; a trader
restarted after a gap shows the gap (and the trade it lost), never hides it.

The trader runs in-process (its service body on a thread) against the embedded member and a
simulator exchange whose clock is the market's; scans are fed in lockstep (the next one is
published once the trader reported the previous) and archived as the scanner would.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dolphin.backtest.parity import Tolerances
from dolphin.backtest.parity_run import ArchiveCache, parity_report
from dolphin.bus import Bus, EmbeddedMember, schema
from dolphin.bus.client import connect
from dolphin.bus.scan_codec import payload_from_record
from dolphin.config import load_config
from dolphin.enums import ParityCause, ParityStatus, StepCoverage
from dolphin.market.sim import SimConfig, SimExchange
from dolphin.scan.record import ScanRecord
from tests.integration.parity.support import archive, seeded_records
from tests.integration.trader.support import TraderThread
from tests.support import wait_until

pytestmark = [pytest.mark.actor, pytest.mark.slow]

ENTRY = 779           # the blue engine's one entry in these scans (LTCUSDT, exits at 899 on MAX_HOLD)


@pytest.fixture(scope="module")
def records() -> list[ScanRecord]:
    return seeded_records(900)


@pytest.fixture(scope="module")
def member():
    with EmbeddedMember(port=0) as m:
        yield m


def _sim(records: list[ScanRecord], at_scan: int) -> SimConfig:
    """A venue whose (nearly frozen) clock is one second after scan `at_scan` closed."""
    close_ms = records[at_scan - 1].timestamp_ns // 1_000_000 + 5_000
    return SimConfig(port=0, symbols=50, seed=7, start_ms=close_ms + 1_000, speed=0.01)


class Session:
    """One trader run: its environment, the service thread, lockstep feeding through the bus."""

    def __init__(self, home: Path, member: EmbeddedMember, sim: SimExchange, monkeypatch: pytest.MonkeyPatch,
                 *, venue: str, stale_after_s: float) -> None:
        self.home = home
        for var, value in {"DOLPHIN_HOME": str(home), "DOLPHIN_HZ_PORT": str(member.port), "DOLPHIN_HZ_MEMBERS": "",
                           "DOLPHIN_MARKET": "sim", "DOLPHIN_MARKET_REST_URL": sim.rest_url,
                           "DOLPHIN_MARKET_WS_URL": sim.ws_url, "DOLPHIN_TRADER_VENUE": venue,
                           "DOLPHIN_TRADER_STRATEGY": "blue",
                           "DOLPHIN_TRADER_STALE_AFTER_S": str(stale_after_s)}.items():
            monkeypatch.setenv(var, value)
        self.client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
        self.bus = Bus(self.client)
        self.thread = TraderThread(home)

    def __enter__(self) -> Session:
        since = time.time()
        self.thread.start_thread()
        wait_until(lambda: (s := self.bus.get(schema.STATE_BLUE, schema.LATEST)) is not None
                   and float(s.updated_at) >= since, 120, what="the trader to listen")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.thread.stop()
        finally:
            self.client.shutdown()

    def feed(self, records: list[ScanRecord]) -> None:
        for rec in records:
            archive(self.home, [rec])                       # the scanner archives every scan it publishes
            self.bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload_from_record(rec, bridge_ts=time.time()))
            wait_until(lambda n=rec.scan_number: (s := self.bus.get(schema.STATE_BLUE, schema.LATEST)) is not None
                       and s.last_scan_number == n, 120, what=f"the trader to step scan {rec.scan_number}")


def _parity(home: Path):  # noqa: ANN202
    return parity_report(ArchiveCache(home).table(), load_config("blue"), home / "journal" / "blue.jsonl",
                         tol=Tolerances(price_bps=10.0, fee_bps=1.0))


def test_a_paper_session_on_the_simulator_is_in_parity(records, member, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Orders on the simulator (its fills are the books): every scan traded, every backtest entry seen and
    taken, nothing unexplained; the venue's drift from the engine's fill model is measured."""
    home = tmp_path / "home"
    archive(home, records[:699])
    bus_delete(member)
    with SimExchange(_sim(records, 900)) as sim, \
            Session(home, member, sim, monkeypatch, venue="sim", stale_after_s=3600) as session:
        session.feed(records[699:900])
    report = _parity(home)
    assert report.venue == "sim" and report.exact_match, report.diffs
    assert report.scan_coverage == 1.0 and report.untraded_scans == report.unstepped_scans == 0 and report.gaps == []
    assert report.replay_entries >= 1 and report.signal_coverage == 1.0 and report.acted_share == 1.0
    assert report.unexplained == 0 and report.missed == report.extra == 0
    assert report.price_drift_bps_mean is not None, report.diffs     # the venue fills against the fill model
    assert set(report.causes) <= {str(ParityCause.FILL_PRICE), str(ParityCause.FEE), str(ParityCause.TIMING)}


def test_a_restarted_trader_shows_its_gap(records, member, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped after scan 760; scans 761–850 go on to the archive; restarted at 851, the trader fills the gap
    from the archive, but the scans older than its staleness limit (5 minutes) are only fed, not traded —
    and the backtest's LTCUSDT entry at 779 was one of them."""
    home = tmp_path / "home"
    archive(home, records[:704])
    bus_delete(member)
    with SimExchange(_sim(records, 760)) as sim, \
            Session(home, member, sim, monkeypatch, venue="paper", stale_after_s=300) as session:
        session.feed(records[704:760])
    archive(home, records[760:850])                         # the scanner goes on while the trader is down
    with SimExchange(_sim(records, 860)) as sim, \
            Session(home, member, sim, monkeypatch, venue="paper", stale_after_s=300) as session:
        session.feed(records[850:860])
    report = _parity(home)
    assert report.exact_match and report.unexplained == 0 and report.status is ParityStatus.DIVERGENT
    assert (report.first_scan, report.last_scan) == (705, 860)
    gap = report.gaps[0]
    assert gap.kind is StepCoverage.UNTRADED and gap.first_scan == 761 and 30 <= gap.scans <= 50, report.gaps
    assert report.untraded_scans == gap.scans and report.scan_coverage is not None and report.scan_coverage < 1.0
    lost = [d for d in report.diffs if d.entry_scan == ENTRY]
    assert lost and lost[0].cause is ParityCause.COVERAGE_GAP and report.missed >= 1
    assert report.signal_coverage == 0.0 and report.replay_entries == 1


def bus_delete(member: EmbeddedMember) -> None:
    """No trader state from an earlier test on the shared member (the start waits for a fresh one)."""
    client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
    try:
        Bus(client).delete(schema.STATE_BLUE, schema.LATEST)
    finally:
        client.shutdown()
