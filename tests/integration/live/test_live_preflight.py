"""`dolphin preflight --json` against a running simulator and a bus the family publishes on.

The family is this test's thread: it puts every payload the checks read (each data
service's heartbeat and latest value, MHS GREEN, the watchdog's posture) on a real bus
member once a second, as the daemons would, and 24 scans are in the archive (the scan
rate of the last two minutes). With the repo's own configs (the champion's hash) and the
simulator's keys every check passes and the exit is 0; with the simulator stopped and
the bus gone, the exit is the preflight's non-zero code and the failing checks are the
ones that need them, each with its reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dolphin.bus import Bus, EmbeddedMember, schema
from dolphin.bus.client import connect
from dolphin.execution.live.preflight import PreflightFailed
from dolphin.market.sim import SimConfig, SimExchange
from dolphin.scan.record import ScanRecord
from dolphin.store.arrow_scans import write_scan
from tests.integration.live.support import API_KEY, API_SECRET, PROJECT_ROOT
from tests.support import free_port
from tests.tui.support import acb, exf, heartbeat, mc, meta_health, obf, safety, scan

pytestmark = [pytest.mark.degradation]

HEARTBEATS = ("scanner", "obf", "exf", "acb", "watchdog", "mc", "mhs")


class Family(threading.Thread):
    """Publishes what the data services, the watchdog and MHS would, fresh, every second until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{port}"])
        self.bus = Bus(self.client)
        self.stop_event = threading.Event()
        self.publish()

    def publish(self) -> None:
        now = time.time()
        for map_name, key, payload in (
                (schema.FEATURES, schema.LATEST_EIGEN_SCAN, scan(4200, now)),
                (schema.FEATURES, schema.OBF_UNIVERSE_LATEST, obf(now)),
                (schema.FEATURES, schema.EXF_LATEST, exf(now)),
                (schema.FEATURES, schema.ACB_BOOST, acb(now)),
                (schema.FEATURES, schema.MC_FOREWARNER_LATEST, mc(now)),
                (schema.SAFETY, schema.LATEST, safety(now)),
                (schema.META_HEALTH, schema.LATEST, meta_health(now)),
                *((schema.HEARTBEAT, schema.heartbeat_key(n), heartbeat(n, now)) for n in HEARTBEATS)):
            self.bus.put(map_name, key, payload)

    def run(self) -> None:
        while not self.stop_event.wait(1.0):
            self.publish()

    def close(self) -> None:
        self.stop_event.set()
        self.join(30)
        self.client.shutdown()


def _preflight(env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    res = subprocess.run([sys.executable, "-m", "commands", "preflight", "--json"], env=env, cwd=PROJECT_ROOT,
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180)
    out = res.stdout + res.stderr
    assert "Traceback" not in out, out
    assert API_KEY not in out and API_SECRET not in out, "a key reached the output"
    return res.returncode, json.loads(res.stdout), out


def test_preflight_passes_against_a_healthy_venue_and_family_and_names_what_is_down(
        tmp_path: Path, member: EmbeddedMember, records: list[ScanRecord]) -> None:
    home = tmp_path / "home"
    for rec in records[:24]:                      # two minutes of scans at one per 5 s bar, written just now
        write_scan(home, rec)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOLPHIN_LIVE_", "DOLPHIN_BINANCE_"))}
    with SimExchange(SimConfig(port=0, symbols=50, seed=7, api_key=API_KEY, api_secret=API_SECRET)) as sim:
        env.update({"DOLPHIN_HOME": str(home), "DOLPHIN_CONFIG_DIR": str(PROJECT_ROOT / "configs"),
                    "DOLPHIN_HZ_PORT": str(member.port), "DOLPHIN_HZ_MEMBERS": "", "DOLPHIN_MARKET": "sim",
                    "DOLPHIN_LIVE_REST_URL": sim.rest_url, "DOLPHIN_LIVE_WS_URL": sim.ws_url,
                    "DOLPHIN_BINANCE_API_KEY": API_KEY, "DOLPHIN_BINANCE_API_SECRET": API_SECRET, "NO_COLOR": "1"})
        family = Family(member.port)
        family.start()
        try:
            code, report, out = _preflight(env)
        finally:
            family.close()
    failed = {c["name"]: c["reason"] for c in report["checks"] if not c["ok"]}
    assert failed == {} and code == 0 and report["ok"] is True, out
    assert len(report["checks"]) >= 20

    # the venue stopped and no bus at its port: refused, the failing checks named with their causes
    env["DOLPHIN_HZ_PORT"] = str(free_port())
    code, report, out = _preflight(env)
    checks = {c["name"]: c for c in report["checks"]}
    failed = {name for name, c in checks.items() if not c["ok"]}
    assert code == PreflightFailed.exit_code and report["ok"] is False, out
    assert {"venue_reachable", "balance", "listen_key", "mhs_green", "posture",
            *(f"service_{s}" for s in ("scanner", "obf", "exf", "acb", "watchdog", "mc"))} <= failed, failed
    assert "/fapi/v1/ping" in checks["venue_reachable"]["reason"], out
    assert "the bus is not reachable" in checks["mhs_green"]["reason"], out
    assert {"config_ranges", "champion_hash", "keys_present", "kill_switch_clear", "journal_writable"}.isdisjoint(
        failed), failed
