"""Helpers for the TUI tests: sample payloads in every panel's shape, and a small real supervisord.

The payloads are the bus package's own Structs with realistic values. `MiniSupervisor`
runs a real supervisord (the `supervisor` package `dolphin up` uses) with a few tiny
programs, so the services table, restarts and log tails are tested against the real
XML-RPC interface without needing the whole daemon family.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from dolphin.bus import (
    AcbBoost,
    DailyResult,
    EigenScan,
    EigenScanNG7,
    ExfLatest,
    Heartbeat,
    HzKeyStatus,
    McForewarner,
    MetaHealth,
    ObfAssetHealth,
    ObfStatus,
    ObfUniverse,
    ObMacro,
    SafetyState,
    StrategyState,
    WindowStats,
    iso_utc,
)
from dolphin.supervision.rpc import SupervisorClient
from tests.support import PROJECT_ROOT, free_port, pid_alive, wait_until

TYPED_TRADER_STATE = "open_position" in StrategyState.__struct_fields__
T0 = 1775390400.0  # 2026-04-05 12:00:00 UTC: the frozen "now" of the snapshot tests
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
PRICES = {"BTCUSDT": 63_980.4, "ETHUSDT": 3_121.55, "SOLUSDT": 151.84, "BNBUSDT": 584.3, "XRPUSDT": 0.5231}


# ------------------------------------------------------------------------ payloads
def scan(number: int, now: float, vel_div: float = -0.0312, *, market_ahead_s: float = 0.0) -> EigenScan:
    v50, v750 = vel_div / 2, -vel_div / 2
    mwr = {str(w): WindowStats(velocity=v, lambda_max=l, instability=i) for w, v, l, i in (
        (50, v50, 12.41, 0.031), (150, 0.0042, 11.87, 0.024), (300, -0.0017, 11.02, None), (750, v750, 10.55, None))}
    market = now + market_ahead_s
    return EigenScan(scan_number=number, timestamp_ns=int(market * 1e9), vel_div=vel_div, w50_velocity=v50,
                     w750_velocity=v750, w150_velocity=0.0042, w300_velocity=-0.0017, instability_50=0.031,
                     instability_150=0.024, asset_prices=dict(PRICES),
                     timestamp=iso_utc(market), bridge_ts=now, multi_window_results=mwr)


def scan_ng7(number: int, now: float) -> str:
    """An NG7 nested scan as raw JSON (we never write NG7; the TUI must read it)."""
    doc = {"scan_number": number, "timestamp": iso_utc(now), "result": {
        "multi_window_results": {"50": {"velocity": 0.011, "lambda_max": 9.5, "instability": 0.02},
                                 "150": {"velocity": 0.004}, "300": {"velocity": -0.002},
                                 "750": {"velocity": 0.031, "lambda_max": 8.1}},
        "asset_prices": {"BTCUSDT": 64000.0}}}
    return msgspec.json.encode(doc).decode()


def meta_health(now: float, status: str = "GREEN", rm: float = 0.975) -> MetaHealth:
    return MetaHealth(rm_meta=rm, status=status, m4_control_plane=1.0, m1_data_infra=1.0, m1_trader=1.0,
                      m2_heartbeat=0.9, m3_data_freshness=0.95, m5_coherence=0.8,
                      service_status={"scanner": "RUNNING", "acb": "RUNNING", "exf": "STOPPED"},
                      hz_key_status={"latest_eigen_scan": HzKeyStatus(score=1.0, age_s=2.0, status="fresh"),
                                     "exf_latest": HzKeyStatus(score=0.5, age_s=45.0, status="stale")},
                      timestamp=now)


def safety(now: float, posture: str = "APEX", rm: float = 0.97) -> SafetyState:
    return SafetyState(posture=posture, rm=rm, sensors={"Rm1": 1.0, "Rm2": 0.98, "Rm5": 0.97}, timestamp=now)


def strategy_state(now: float, capital: float = 25_431.55, position: bool = True,
                   last_scan: int | None = 107) -> StrategyState:
    """The trader's state. Uses the typed position/trades fields when the payload has them, else engine_state."""
    pos = {"trade_id": 43, "asset": "BTCUSDT", "side": "SHORT", "entry_price": 64123.5, "leverage": 2.5,
           "notional": 12_000.0, "entry_ts": int(now * 1000), "entry_scan": (last_scan or 107) - 6}
    trades = [{"trade_id": 41, "asset": "ETHUSDT", "side": "SHORT", "entry_price": 3150.0, "exit_price": 3120.0,
               "pnl": 84.12, "exit_reason": "FIXED_TP", "exit_ts": int(now * 1000) - 60_000},
              {"trade_id": 42, "asset": "SOLUSDT", "side": "SHORT", "entry_price": 150.0, "exit_price": 151.2,
               "pnl": -31.40, "exit_reason": "STOP_LOSS", "exit_ts": int(now * 1000) - 30_000}]
    base: dict[str, Any] = dict(strategy="blue", capital=capital, date="2026-04-05", pnl=431.55, trades=7,
                                peak_capital=25_600.0, drawdown=0.0066, updated_at=now)
    if TYPED_TRADER_STATE:
        extra: dict[str, Any] = {"recent_trades": trades, "last_scan_number": last_scan}
        if position:
            extra["open_position"] = pos
        return msgspec.convert({**base, **extra}, StrategyState)
    engine = {"open_position": pos if position else None, "last_trades": trades}
    return StrategyState(**base, engine_state=msgspec.Raw(msgspec.json.encode(engine)))


