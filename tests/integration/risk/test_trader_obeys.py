"""The risk layer drives a running trader, and its journal replays it bit for bit.

* A scripted panic on the simulator: DVOL spikes (the ExF daemon reads it from the
  simulator's Deribit endpoint), Cat4 drops, the watchdog's posture goes down within its
  2 bars of hysteresis, the trader stops entering, and Rm recovers no faster than 5 %/min.
* A boost change mid-day (the ACB daemon over an ExF reading) sizes the trader's next entry
  exactly as the engine's `update_acb_boost` does in the replay; killing the bus member
  drives Cat1 to 0 and the open position is force-exited under HIBERNATE; bad values on
  the bus (a NaN boost, an unknown posture) are counted and logged once, the last good
  value stands and nothing stops.

The trader runs in-process (`TraderThread`), the daemons as threads, the bus member as a
real process in the second test so that it can be killed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest

from dolphin.backtest.runner import run_backtest
from dolphin.backtest.session import SessionInputs
from dolphin.bus import Bus, ExfLatest, schema
from dolphin.bus.client import connect
from dolphin.bus.codec import default_codec
from dolphin.bus.scan_codec import payload_from_record
from dolphin.config.loader import load_config
from dolphin.engine.trades import ClosedTrade
from dolphin.market.sim import SimConfig, SimExchange
from dolphin.scan.record import ScanRecord
from dolphin.store.arrow_scans import write_scan
from dolphin.store.journal import Journal, ScanInput, TradeRecord
from dolphin.store.scan_archive import load_arrow_scans
from tests.integration.bus.support import MemberProcess
from tests.integration.risk.support import AcbThread, Collector, ExfThread, WatchdogThread, risk_env
from tests.integration.trader import support as trader_support
from tests.integration.trader.support import TraderThread
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.actor, pytest.mark.degradation, pytest.mark.slow]

LAST = 900            # seed-7 scans 1..900 (synthetic stream v2); the champion enters LTCUSDT at scan 779
LIVE_FROM = 770       # scans before this are archived history the trader warms on
ENTRY = 779


@pytest.fixture(scope="module")
def records() -> list[ScanRecord]:
    return trader_support.synthetic_records(LAST, seed=7)


@pytest.fixture(scope="module")
def archive(records: list[ScanRecord], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every scan as Arrow files (the replay's market); the homes copy the part before LIVE_FROM."""
    root = tmp_path_factory.mktemp("archive")
    for rec in records:
        write_scan(root, rec)
    return root


def _home(tmp_path: Path, archive: Path, records: list[ScanRecord]) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    for rec in records[:LIVE_FROM - 1]:
        write_scan(home, rec)
    return home


class Session:
    """A trader with its own home on a member, fed scans in lockstep by the test."""

    def __init__(self, home: Path, port: int, sim: SimExchange, monkeypatch: pytest.MonkeyPatch,
                 **env: str) -> None:
        self.home = home
        for var, value in {**risk_env(home, port, sim), "DOLPHIN_TRADER_VENUE": "paper",
                           "DOLPHIN_TRADER_STALE_AFTER_S": "3600", **env}.items():
            monkeypatch.setenv(var, value)
        self.client = connect(cluster_connect_timeout=30.0, cluster_members=[f"127.0.0.1:{port}"],
                              retry_max_backoff=0.5)
        self.bus = Bus(self.client)
        self.bus.delete(schema.STATE_BLUE, schema.LATEST)
        self.threads: list[Any] = []

    def start(self, *threads: Any) -> None:
        for t in threads:
            t.start_thread()
            self.threads.append(t)

    def start_trader(self) -> TraderThread:
        since = time.time()
        trader = TraderThread(self.home)
        self.start(trader)
        wait_until(lambda: trader.error is not None or ((s := self.state()) is not None
                                                        and float(s.updated_at) >= since), 120,
                   what="the trader to listen")
        assert trader.error is None, f"the trader failed to start: {trader.error!r}"
        return trader

    def state(self) -> Any:
        return self.bus.get(schema.STATE_BLUE, schema.LATEST)

    def step(self, rec: ScanRecord) -> Any:
        self.bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload_from_record(rec, bridge_ts=time.time()))
        return wait_until(lambda: (s := self.state()) is not None and s.last_scan_number == rec.scan_number and s,
                          60, what=f"the trader to step scan {rec.scan_number}")

    def journal(self) -> list[Any]:
        return list(Journal(self.home / "journal" / "blue.jsonl").iter_records())

    def close(self) -> None:
        for t in reversed(self.threads):
            if t.alive:
                t.stop()
        self.client.shutdown()


def _replay(archive: Path, journal: Path, session: SessionInputs | None = None) -> Any:
    return run_backtest(load_arrow_scans(archive), load_config("blue"),
                        session=session if session is not None else SessionInputs.from_journal(journal))


