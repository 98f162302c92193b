"""The daemon family under a real supervisord: up, svc, kill -9, down (issue 7)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.support import Family, start_family, wait_for
from tests.support import pid_alive

pytestmark = [pytest.mark.slow, pytest.mark.degradation]


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory):
    # MHS recovery off here: these tests stop services on purpose and check they stay stopped
    fam = start_family(tmp_path_factory.mktemp("family"), speed=30.0,
                       extra_env={"DOLPHIN_MHS_RECOVERY": "0", "DOLPHIN_OBF_WARMUP_S": "1", "DOLPHIN_OBF_SNAPSHOT_S": "2"})
    try:
        yield fam
    finally:
        fam.down()


def test_up_brings_every_autostart_program_to_running(family: Family) -> None:
    procs = family.status()
    for name in ("hz", "sim", "scanner", "obf", "exf", "acb", "watchdog", "mcfw", "mhs", "trader"):
        assert procs[name]["state"] == "RUNNING", procs[name]
    assert "bridge" not in procs          # no external scanner configured: the family has no bridge
    conf = (family.home / "supervisor" / "dolphin-supervisord.conf").read_text()
    assert "[group:dolphin_data]" in conf and "[group:dolphin]" in conf and "inet_http_server" not in conf
    sock = family.home / "supervisor" / "supervisor.sock"
    assert sock.exists() and (sock.stat().st_mode & 0o077) == 0


def test_up_twice_reports_the_running_family(family: Family) -> None:
    res = family.cli("up", "--detach", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["already_running"] is True and {p["name"] for p in out["processes"]} >= {"hz", "sim", "scanner"}


def test_scans_reach_the_archive_and_the_bus(family: Family) -> None:
    from dolphin.bus import Bus, schema

    wait_for(lambda: len(family.archive_numbers()) > 10, 120, "scans in the archive")
    client = family.bus_client()
    try:
        scan = wait_for(lambda: Bus(client).get(schema.FEATURES, schema.LATEST_EIGEN_SCAN), 60, "a scan on the bus")
    finally:
        client.shutdown()
    # the scanner puts a scan before it writes its file (the file follows within milliseconds;
    # scan N+1 is published only once N's file exists)
    numbers = wait_for(lambda: (ns := family.archive_numbers()) and scan.scan_number in ns and ns, 60,
                       f"scan {scan.scan_number}'s file")
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(scan.asset_prices) == 50


def test_restart_scanner_gives_a_new_pid(family: Family) -> None:
    before = family.pid("scanner")
    res = family.cli("svc", "restart", "scanner")
    assert res.returncode == 0, res.stderr
    after = family.status()["scanner"]
    assert after["state"] == "RUNNING" and after["pid"] != before and not pid_alive(before)


def test_obf_publishes_the_universe_and_restarts_through_svc(family: Family) -> None:
    from dolphin.bus import Bus, schema

    client = family.bus_client()
    try:
        universe = wait_for(lambda: (u := Bus(client).get(schema.FEATURES, schema.OBF_UNIVERSE_LATEST)) and
                            u.n_assets == 50 and u, 120, "the OBF universe of the simulator's 50 perpetuals")
        assert "BTCUSDT" in universe.assets and Bus(client).get(schema.FEATURES, schema.OB_MACRO_LATEST) is not None
    finally:
        client.shutdown()
    status = wait_for(lambda: (r := family.cli("obf", "status", "--json")).returncode == 0 and
                      (out := json.loads(r.stdout))["status"]["phase"] == "live" and out, 60, "obf status")
    assert status["status"]["covered"] == 50 and status["status"]["circuit"] == "closed" and not status["stale"]
    before = family.pid("obf")
    res = family.cli("svc", "restart", "obf")
    assert res.returncode == 0, res.stderr
    after = family.status()["obf"]
    assert after["state"] == "RUNNING" and after["pid"] != before and not pid_alive(before)
    wait_for(lambda: json.loads(family.cli("obf", "status", "--json").stdout)["status"]["pid"] == after["pid"], 60,
             "the restarted daemon's status")
    rows = wait_for(lambda: (r := family.cli("obf", "query", "--asset", "BTCUSDT", "--json")).returncode == 0
                    and json.loads(r.stdout)["rows"], 60, "BTCUSDT in the OB history")
    assert {"bar_ms", "imbalance_ma5", "depth_quality"} <= set(rows[0])


def test_the_risk_daemons_restart_through_svc_and_publish_again(family: Family) -> None:
    """`dolphin svc restart exf acb watchdog`: each back under supervisord with a new pid, each key rewritten."""
    from dolphin.bus import schema

    names = ("exf", "acb", "watchdog")
    before = {n: family.pid(n) for n in names}
    since = time.time()
    res = family.cli("svc", "restart", *names)
    assert res.returncode == 0, res.stderr
    after = family.status()
    for n in names:
        assert after[n]["state"] == "RUNNING" and after[n]["pid"] != before[n] and not pid_alive(before[n]), n
    client = family.bus_client()
    try:
        from dolphin.bus.access import Bus

        bus = Bus(client, source="e2e")
        for map_name, key in ((schema.FEATURES, schema.EXF_LATEST), (schema.FEATURES, schema.ACB_BOOST),
                              (schema.SAFETY, schema.LATEST)):
            wait_for(lambda m=map_name, k=key: (p := bus.get(m, k)) is not None and (p.timestamp_s() or 0) >= since,
                     120, f"{map_name}[{key}] from the restarted daemon")
    finally:
        client.shutdown()


def test_mcfw_reports_at_start_and_again_after_svc_restart(family: Family) -> None:
    """A fresh family has minutes of scans: the forewarner says FALLBACK_NO_DATA (§28.6), and says it again
    when restarted through supervisord."""
    import time

    from dolphin.bus import Bus, schema

    client = family.bus_client()
    try:
        bus = Bus(client)
        first = wait_for(lambda: bus.get(schema.FEATURES, schema.MC_FOREWARNER_LATEST), 180, "an MC report")
        assert (first.status, first.catastrophic_prob, first.envelope_score, first.source) == (
            "ORANGE", 0.20, 0.80, "FALLBACK_NO_DATA")
        before = family.pid("mcfw")
        since = time.time()
        res = family.cli("svc", "restart", "mcfw")
        assert res.returncode == 0, res.stderr
        after = family.status()["mcfw"]
        assert after["state"] == "RUNNING" and after["pid"] != before and not pid_alive(before)
        again = wait_for(lambda: (m := bus.get(schema.FEATURES, schema.MC_FOREWARNER_LATEST)) is not None
                         and m.timestamp_s() >= since and m, 180, "an MC report from the restarted mcfw")
        assert again.source == "FALLBACK_NO_DATA" and len(again.prob_history or ()) >= 2
    finally:
        client.shutdown()


def test_stop_and_start(family: Family) -> None:
    assert family.cli("svc", "stop", "scanner").returncode == 0
    assert family.status()["scanner"]["state"] == "STOPPED"
    again = family.cli("svc", "stop", "scanner")
    assert again.returncode == 33 and "not running" in again.stderr          # stopping a stopped service
    assert family.cli("svc", "start", "dolphin_data:scanner").returncode == 0  # group:name works too
    twice = family.cli("svc", "start", "scanner")
    assert twice.returncode == 32 and "already running" in twice.stderr
    assert family.status()["scanner"]["state"] == "RUNNING"


def test_logs_through_supervisord(family: Family) -> None:
    res = family.cli("svc", "logs", "scanner", "-n", "5")
    assert res.returncode == 0 and 0 < len(res.stdout.strip().splitlines()) <= 5


def test_unknown_service_lists_the_valid_ones(family: Family) -> None:
    res = family.cli("svc", "restart", "nosuch")
    assert res.returncode == 31 and "valid: hz, sim, scanner" in res.stderr and "Traceback" not in res.stderr


def test_kill_9_scanner_leaves_no_gap_and_no_duplicate(family: Family) -> None:
    wait_for(lambda: len(family.archive_numbers()) > 20, 120, "scans before the kill")
    pid = family.pid("scanner")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: (p := family.process("scanner")).state == "RUNNING" and p.pid != pid, 90,
             "supervisord to restart the scanner")
    n_after_restart = len(family.archive_numbers())
    wait_for(lambda: len(family.archive_numbers()) > n_after_restart + 10, 120, "live scans after the restart")
    numbers = family.archive_numbers()
    assert numbers == list(range(1, len(numbers) + 1)), "the archive has a gap or a duplicate"
    from dolphin.store.scan_archive import load_arrow_scans

    table = load_arrow_scans(family.home)
    steps = set((table.ts[1:] - table.ts[:-1]).tolist())
    assert steps == {5000}, steps                                                # one scan per 5 s bar


def test_down_leaves_no_process(tmp_path: Path) -> None:
    fam = start_family(tmp_path / "home", speed=10.0, extra_env={"DOLPHIN_MHS_RECOVERY": "0"})
    pids = {p["pid"] for p in fam.status().values() if p["pid"]}
    sup_pid = int((fam.home / "supervisor" / "supervisord.pid").read_text())
    res = fam.cli("down")
    assert res.returncode == 0, res.stderr
    assert not any(pid_alive(pid) for pid in pids | {sup_pid})
    assert fam.cli("svc", "status").returncode == 30                            # no supervisord any more
    assert "not running" in fam.cli("down").stdout                             # idempotent