def daily_result(now: float, pnl: float = 431.55, day: str = "2026-04-05") -> DailyResult:
    return DailyResult(date=day, pnl=pnl, capital=25_431.55, trades=7, boost=1.12, beta=0.4, mc_status="GREEN",
                       posture="APEX", updated_at=now)


def acb(now: float) -> AcbBoost:
    return AcbBoost(boost=1.347, beta=0.5, pushed_at=now, date="2026-04-05", signals=1.0)


def exf(now: float) -> ExfLatest:
    return ExfLatest(pushed_at=now, funding_btc=0.000125, dvol_btc=52.3, fng=41.0, taker=0.97)


def obf(now: float) -> ObfUniverse:
    assets = {s: ObfAssetHealth(spread_bps=1.0 + i, depth_1pct_usd=2_000_000.0 / (i + 1), depth_quality=1.2,
                                fill_probability=0.8, imbalance=0.05 * (i - 2), best_bid=PRICES[s],
                                best_ask=PRICES[s] * (1 + (1.0 + i) / 1e4), n_bid_levels=20, n_ask_levels=20)
              for i, s in enumerate(SYMBOLS)}
    return ObfUniverse(snapshot_utc=now, n_assets=len(assets), assets=assets)


def ob_macro(now: float, regime: float = 1.0, cascades: int = 3) -> ObMacro:
    return ObMacro(bar_ms=int(now * 1000) // 5000 * 5000, cascade_count=cascades, regime_signal=regime,
                   market_imbalance=-0.042, assets=50, pushed_at=now)


def obf_status(now: float, circuit: str = "closed") -> ObfStatus:
    return ObfStatus(timestamp=now, pid=4242, phase="live", started_at=now - 3600, symbols=5, covered=5, dark=0,
                     messages=1_000_000, message_rate=50.0, last_bar_ms=int(now * 1000) // 5000 * 5000,
                     last_snapshot_at=now, circuit=circuit)


def mc(now: float, prob: float = 0.07) -> McForewarner:
    return McForewarner(status="GREEN" if prob < 0.1 else "ORANGE" if prob < 0.3 else "RED", catastrophic_prob=prob,
                        envelope_score=0.91, source="REAL_MODEL", timestamp=iso_utc(now))


