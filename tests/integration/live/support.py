"""The live trader under test: its own home, configs, bus, a simulator venue with faults, scans fed in lockstep.

`LiveHarness` runs `dolphin.services.live.service.run` in-process (a thread, stopped like
SIGTERM would) or as a real ``python -m dolphin.services.live`` process, against a real
simulator exchange over real sockets. The strategy is the blue champion with a lower entry
threshold and a short hold, so a few hundred scans make a dozen trades — the faults need
orders to act on. Everything a session needs to be checked against (the venue's orders and
account, the journal, the bus) is read here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from dolphin.bus import Bus, EmbeddedMember, schema
from dolphin.bus.client import connect
from dolphin.bus.scan_codec import payload_from_record
from dolphin.market.sim import SimConfig, SimExchange
from dolphin.scan.record import ScanRecord
from dolphin.services.runtime import ServiceContext
from dolphin.store.arrow_scans import write_scan
from tests.integration.support import ServiceThread
from tests.integration.trader import support as trader_support
from tests.support import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[3]
WARM_UNTIL = 760          # scans 1..759 are archived history; 760.. are fed live (the vol gate is calibrated by then)
LAST = 1300
API_KEY = "live-test-key-7f3a9c2e5b"          # distinctive: the secrets check greps every output for them
API_SECRET = "live-test-secret-d41b8e06c3a9f57"

LIVE_SETTINGS: dict[str, Any] = {
    "price_band_pct": 50.0,        # scans are minutes older than the venue's clock here: the band is tested apart
    "fill_timeout_s": 1.0,
    "order_resolve_s": 20.0,
    "reconcile_every_s": 1.0,
    "rejects_in_a_row": 2,
    "pause_minutes": 0.05,         # 3 s: the automatic pause lapses within the test
    "reconnects_per_min": 30,
    "backoff_max_s": 1.0,
}


def synthetic_records(last: int = LAST) -> list[ScanRecord]:
    """Scans 1..``last`` of the seed-7 synthetic market (the first 750 bars only fill the scan windows)."""
    return trader_support.synthetic_records(last, seed=7)


def write_configs(directory: Path, live: dict[str, Any] | None = None) -> Path:
    """A config dir: the repo's configs, blue made active (lower threshold, short hold), the live section set."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in (PROJECT_ROOT / "configs").glob("*.yml"):
        shutil.copy(path, directory / path.name)
    blue = yaml.safe_load((directory / "blue.yml").read_text())
    blue["champion"].update({"vel_div_threshold": -0.005, "vel_div_extreme": -0.03, "max_hold_bars": 6})
    (directory / "blue.yml").write_text(yaml.safe_dump(blue))
    services = yaml.safe_load((directory / "services.yml").read_text())
    services["live"] = {**services.get("live", {}), **LIVE_SETTINGS, **(live or {})}
    (directory / "services.yml").write_text(yaml.safe_dump(services))
    return directory


def sim_config(records: list[ScanRecord], **overrides: Any) -> SimConfig:
    """A venue whose clock starts a minute after the last scan (every fed scan has closed on it)."""
    return SimConfig(port=0, symbols=50, seed=7, start_ms=records[-1].timestamp_ns // 1_000_000 + 60_000,
                     api_key=API_KEY, api_secret=API_SECRET, **overrides)


class LiveThread(ServiceThread):
    name = "live"

    async def body(self, ctx: ServiceContext) -> None:
        from dolphin.services.live import service

        await service.run(ctx)


class Venue:
    """The test's own view of the simulator: admin faults, the account, orders behind the trader's back."""

    def __init__(self, sim: SimExchange) -> None:
        self.sim = sim
        self.url = sim.rest_url

    def _admin(self, method: str, path: str, query: dict[str, str] | None = None) -> Any:
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def fault(self, spec: str) -> Any:
        return self._admin("POST", "/sim/v1/faults", {"spec": spec})

    def clear_faults(self) -> None:
        self._admin("DELETE", "/sim/v1/faults")

    def fired(self) -> dict[str, int]:
        return dict(self._admin("GET", "/sim/v1/faults")["fired"])

    def drop_user_stream(self) -> None:
        self._admin("POST", "/sim/v1/faults/ws-drop", {"target": "user", "count": "1"})

    def expire_listen_keys(self) -> None:
        self._admin("POST", "/sim/v1/faults/listen-key-expire")

    def settle_funding(self) -> dict[str, float]:
        """The venue settles funding now, as at a funding time (loopback drill): {symbol: the account's income}."""
        return dict(self._admin("POST", "/sim/v1/funding")["paid"])

    def orders(self) -> list[Any]:
        return self.sim.call(lambda s: list(s.exchange.state.orders))

    def client_ids(self) -> list[str]:
        return [o.client_order_id for o in self.orders()]

    def position(self, symbol: str) -> float:
        return float(self.sim.call(lambda s: s.exchange.ledger.position(symbol, "BOTH").amt))

    def positions(self) -> dict[str, float]:
        return {k.split(":")[0] if ":" in k else k: float(p.amt)
                for k, p in self.sim.call(lambda s: dict(s.exchange.state.positions)).items() if p.amt}

    def wallet(self) -> float:
        return float(self.sim.call(lambda s: s.exchange.ledger.margins({})["wallet"]))

    def rest(self) -> Any:
        from dolphin.market.sync import SyncBinanceRest

        return SyncBinanceRest(self.url, API_KEY, API_SECRET)


