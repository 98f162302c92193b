"""`dolphin risk status` as an operator runs it: a real process against a real member, then without one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from dolphin.bus import AcbBoost, Bus, EmbeddedMember, ExfLatest, SafetyState, StrategyState, schema
from dolphin.bus.client import connect
from tests.integration.risk.support import PROJECT_ROOT
from tests.support import free_port

pytestmark = [pytest.mark.cli]

DOLPHIN = [sys.executable, "-m", "commands"]


def _run(home: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOLPHIN_")}
    env.update(PYTHONPATH=str(PROJECT_ROOT), DOLPHIN_HOME=str(home), DOLPHIN_HZ_PORT=str(port), DOLPHIN_HZ_MEMBERS="",
               COLUMNS="160")
    return subprocess.run([*DOLPHIN, "risk", "status", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env=env, timeout=120)


def _turtle(now: float) -> SafetyState:
    return SafetyState(posture="TURTLE", rm=0.5, timestamp=now, r_target=0.5, seq=41, mc_status="OK",
                       reason="TURTLE: Rm 0.500 — Cat5 capital 0.50 (drawdown 12.0 %)",
                       sensors={"cat1_invariant": 1.0, "cat2_structural": 1.0, "cat3_microstructure": 1.0,
                                "cat4_environmental": 1.0, "cat5_capital": 0.5},
                       inputs={"hz_nodes": 1.0, "heartbeat_age_s": 2.0, "drawdown": 0.12, "dvol": 52.0})


def test_status_explains_why_entries_stop_from_the_bus_then_from_the_watchdog_file(tmp_path: Path) -> None:
    now = time.time()
    with EmbeddedMember(port=0) as member:
        client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
        try:
            bus = Bus(client)
            bus.put(schema.SAFETY, schema.LATEST, _turtle(now))
            bus.put(schema.FEATURES, schema.ACB_BOOST, AcbBoost(boost=1.549, beta=0.8, pushed_at=now, signals=2.0,
                                                                trigger="exf", computed_at=now - 30))
            bus.put(schema.FEATURES, schema.EXF_LATEST, ExfLatest(pushed_at=now, funding_btc=-0.0002, dvol_btc=85.0,
                                                                  fng=60.0, taker=1.05, stale=["fng"],
                                                                  ages={"fng": 900.0}))
            bus.put(schema.STATE_BLUE, schema.LATEST, StrategyState(
                strategy="blue", capital=22_000.0, date="2026-01-06", pnl=-3_000.0, trades=3, peak_capital=25_000.0,
                drawdown=0.12, updated_at=now, posture="TURTLE"))
        finally:
            client.shutdown()
        out = _run(tmp_path, member.port, "--json")
        assert out.returncode == 0, out.stderr
        view = json.loads(out.stdout)
        assert view["source"] == "bus" and view["posture"] == "TURTLE" and view["entries_allowed"] is False
        assert any("posture TURTLE (Rm 0.500)" in b and "drawdown 12.0 %" in b for b in view["blockers"])
        assert any("ACB boost 1.549" in n for n in view["notes"]) and any("fng" in n for n in view["notes"])
        assert view["acb"]["boost"] == 1.549 and view["mc_gate"]["status"] == "OK"

        human = _run(tmp_path, member.port)
        assert human.returncode == 0, human.stderr
        assert "TURTLE" in human.stdout and "entries stopped" in human.stdout
        assert "Cat5 capital (drawdown)" in human.stdout and "1.549" in human.stdout

    # no bus: the watchdog's file still tells the posture; with neither, one readable line and a non-zero exit
    dead = free_port()
    (tmp_path / "safety.json").write_bytes(msgspec.json.encode(_turtle(now)))
    fallback = _run(tmp_path, dead, "--json")
    assert fallback.returncode == 0, fallback.stderr
    view = json.loads(fallback.stdout)
    assert view["source"].startswith("file ") and view["posture"] == "TURTLE" and view["entries_allowed"] is False
    (tmp_path / "safety.json").unlink()
    failed = _run(tmp_path, dead)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "no watchdog state on disk" in lines[0], failed.stderr
