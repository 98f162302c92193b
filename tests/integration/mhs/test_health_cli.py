"""`dolphin health` never shows a dead report as GREEN: an old report is UNKNOWN (issue 12 §4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from dolphin.bus import MetaHealth
from tests.support import free_port

pytestmark = [pytest.mark.cli, pytest.mark.degradation]

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _report(age_s: float) -> MetaHealth:
    return MetaHealth(rm_meta=0.9, status="GREEN", m4_control_plane=1.0, m1_data_infra=1.0, m1_trader=1.0,
                      m2_heartbeat=1.0, m3_data_freshness=0.5, m5_coherence=1.0, service_status={"mhs": "RUNNING"},
                      hz_key_status={}, timestamp=time.time() - age_s, check_interval_s=10.0)


def _health(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOLPHIN_HOME": str(home), "DOLPHIN_HZ_PORT": str(free_port()), "DOLPHIN_HZ_MEMBERS": "",
           "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-m", "commands", "health", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_a_report_older_than_three_intervals_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "meta_health.json").write_bytes(msgspec.json.encode(_report(age_s=600)))
    res = _health(tmp_path)
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert text.startswith("UNKNOWN the last report is") and "MHS is not reporting" in text
    data = json.loads(_health(tmp_path, "--json").stdout)
    assert data["stale"] is True and data["status"] == "UNKNOWN" and data["report"]["status"] == "GREEN"


def test_a_fresh_report_keeps_its_status(tmp_path: Path) -> None:
    (tmp_path / "meta_health.json").write_bytes(msgspec.json.encode(_report(age_s=2)))
    data = json.loads(_health(tmp_path, "--json").stdout)
    assert data["stale"] is False and data["status"] == "GREEN"