def heartbeat(service: str, now: float) -> Heartbeat:
    return Heartbeat(ts=now, iso=iso_utc(now), service=service, pid=4242, phase="running")


def ng7_payload(number: int, now: float) -> EigenScanNG7:
    return msgspec.convert(msgspec.json.decode(scan_ng7(number, now)), EigenScanNG7)


# ------------------------------------------------------------------------ a real supervisord
_SUPERVISORD_CONF = """\
[unix_http_server]
file={socket}
chmod=0700

[supervisord]
logfile={home}/supervisord.log
pidfile={home}/supervisord.pid
childlogdir={home}
directory={home}
nodaemon=false
silent=true
identifier=dolphin-test

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{socket}
{programs}
"""

_PROGRAM = """
[program:{name}]
command={command}
directory={home}
autostart={autostart}
autorestart=true
startsecs=1
startretries=3
stopsignal=TERM
stopwaitsecs=5
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={home}/{name}.log
environment={environment}
"""

SLEEPER = textwrap.dedent("""\
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print(f"{sys.argv[1]} started pid {os.getpid()}", flush=True)
    while True:
        time.sleep(1)
""")


class MiniSupervisor:
    """A real supervisord with a few programs, under a temp dir; `stop()` shuts it down."""

    def __init__(self, home: Path, programs: dict[str, list[str]] | None = None,
                 environment: dict[str, str] | None = None, group: str = "dolphin_data") -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.socket = Path("/tmp") / f"dolphin-tui-test-{os.getpid()}-{free_port()}.sock"
        sleeper = home / "sleeper.py"
        sleeper.write_text(SLEEPER)
        progs = programs if programs is not None else {
            "scanner": [sys.executable, str(sleeper), "scanner"],
            "acb": [sys.executable, str(sleeper), "acb"],
        }
        env = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(PROJECT_ROOT), **(environment or {})}
        env_line = ",".join(f'{k}="{v}"' for k, v in env.items())
        blocks = "".join(_PROGRAM.format(name=n, command=" ".join(c), home=home, autostart="true",
                                         environment=env_line) for n, c in progs.items())
        group_block = f"\n[group:{group}]\nprograms={','.join(progs)}\n"
        self.conf = home / "supervisord.conf"
        self.conf.write_text(_SUPERVISORD_CONF.format(socket=self.socket, home=home, programs=blocks + group_block))
        self.names = [f"{group}:{n}" for n in progs]
        self.client = SupervisorClient(self.socket, timeout=10)

    def start(self, timeout: float = 60.0) -> MiniSupervisor:
        proc = subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr or proc.stdout
        wait_until(self.client.ping, timeout)
        wait_until(lambda: all(p.state == "RUNNING" for p in self.client.all_processes()), timeout, 0.1)
        return self

    def stop(self) -> None:
        try:
            pid = self.client.pid()
            pids = [p.pid for p in self.client.all_processes() if p.pid] + [pid]
            self.client.shutdown()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
                time.sleep(0.1)
            for p in pids:
                if pid_alive(p):
                    os.kill(p, signal.SIGKILL)
        except Exception:
            pass
        self.socket.unlink(missing_ok=True)


# ------------------------------------------------------------------------ fixed states (snapshots)
def process(name: str, state: str = "RUNNING", pid: int = 0, up_s: int = 3725, group: str = "dolphin_data") -> Any:
    from dolphin.supervision.rpc import ProcessInfo

    now = int(T0)
    return ProcessInfo(name=name, group=group, state=state, pid=pid if state == "RUNNING" else 0,
                       start=now - up_s if state == "RUNNING" else 0, now=now, exitstatus=0, spawnerr="",
                       description="", logfile="")


FAMILY = ("hz", "sim", "scanner", "mhs")


