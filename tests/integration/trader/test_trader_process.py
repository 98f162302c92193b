"""The trader daemon as a real process: bus in, journal and venue orders out, kill -9 mid-position.

Scans are fed by the test in lockstep (the next scan is published once the trader has
reported the previous one), so a run that is killed and restarted sees exactly the
same scans as an uninterrupted one. Orders go to a real simulator exchange (`--venue
sim`) through the Binance adapter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from dolphin.bus import Bus, EmbeddedMember, schema
from dolphin.bus.client import connect
from dolphin.bus.scan_codec import payload_from_record
from dolphin.market.sim import SimConfig, SimExchange
from dolphin.scan.record import ScanRecord
from dolphin.store.arrow_scans import write_scan
from tests.integration.trader import support as trader_support
from tests.support import PROJECT_ROOT, wait_until

pytestmark = [pytest.mark.actor, pytest.mark.degradation, pytest.mark.slow]

WARM_UNTIL = 620      # scans 1..619 are archived history; 620.. are fed live
LAST = 1000           # the synthetic day 0 enters at 02:07:55 UTC in this span (THETAUSDT)


@pytest.fixture(scope="module")
def records() -> list[ScanRecord]:
    """Scans of the seeded synthetic market's first hours, numbered from the first defined vel_div."""
    return trader_support.synthetic_records(LAST, seed=7)


@pytest.fixture(scope="module")
def member():
    with EmbeddedMember(port=0) as m:
        yield m


class Trader:
    """A `python -m dolphin.services.trader` process with its own runtime root and venue."""

    def __init__(self, home: Path, member, sim: SimExchange) -> None:
        self.home = home
        self.env = {**os.environ, "DOLPHIN_HOME": str(home), "DOLPHIN_HZ_PORT": str(member.port),
                    "DOLPHIN_HZ_MEMBERS": "", "DOLPHIN_MARKET": "sim", "DOLPHIN_MARKET_REST_URL": sim.rest_url,
                    "DOLPHIN_MARKET_WS_URL": sim.ws_url, "DOLPHIN_TRADER_VENUE": "sim", "DOLPHIN_SIM_SPEED": "1",
                    # scans are fed in lockstep, far faster than bars close: their age on the venue's clock
                    # (which runs after the last of them, see _sim_config) is not what this test is about
                    "DOLPHIN_TRADER_STALE_AFTER_S": "3600"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, bus: Bus) -> None:
        """Launch and wait until it is listening: it publishes its state once subscribed."""
        since = time.time()
        log = open(self.home / "trader.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "dolphin.services.trader"], env=self.env,
                                     cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: (s := bus.get(schema.STATE_BLUE, schema.LATEST)) is not None
                   and float(s.updated_at) >= since, 120, what="the trader to start listening")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(60) == 0, "the trader did not stop cleanly"
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()

    def journal(self) -> list[dict]:
        lines = (self.home / "journal" / "blue.jsonl").read_bytes().splitlines()
        return [json.loads(line) for line in lines if line.endswith(b"}")]

    def trades(self) -> list[dict]:
        return [r["trade"] for r in self.journal() if r["type"] == "trade"]


def _archive(home: Path, records: list[ScanRecord]) -> None:
    for rec in records[:WARM_UNTIL - 1]:
        write_scan(home, rec)


def _put_and_wait(bus: Bus, rec: ScanRecord) -> None:
    """Publish one scan and wait until the trader reports it as its last step."""
    bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload_from_record(rec, bridge_ts=time.time()))
    wait_until(lambda: (s := bus.get(schema.STATE_BLUE, schema.LATEST)) is not None
               and s.last_scan_number == rec.scan_number, 60, what=f"the trader to take scan {rec.scan_number}")


def _feed(bus: Bus, trader: Trader, records: list[ScanRecord], stop_when=None) -> int:
    """Publish the live scans (from WARM_UNTIL on) in lockstep; returns the next scan number to publish."""
    for rec in records[WARM_UNTIL - 1:]:
        _put_and_wait(bus, rec)
        if stop_when is not None and stop_when():
            return rec.scan_number + 1
    return records[-1].scan_number + 1


