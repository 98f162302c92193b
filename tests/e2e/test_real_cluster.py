"""The family on a real 3-member Hazelcast cluster (`dolphin up --bus external`): lose a member mid-session.

Real parts throughout: three JVM members, supervisord, the simulator, the scanner, MHS
and the paper trader. During the paper session one member is killed with SIGKILL: its
partitions' backups take over, the clients carry on with the survivors, MHS M4 drops
(two of three members) and comes back when the member is restarted and rejoins; the
rejoined member serves the family's clients again. Nothing is lost: the archive has
every scan once, the journal has every scan in order, and `backtest --journal` over
the archive gives the trader's trades exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.hzcluster import RealCluster, require_real_cluster

from .session_checks import assert_nothing_lost, journal, last_commit, with_trader_log
from .support import Family, start_family, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.degradation]

CLIENTS = ("dolphin-scanner", "dolphin-trader", "dolphin-mhs")


def health(home: Path) -> dict[str, Any]:
    """MHS's own report file (written every check, whatever the bus does)."""
    path = home / "meta_health.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def hz_status(fam: Family) -> dict[str, Any]:
    res = fam.cli("hz", "status", "--json", "--timeout", "10", check=True)
    return json.loads(res.stdout)


def test_the_family_trades_on_a_real_cluster_and_survives_losing_a_member(tmp_path: Path) -> None:
    require_real_cluster()
    cluster = RealCluster(tmp_path / "hz", 3).start()
    fam: Family | None = None
    try:
        fam = start_family(tmp_path / "home", speed=20.0, args=("--bus", "external"), extra_env={
            "DOLPHIN_HZ_MEMBERS": cluster.members_env, "DOLPHIN_HZ_CLUSTER": cluster.cluster_name,
            "DOLPHIN_MHS_INTERVAL": "2", "DOLPHIN_TRADER_STALE_AFTER_S": "600"})  # 30 s of wall time at 20×
        home = fam.home
        assert "hz" not in fam.status()  # no embedded member with an external cluster
        conf = (home / "supervisor" / "dolphin-supervisord.conf").read_text()
        assert f'DOLPHIN_HZ_MEMBERS="{cluster.members_env}"' in conf
        # Hazelcast assigns the partitions at the first operation that needs them: wait, never sample
        status = wait_for(lambda: (st := hz_status(fam))["cluster"]["owned"] == 271 and st, 60,
                          "every partition owned by a member")
        assert status["embedded"] is False
        assert sorted(m["address"] for m in status["members"]) == sorted(cluster.addresses)

        # a closed trade first: scans the failover delays are not traded (stale, or filled from the archive),
        # so a session whose first entry fell into that window would have nothing to compare
        with_trader_log(fam, lambda: wait_for(lambda: any(r["type"] == "trade" for r in journal(home)), 240,
                                              "the first closed paper trade"))
        wait_for(lambda: health(home).get("m4_control_plane") == pytest.approx(1.0), 60, "MHS M4 at 1.0")

        victim = cluster.members[1]
        victim.kill9()
        scans_at_kill = len(fam.archive_numbers())
        # two of three members, every partition owned again: the bus part of M4 at 2/3 until the rejoin
        # (right after the kill it may dip lower for a moment, while the backups are promoted)
        wait_for(lambda: health(home).get("m4_control_plane") == pytest.approx(0.8 * 2 / 3 + 0.2, abs=0.01), 60,
                 "MHS M4 to see two of three members")
        status = wait_for(lambda: (st := hz_status(fam))["cluster"]["owned"] == 271 and st, 60,
                          "every partition owned by a live member (the backups promoted)")
        assert len(status["members"]) == 2 and status["cluster"]["missing"] == [victim.address]
        journaled = sum(r["type"] == "scan" for r in journal(home))
        wait_for(lambda: sum(r["type"] == "scan" for r in journal(home)) >= journaled + 5, 120,
                 "the trader still trading with a member down")
        assert len(fam.archive_numbers()) > scans_at_kill

        cluster.restart(victim)
        cluster.wait_size(3)
        wait_for(lambda: health(home).get("m4_control_plane") == pytest.approx(1.0), 60, "MHS M4 back at 1.0")
        # the rejoined member serves the family again: every daemon's client authenticated with it
        wait_for(lambda: all(f"client name: {c}," in victim.log_text() for c in CLIENTS), 60,
                 "the daemons' clients to connect to the rejoined member")
        assert len(hz_status(fam)["members"]) == 3

        last = fam.archive_numbers()[-1]
        with_trader_log(fam, lambda: wait_for(
            lambda: last_commit(home) > last + 5,
            120, "the trader live after the rejoin"))
        fam.cli("svc", "stop", "trader", check=True)  # freeze the books to compare them
        assert assert_nothing_lost(fam, journal(home)) >= 1
        statuses = {name: p["state"] for name, p in fam.status().items()}
        assert statuses["scanner"] == statuses["mhs"] == statuses["sim"] == "RUNNING", statuses
    finally:
        if fam is not None:
            fam.down()
        cluster.stop()