class LiveHarness:
    """A live trader with its own home and configs; scans are put on the bus by the test, one at a time."""

    def __init__(self, home: Path, member: EmbeddedMember, sim: SimExchange, records: list[ScanRecord],
                 monkeypatch: pytest.MonkeyPatch, live: dict[str, Any] | None = None) -> None:
        self.home, self.records, self.sim = home, records, sim
        home.mkdir(parents=True, exist_ok=True)
        self.configs = write_configs(home.parent / f"{home.name}-configs", live)
        self.venue = Venue(sim)
        self.env = {"DOLPHIN_HOME": str(home), "DOLPHIN_CONFIG_DIR": str(self.configs),
                    "DOLPHIN_HZ_PORT": str(member.port), "DOLPHIN_HZ_MEMBERS": "", "DOLPHIN_MARKET": "sim",
                    "DOLPHIN_MARKET_REST_URL": sim.rest_url, "DOLPHIN_MARKET_WS_URL": sim.ws_url,
                    "DOLPHIN_LIVE_REST_URL": sim.rest_url, "DOLPHIN_LIVE_WS_URL": sim.ws_url,
                    "DOLPHIN_BINANCE_API_KEY": API_KEY, "DOLPHIN_BINANCE_API_SECRET": API_SECRET,
                    "DOLPHIN_TRADER_STALE_AFTER_S": "3600"}
        for var, value in self.env.items():
            monkeypatch.setenv(var, value)
        self.client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
        self.bus = Bus(self.client)
        self.bus.delete(schema.STATE_BLUE, schema.LATEST)
        self.thread: LiveThread | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.next_scan = WARM_UNTIL

    # ------------------------------------------------------------------ running it
    def archive(self) -> None:
        for rec in self.records[:WARM_UNTIL - 1]:
            write_scan(self.home, rec)

    def start(self) -> Any:
        since = time.time()
        self.thread = LiveThread(self.home)
        self.thread.start_thread()
        return self._wait_started(since)

    def start_process(self, *args: str) -> Any:
        since = time.time()
        log = open(self.home / "live.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "dolphin.services.live", "--skip-preflight", *args],
                                     env={**os.environ, **self.env}, cwd=PROJECT_ROOT, stdout=log,
                                     stderr=subprocess.STDOUT)
        return self._wait_started(since)

    def _wait_started(self, since: float) -> Any:
        def ready() -> Any:
            if self.thread is not None and self.thread.error is not None:
                raise AssertionError(f"the live trader crashed: {self.thread.error!r}")
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the live trader exited {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            s = self.state()
            return s is not None and s.live is not None and float(s.updated_at) >= since and s
        return wait_until(ready, 120, what="the live trader to start and publish")

    def stop(self) -> None:
        if self.thread is not None:
            thread, self.thread = self.thread, None
            thread.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(60) == 0, "the live trader did not stop cleanly"
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def close(self) -> None:
        self.stop()
        self.client.shutdown()

    def log_text(self) -> str:
        path = self.home / "live.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ the bus
    def state(self) -> Any:
        return self.bus.get(schema.STATE_BLUE, schema.LATEST)

    def live(self) -> Any:
        s = self.state()
        return s.live if s is not None else None

    def wait_live(self, predicate: Any, what: str, timeout: float = 60.0) -> Any:
        return wait_until(lambda: (s := self.live()) is not None and predicate(s) and s, timeout, what=what)

    def step(self, rec: ScanRecord) -> Any:
        self.bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload_from_record(rec, bridge_ts=time.time()))
        return wait_until(lambda: (s := self.state()) is not None and s.last_scan_number == rec.scan_number and s,
                          90, what=f"the live trader to take scan {rec.scan_number}")

    def put_next(self) -> ScanRecord:
        """Publish the next scan without waiting for its step (a step may wait on the venue)."""
        rec = self.records[self.next_scan - 1]
        self.bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload_from_record(rec, bridge_ts=time.time()))
        self.next_scan += 1
        return rec

    def stepped(self, rec: ScanRecord) -> bool:
        s = self.state()
        return s is not None and s.last_scan_number == rec.scan_number

    def put_until_an_order_leaves(self) -> tuple[ScanRecord, list[str]]:
        """Put scans one at a time until a step sends an order (not waiting for that step: its ack may be held
        back); the scan that sent it and the new client order ids at the venue."""
        known = set(self.venue.client_ids())
        while True:
            rec = self.put_next()
            sent = wait_until(lambda rec=rec: self.stepped(rec) or [c for c in self.venue.client_ids() if c not in known],
                              90, what="the step or an order on the wire")
            if sent is not True:
                return rec, sent

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "commands", *args], env={**os.environ, **self.env},
                              cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)

    def feed_until(self, condition: Any, limit: int = 400) -> Any:
        """Feed the next scans (lockstep) until ``condition(state)``; returns that state."""
        for _ in range(limit):
            if self.next_scan > len(self.records):
                break
            state = self.step(self.records[self.next_scan - 1])
            self.next_scan += 1
            if condition(state):
                return state
        raise AssertionError(f"no scan up to {self.next_scan - 1} made the condition true")

    def flat(self) -> bool:
        s = self.state()
        return s is not None and s.open_position is None

    # ------------------------------------------------------------------ the books
    def journal_path(self) -> Path:
        return self.home / "journal" / "blue-live-sim.jsonl"

    def journal(self) -> list[dict[str, Any]]:
        path = self.journal_path()
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_bytes().splitlines() if line.endswith(b"}")]

    def records_of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.journal() if r["type"] == kind]

    def wait_until_journaled(self, alert_kind: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The journal's alerts of a kind, once there is one (alerts are journaled between steps)."""
        return wait_until(lambda: [a for a in self.records_of("alert") if a["kind"] == alert_kind], timeout,
                          what=f"a {alert_kind} alert in the journal")

    def assert_books_equal_venue(self, behind_back: float = 0.0) -> None:
        """The engine's capital moved exactly as the venue's wallet (less what was traded behind its back);
        the venue holds what the engine holds."""
        state = self.state()
        live = state.live
        pos = state.open_position
        engine = self.core_capital(state)
        assert abs(engine - (self.venue.wallet() - behind_back)) < 1e-6, (engine, self.venue.wallet(), behind_back)
        venue = self.venue.positions()
        if pos is None:
            assert venue == {}, venue
        else:
            assert set(venue) == {pos.asset}
            assert abs(abs(venue[pos.asset]) * pos.entry_price - pos.notional) < 1e-6 * pos.notional
            assert (venue[pos.asset] < 0) == (pos.side == "SHORT")
        assert live is not None

    def core_capital(self, state: Any) -> float:
        """The books' cash: capital less the open position's entry fee (the engine settles it at the exit, the
        venue charged it at the fill)."""
        fee = 0.0
        if state.open_position is not None:
            entry = [r for r in self.records_of("fill") if r["kind"] == "entry"
                     and r["trade_id"] == state.open_position.trade_id]
            fee = entry[-1]["fee"] if entry else 0.0
        return float(state.capital) - fee

    def assert_no_duplicate_orders(self) -> None:
        """Every order at the venue is one of the journal's legs (or its market remainder), each once."""
        ids = [c for c in self.venue.client_ids() if c.startswith("dol")]
        assert len(ids) == len(set(ids)), "an order reached the venue twice"
        legs = {r["client_order_id"] for r in self.records_of("fill")}
        assert {c.removesuffix(".m") for c in ids} >= legs

    def assert_replay_equals_books(self) -> None:
        """`dolphin backtest --journal` over the archive reproduces the live books trade for trade."""
        from dolphin.backtest.runner import run_backtest
        from dolphin.backtest.session import SessionInputs
        from dolphin.config.loader import load_config
        from dolphin.engine.trades import ClosedTrade
        from dolphin.store.scan_archive import load_arrow_scans

        replay_home = self.home.parent / f"{self.home.name}-replay"
        for rec in self.records[:self.next_scan - 1]:
            write_scan(replay_home, rec)
        session = SessionInputs.from_journal(self.journal_path())
        assert session.venue == "live-sim" and session.venue_truth
        replayed = run_backtest(load_arrow_scans(replay_home), load_config("blue"), session=session)
        live_trades = [msgspec.convert(r["trade"], ClosedTrade) for r in self.records_of("trade")]
        assert replayed.trades == live_trades
        commits = self.records_of("commit")
        assert replayed.metrics.final_capital == commits[-1]["capital"]


__all__ = ["API_KEY", "API_SECRET", "LAST", "WARM_UNTIL", "LiveHarness", "Venue", "sim_config", "synthetic_records",
           "write_configs"]
