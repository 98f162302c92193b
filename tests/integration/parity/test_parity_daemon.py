"""The parity daemon as a real process against the embedded member, kill -9 included; `dolphin parity` exit codes.

The home holds a scan archive and the journal of a paper session over it (a trader core,
scans 620–900, one LTCUSDT trade). The daemon publishes its reports through the official
client; the test reads them back through the bus codec (a rejected value reads as None).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from dolphin.bus import Bus, EmbeddedMember, schema
from dolphin.bus.client import connect
from dolphin.bus.codec import default_codec
from dolphin.bus.payloads import ParityReport
from dolphin.config import load_config
from dolphin.enums import HealthState, ParityStatus
from tests.integration.parity.support import PROJECT_ROOT, archive, paper_session, seeded_records
from tests.support import wait_until

pytestmark = [pytest.mark.actor, pytest.mark.degradation, pytest.mark.slow]

LAST = 900


@pytest.fixture(scope="module")
def member():
    with EmbeddedMember(port=0) as m:
        yield m


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parity") / "home"
    archive(root, seeded_records(LAST))
    paper_session(root, load_config("blue"), 620, LAST)
    return root


def _env(home: Path, member: EmbeddedMember) -> dict[str, str]:
    return {**os.environ, "DOLPHIN_HOME": str(home), "DOLPHIN_HZ_PORT": str(member.port), "DOLPHIN_HZ_MEMBERS": "",
            "DOLPHIN_PARITY_INTERVAL": "1", "DOLPHIN_TRADER_STRATEGY": "blue"}


def _start(home: Path, member: EmbeddedMember) -> subprocess.Popen[bytes]:
    log = open(home / "parity.log", "ab")  # noqa: SIM115 - the child writes it; closed with the test's tmp dir
    return subprocess.Popen([sys.executable, "-m", "dolphin.services.parity"], env=_env(home, member),
                            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)


def _newer(bus: Bus, key: str, since: float):  # noqa: ANN202
    def fresh():  # noqa: ANN202
        payload = bus.get(schema.FEATURES, key)
        return payload if payload is not None and payload.timestamp >= since else None
    return fresh


def test_the_daemon_publishes_survives_kill_9_and_reports_again(member: EmbeddedMember, home: Path) -> None:
    client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
    bus = Bus(client)
    raw = client.get_map(schema.FEATURES).blocking()
    proc = None
    try:
        since = time.time()
        proc = _start(home, member)
        report = wait_until(_newer(bus, schema.PARITY_LATEST, since), 120, what="a parity report on the bus")
        assert report.status is ParityStatus.PARITY, report
        assert (report.first_scan, report.last_scan, report.scans) == (620, LAST, LAST - 619)
        assert report.scan_coverage == 1.0 and report.signal_coverage == 1.0 and report.live_trades == 1
        assert report.interval_s == 1.0
        value = raw.get(schema.PARITY_LATEST)                    # what is on the wire, through the codec
        assert default_codec.decode(schema.FEATURES, schema.PARITY_LATEST, value) == report
        health = wait_until(_newer(bus, schema.STRATEGY_HEALTH_LATEST, since), 60, what="a strategy health report")
        assert health.state is HealthState.PROBATION and health.trades == 1
        wait_until(lambda: (home / "parity_report.json").is_file(), 30, what="the report file")

        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        on_disk = msgspec.json.decode((home / "parity_report.json").read_bytes(), type=ParityReport)
        assert on_disk.status is ParityStatus.PARITY                # written atomically: never a torn report

        restarted = time.time()
        proc = _start(home, member)
        again = wait_until(_newer(bus, schema.PARITY_LATEST, restarted), 120, what="a report after the restart")
        assert again.status is ParityStatus.PARITY and again.live_trades == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, (home / "parity.log").read_text()[-2000:]
        proc = None
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(30)
        client.shutdown()


def _dolphin(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOLPHIN_HOME": str(home), "DOLPHIN_TRADER_STRATEGY": "blue"}
    return subprocess.run([sys.executable, "-m", "commands", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)


def test_dolphin_parity_exit_codes(home: Path, tmp_path: Path) -> None:
    """0 in parity, 40 divergent (a gap: explained), 41 unexplained (books their replay does not reproduce)."""
    clean = _dolphin(home, "parity", "--json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["status"] == "parity"

    def beside(name: str) -> Path:   # another journal over the same archive
        other = tmp_path / name
        other.mkdir()
        os.symlink(home / "arrow_scans", other / "arrow_scans")
        return other

    gap_home = beside("gap")
    paper_session(gap_home, load_config("blue"), 620, LAST, skip=range(775, 785))   # the LTC entry at 779
    divergent = _dolphin(gap_home, "parity", "--json")
    assert divergent.returncode == 40, divergent.stderr
    out = json.loads(divergent.stdout)
    assert out["status"] == "divergent" and out["unexplained"] == 0 and out["unstepped_scans"] == 10
    assert out["gaps"][0]["first_scan"] == 775 and out["causes"].get("coverage_gap", 0) >= 1

    bad_home = beside("tampered")
    (bad_home / "journal").mkdir()
    lines = (home / "journal" / "blue.jsonl").read_text().splitlines()
    tampered = [line.replace('"exit_reason":"', '"exit_reason":"X') if '"type":"trade"' in line else line
                for line in lines]
    assert tampered != lines
    (bad_home / "journal" / "blue.jsonl").write_text("\n".join(tampered) + "\n")
    broken = _dolphin(bad_home, "parity")
    assert broken.returncode == 41, broken.stderr
    assert "UNEXPLAINED" in broken.stdout and "exit_reason" in broken.stdout

    nothing = _dolphin(tmp_path / "empty", "parity")
    assert nothing.returncode == 6 and "trader journal" in nothing.stderr and "Traceback" not in nothing.stderr


def _one_line(res: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code and len(lines) == 1, res.stderr
    assert lines[0].startswith("error:") and all(w in lines[0] for w in words), lines[0]


def test_bad_input_is_one_readable_line(home: Path, tmp_path: Path) -> None:
    """A bad --since, a torn baseline, a torn health state: one line naming the cause, no traceback, nothing lost."""
    _one_line(_dolphin(home, "parity", "--since", "2026-13-01"), 2, "2026-13-01", "no such day")
    _one_line(_dolphin(home, "parity", "--scans", str(tmp_path / "nowhere")), 6, "scan archive not found")
    work = tmp_path / "h"
    (work / "baselines").mkdir(parents=True)
    (work / "journal").symlink_to(home / "journal")
    (work / "baselines" / "blue.json").write_text('{"strategy": "blue"}')
    _one_line(_dolphin(work, "health", "strategy"), 6, "blue.json", "not a strategy baseline", "register-baseline")
    assert (work / "baselines" / "blue.json").read_text() == '{"strategy": "blue"}'     # left for the operator
    (work / "baselines" / "blue.json").unlink()
    (work / "strategy_health").mkdir()
    (work / "strategy_health" / "blue.json").write_bytes(b"\x00torn")
    _one_line(_dolphin(work, "health", "strategy", "--json"), 6, "not a strategy health state")


def test_baseline_registry_and_dolphin_health_strategy(home: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`backtest --register-baseline` writes the registry; `health strategy` reads it with the journal."""
    from typer.testing import CliRunner

    from commands.app import app

    work = tmp_path / "h"
    work.mkdir()
    os.symlink(home / "arrow_scans", work / "arrow_scans")
    shutil.copytree(home / "journal", work / "journal")
    monkeypatch.setenv("DOLPHIN_HOME", str(work))
    monkeypatch.setenv("DOLPHIN_TRADER_STRATEGY", "blue")
    runner = CliRunner()
    before = runner.invoke(app, ["health", "strategy", "--json"])
    assert before.exit_code == 0, before.output
    report = json.loads(before.output)
    assert report["state"] == "probation" and report["trades"] == 1 and not report["baseline_registered"]
    registered = runner.invoke(app, ["backtest", "--scans", str(work), "--trade-from-scan", "620", "--no-write",
                                     "--register-baseline", "--json"])
    assert registered.exit_code == 0, registered.output
    baseline = json.loads((work / "baselines" / "blue.json").read_text())
    assert baseline["trades"] == 1 and baseline["strategy"] == "blue" and json.loads(registered.output)["baseline"]
    after = json.loads(runner.invoke(app, ["health", "strategy", "--json"]).output)
    assert after["baseline_registered"] and after["baseline_matches_config"] is True
    assert {g["metric"] for g in after["gauges"]} == {"expectancy", "sharpe", "drawdown", "win_rate", "frequency"}
    text = runner.invoke(app, ["health", "strategy"], env={"COLUMNS": "120"})
    assert text.exit_code == 0 and "PROBATION" in text.output and "decay gauges" in text.output
    reset = runner.invoke(app, ["health", "strategy", "--reset"])
    assert reset.exit_code == 0 and "a new probation" in reset.output
    assert json.loads(runner.invoke(app, ["health", "strategy", "--json"]).output)["trades"] == 0