def family_view(states: dict[str, str] | None = None, polled_at: float = T0, error: str | None = None) -> Any:
    from tui.state import ServicesView

    states = states or {}
    infos = tuple(process(n, states.get(n, "RUNNING"), pid=31000 + i, up_s=3725 - 60 * i)
                  for i, n in enumerate(FAMILY))
    return ServicesView(infos=() if error else infos, polled_at=polled_at, error=error,
                        socket="/run/dolphin/supervisor.sock", enabled=True)


def fill(state: Any, published: float, *, scans: int = 24) -> None:
    """Every panel's source, published at `published` (a frozen clock makes the ages fixed)."""
    from dolphin.bus import BusEvent, schema

    def put(map_name: str, key: str, payload: Any) -> None:
        state.deliver(BusEvent(map_name, key, "ADDED", payload, published))

    for i in range(scans):  # a vel_div history for the sparkline
        vd = -0.03 + 0.02 * ((i * 7) % 11) / 10 - 0.005 * (i % 3)
        put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, scan(4200 + i, published, vel_div=round(vd, 4)))
    put(schema.FEATURES, schema.ACB_BOOST, acb(published))
    put(schema.FEATURES, schema.EXF_LATEST, exf(published))
    put(schema.FEATURES, schema.OBF_UNIVERSE_LATEST, obf(published))
    put(schema.FEATURES, schema.OB_MACRO_LATEST, ob_macro(published))
    put(schema.FEATURES, schema.OBF_STATUS, obf_status(published))
    for p in (0.05, 0.07, 0.12, 0.07):
        put(schema.FEATURES, schema.MC_FOREWARNER_LATEST, mc(published, prob=p))
    put(schema.SAFETY, schema.LATEST, safety(published))
    put(schema.STATE_BLUE, schema.LATEST, strategy_state(published, last_scan=4223))
    put(schema.PNL_BLUE, "2026-04-05", daily_result(published))
    put(schema.META_HEALTH, schema.LATEST, meta_health(published))
    for name in ("scanner", "mhs"):
        put(schema.HEARTBEAT, schema.heartbeat_key(name), heartbeat(name, published))


def write_results(path: Path, *, broken: bool = False) -> Path:
    from datetime import datetime

    from dolphin.test_report import write_test_results

    if broken:
        path.write_text('{"_run_at": "2026-04-05T09:00:00", "data_integrity": {"passed": 3, "total": 2')
        return path
    return write_test_results({"data_integrity": {"passed": 41, "total": 41, "status": "PASS"},
                               "finance_fuzz": {"passed": 12, "total": 12, "status": "PASS"},
                               "signal_fill": {"passed": None, "total": None, "status": "N/A"},
                               "degradation": {"passed": 17, "total": 18, "status": "FAIL"},
                               "actor": {"passed": 9, "total": 9, "status": "PASS"},
                               "bus": {"passed": 180, "total": 180, "status": "PASS"}},
                              path=path, run_at=datetime(2026, 4, 5, 9, 0, tzinfo=UTC))


# ------------------------------------------------------------------------ pilot helpers
class FakeClock:
    """Wall time plus an offset the test advances (the codec still checks real time)."""

    def __init__(self, frozen: float | None = None) -> None:
        self.offset = 0.0
        self.frozen = frozen

    def __call__(self) -> float:
        return (self.frozen if self.frozen is not None else time.time()) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def plain(renderable: Any, width: int = 60) -> str:
    """A panel body as plain text."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def panel_text(app: Any, panel_id: str, width: int = 60) -> str:
    panel = app.query_one(f"#{panel_id}")
    return plain(panel.body_widget.content, width)


async def wait_for(pilot: Any, predicate: Callable[[], Any], timeout: float = 60.0, step: float = 0.05,
                   what: str = "condition") -> Any:
    """`tests.support.wait_until` for a running app: the pilot pauses between looks so the app keeps working.

    The timeout only guards against hangs: on a busy machine a repaint can take seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(step)