def _sim_config(records: list[ScanRecord]) -> SimConfig:
    """A venue whose market clock starts a minute after the last fed scan: every scan has closed on it."""
    return SimConfig(port=0, symbols=50, seed=7, start_ms=records[-1].timestamp_ns // 1_000_000 + 60_000)


def _venue_orders(sim: SimExchange) -> tuple[int, set[str]]:
    return sim.call(lambda s: (len(s.exchange.state.orders), set(s.exchange._client_ids)))


def test_kill_9_mid_position_resumes_the_same_books_without_duplicate_orders(records, member,
                                                                               tmp_path: Path) -> None:
    """kill -9 while a venue position is open: the restart resumes the same books, sends no order twice,
    agrees with the venue, and the journal (fills included) replays to the same books bit for bit."""
    from dolphin.backtest.runner import run_backtest
    from dolphin.backtest.session import SessionInputs
    from dolphin.config.loader import load_config
    from dolphin.engine.trades import ClosedTrade
    from dolphin.store.scan_archive import load_arrow_scans

    client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
    bus = Bus(client)
    try:
        bus.delete(schema.STATE_BLUE, schema.LATEST)
        home = tmp_path / "killed"
        home.mkdir()
        _archive(home, records)
        with SimExchange(_sim_config(records)) as sim:
            trader = Trader(home, member, sim)
            trader.start(bus)
            try:
                def holding() -> bool:
                    state = bus.get(schema.STATE_BLUE, schema.LATEST)
                    return state is not None and state.open_position is not None

                resume_at = _feed(bus, trader, records, stop_when=holding)
                held = bus.get(schema.STATE_BLUE, schema.LATEST)
                assert held.open_position is not None
                trader.kill9()
                trader.start(bus)
                wait_until(lambda: "reconciled with the venue: positions agree" in (home / "trader.log").read_text(),
                           60, what="the restarted trader to reconcile")
                after = bus.get(schema.STATE_BLUE, schema.LATEST)
                assert after.open_position == held.open_position and after.capital == held.capital
                _feed(bus, trader, [r for r in records if r.scan_number >= resume_at or r.scan_number < WARM_UNTIL])
                trades = trader.trades()
                final = bus.get(schema.STATE_BLUE, schema.LATEST)
                n_orders, client_ids = _venue_orders(sim)
            finally:
                trader.stop()
        fills = [r for r in trader.journal() if r["type"] == "fill"]
        legs = {r["client_order_id"] for r in fills}
        assert n_orders == len(legs) == len(fills) and client_ids == legs, "an order reached the venue twice"
        assert len(trades) >= 1 and trades[0]["trade_id"] == held.open_position.trade_id
        assert all(f["fee"] > 0 for f in fills)                   # the venue's commission, not the engine's model
        replay_home = tmp_path / "replay"
        for rec in records:
            write_scan(replay_home, rec)
        session = SessionInputs.from_journal(home / "journal" / "blue.jsonl")
        assert session.venue == "sim" and session.venue_truth
        replayed = run_backtest(load_arrow_scans(replay_home), load_config("blue"), session=session)
        assert replayed.trades == [msgspec.convert(t, ClosedTrade) for t in trades]
        assert replayed.metrics.final_capital == final.capital
    finally:
        client.shutdown()


def test_bad_and_duplicate_scans_do_not_stop_the_trader(records, member, tmp_path: Path) -> None:
    client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
    bus = Bus(client)
    raw = client.get_map(schema.FEATURES).blocking()
    try:
        bus.delete(schema.STATE_BLUE, schema.LATEST)
        home = tmp_path / "bad"
        home.mkdir()
        _archive(home, records)
        with SimExchange(_sim_config(records)) as sim:
            trader = Trader(home, member, sim)
            trader.start(bus)
            try:
                first, second, third = records[WARM_UNTIL - 1], records[WARM_UNTIL], records[WARM_UNTIL + 1]
                _put_and_wait(bus, first)
                raw.put(schema.LATEST_EIGEN_SCAN, "{not json")                                    # malformed
                raw.put(schema.LATEST_EIGEN_SCAN, msgspec.json.encode({"scan_number": 5}).decode())  # missing fields
                bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload_from_record(first, bridge_ts=time.time()))
                forged = payload_from_record(first, bridge_ts=time.time())                          # (a duplicate)
                forged = msgspec.structs.replace(forged, scan_number=first.scan_number + 1_000_000,   # a forged jump
                                                 timestamp_ns=second.timestamp_ns)
                bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, forged)
                bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload_from_record(second, bridge_ts=time.time()))
                wait_until(lambda: (s := bus.get(schema.STATE_BLUE, schema.LATEST)) is not None
                           and s.last_scan_number == second.scan_number, 60, what="the next real scan to be taken")
                _put_and_wait(bus, third)
                state = bus.get(schema.STATE_BLUE, schema.LATEST)
                assert state.rejected_scans == {"bad_json": 1, "schema": 1, "jump": 1}
                assert state.duplicates >= 1
                assert trader.proc is not None and trader.proc.poll() is None
                log = (home / "trader.log").read_text()
                assert "rejected" in log.lower() and "jump" in log
            finally:
                trader.stop()
    finally:
        client.shutdown()