def _live_trades(records: list[Any]) -> list[ClosedTrade]:
    return [msgspec.convert(r.trade, ClosedTrade) for r in records if isinstance(r, TradeRecord)]


def test_a_scripted_panic_takes_the_posture_down_and_stops_entries(records, archive, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from dolphin.bus import EmbeddedMember

    start_ms = records[-1].timestamp_ns // 1_000_000 + 60_000
    # speed 12: a watchdog bar every 0.42 s of wall time, and the fed scans stay within the trader's hour
    with EmbeddedMember(port=0) as member, SimExchange(SimConfig(port=0, symbols=50, seed=7, start_ms=start_ms,
                                                                 speed=12)) as sim:
        s = Session(_home(tmp_path, archive, records), member.port, sim, monkeypatch)
        postures = Collector(s.client, schema.SAFETY, schema.LATEST)
        try:
            s.start(ExfThread(s.home), WatchdogThread(s.home))
            s.start_trader()
            calm = postures.wait_for(lambda x: x.posture == "APEX" and x.inputs.get("dvol") is not None, 90,
                                     "an APEX posture with DVOL read")
            for rec in records[LIVE_FROM - 1:LIVE_FROM + 3]:
                s.step(rec)
            assert {r.posture for r in s.journal() if isinstance(r, ScanInput)} == {"APEX"}
            with urllib.request.urlopen(urllib.request.Request(
                    sim.rest_url + "/sim/v1/shocks?dvol=45&duration=10m", method="POST")) as resp:
                json.load(resp)
            down = postures.wait_for(lambda x: x.posture == "HIBERNATE", 90, "the posture to go down")
            for rec in records[LIVE_FROM + 3:ENTRY + 5]:      # the span where the champion enters at APEX
                s.step(rec)
            time_after = time.time()
            postures.wait_for(lambda x: (x.timestamp or 0) > time_after + 8, 60, "some recovery time")
        finally:
            s.close()
    states = sorted({x.seq: x for x in postures.items if x.seq is not None}.values(), key=lambda x: x.seq)
    hit = next(x for x in states if x.sensors["cat4_environmental"] < 0.8)
    assert hit.sensors["cat4_environmental"] == pytest.approx(0.3) and hit.inputs["dvol"] > calm.inputs["dvol"] + 30
    assert "Cat4 environmental 0.30" in (hit.reason or "")
    assert down.seq is not None and hit.seq is not None and down.seq <= hit.seq + 1, \
        "more than 2 bars of hysteresis between the drop and the posture change"
    journaled = [r for r in s.journal() if isinstance(r, ScanInput)]
    entries = [r for r in s.journal() if type(r).__name__ == "FillRecord" and getattr(r, "kind", "") == "entry"]
    assert not entries and {r.posture for r in journaled if r.scan_number >= ENTRY} == {"HIBERNATE"}
    apex = _replay(archive, s.home / "journal" / "blue.jsonl", dataclasses.replace(
        SessionInputs.from_journal(s.home / "journal" / "blue.jsonl"),
        steps={n: dataclasses.replace(f, posture="APEX") for n, f in
               SessionInputs.from_journal(s.home / "journal" / "blue.jsonl").steps.items()}))
    assert [t.entry_bar for t in apex.trades] or apex.open_position is not None, \
        "the same span at APEX would have entered"
    assert _replay(archive, s.home / "journal" / "blue.jsonl").trades == []
    after = [x for x in states if x.seq > down.seq]
    rising = [(a, b) for a, b in zip(after, after[1:], strict=False) if b.rm > a.rm]
    assert rising, "Rm never recovered after the spike"
    for a, b in zip(states, states[1:], strict=False):
        assert a.market_ms is not None and b.market_ms is not None
        assert b.rm - a.rm <= 0.05 * (b.market_ms - a.market_ms) / 60_000 + 1e-9, (a, b)


def test_boost_change_sizes_the_next_entry_and_a_dead_bus_hibernates_the_position(
        records, archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="dolphin.bus")
    port = free_port()
    member = MemberProcess(port, tmp_path, "--snapshot-interval", "0.2", data_dir=tmp_path / "hz").start()
    start_ms = records[-1].timestamp_ns // 1_000_000 + 60_000
    journal = tmp_path / "home" / "journal" / "blue.jsonl"
    try:
        with SimExchange(SimConfig(port=0, symbols=50, seed=7, start_ms=start_ms, speed=4)) as sim:
            s = Session(_home(tmp_path, archive, records), port, sim, monkeypatch)
            boosts = Collector(s.client, schema.FEATURES, schema.ACB_BOOST)
            raw = s.client.get_map(schema.FEATURES).blocking()
            safety_raw = s.client.get_map(schema.SAFETY).blocking()
            try:
                # a stand-in ExF: neutral factors first (ACB boost 1.0)
                s.bus.put(schema.FEATURES, schema.EXF_LATEST, ExfLatest(pushed_at=time.time(), funding_btc=0.0001,
                                                                          dvol_btc=50.0, fng=60.0, taker=1.05))
                s.start(AcbThread(s.home), WatchdogThread(s.home))
                boosts.wait_for(lambda x: x.boost == 1.0, 60, "the neutral ACB verdict")
                s.start_trader()
                for rec in records[LIVE_FROM - 1:ENTRY - 3]:
                    s.step(rec)
                # mid-day: two bearish factors → signals 2 → boost 1.549 (§10.2); funding and taker, not DVOL:
                # a DVOL jump of 35 points is also the watchdog's spike (Cat4), which would hibernate the trader
                s.bus.put(schema.FEATURES, schema.EXF_LATEST, ExfLatest(pushed_at=time.time(), funding_btc=-0.0002,
                                                                          dvol_btc=50.0, fng=60.0, taker=0.7))
                raised = boosts.wait_for(lambda x: x.boost > 1.5, 60, "the raised ACB verdict")
                assert raised.signals == 2.0 and raised.trigger == "exf"
                n = len(boosts.items)
                wait_until(lambda: len(boosts.items) >= n + 2, 30, what="the verdict rewritten (the trader hears it)")
                for rec in records[ENTRY - 3:ENTRY + 3]:
                    s.step(rec)
                held = s.state().open_position
                assert held is not None and held.entry_scan == ENTRY

                # kill the bus member: Cat1 → 0 → HIBERNATE at once (kept on disk while the bus is away)
                member.kill9()
                safety_file = s.home / "safety.json"
                wait_until(lambda: safety_file.exists() and json.loads(safety_file.read_text())["posture"] == "HIBERNATE",
                           60, what="the watchdog to hibernate while the bus is down")
                dead = json.loads(safety_file.read_text())
                assert dead["sensors"]["cat1_invariant"] == 0.0 and "no bus member reachable" in dead["reason"]
                member.start()
                wait_until(lambda: (p := s.bus.get(schema.SAFETY, schema.LATEST)) is not None
                           and p.posture == "HIBERNATE", 60, what="HIBERNATE on the bus again")
                exited = None
                for rec in records[ENTRY + 3:ENTRY + 40]:
                    st = s.step(rec)
                    if st.open_position is None:
                        exited = rec.scan_number
                        break
                assert exited is not None, "the position was not force-exited"

                # bad values on the bus: counted, logged once, the last good ones stand, nothing stops
                before_acb = default_codec.rejections.count(label=f"{schema.FEATURES}[{schema.ACB_BOOST}]")
                before_safety = default_codec.rejections.count(label=f"{schema.SAFETY}[{schema.LATEST}]")
                for _ in range(3):
                    raw.put(schema.ACB_BOOST, f'{{"boost": NaN, "beta": 0.2, "_pushed_at": {time.time()}}}')
                    safety_raw.put(schema.LATEST, '{"posture": "PANIC", "Rm": 0.9}')
                wait_until(lambda: default_codec.rejections.count(
                    label=f"{schema.FEATURES}[{schema.ACB_BOOST}]") >= before_acb + 3
                    and default_codec.rejections.count(label=f"{schema.SAFETY}[{schema.LATEST}]") >= before_safety + 3,
                    30, what="the bad values to be rejected")
                last = records[exited:exited + 3]
                for rec in last:
                    s.step(rec)
                assert all(t.alive for t in s.threads)
            finally:
                s.close()
    finally:
        member.stop_quietly()
    journaled = [r for r in Journal(journal).iter_records() if isinstance(r, ScanInput)]
    applied = [(r.scan_number, tuple(r.acb)) for r in journaled if r.acb is not None]
    assert any(b[0] > 1.5 and n < ENTRY for n, b in applied), applied        # the raise was applied before the entry
    assert all(r.posture == "HIBERNATE" for r in journaled if r.scan_number >= exited)
    trades = _live_trades(list(Journal(journal).iter_records()))
    assert len(trades) == 1 and trades[0].exit_reason == "HIBERNATE_HALT" and trades[0].entry_bar == ENTRY
    replay = _replay(archive, journal)
    assert replay.trades == trades                                              # bit for bit
    inputs = SessionInputs.from_journal(journal)
    without = _replay(archive, journal, dataclasses.replace(
        inputs, steps={n: dataclasses.replace(f, acb=None) for n, f in inputs.steps.items()}))
    assert without.trades and without.trades[0].entry_bar == ENTRY
    assert trades[0].notional > without.trades[0].notional * 1.3              # the boost sized it
    rejected = [r.getMessage() for r in caplog.records if "rejected DOLPHIN_SAFETY[latest]" in r.getMessage()]
    assert len(rejected) == 1, rejected
