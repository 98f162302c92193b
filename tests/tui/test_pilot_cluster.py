"""The header against a real 3-member Hazelcast cluster: members and partition health, a lost member, its return."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dolphin.bus import Bus, connect, schema
from tests.hzcluster import RealCluster, require_real_cluster
from tests.tui import support as S
from tests.tui.support import FakeClock, panel_text, wait_for
from tui.app import build_live_app

pytestmark = [pytest.mark.actor, pytest.mark.degradation]

SIZE = (220, 50)


def test_header_shows_members_and_partitions_and_a_lost_member(tmp_path: Path) -> None:
    require_real_cluster()
    cluster = RealCluster(tmp_path / "hz", 3).start()
    settings = cluster.bus_settings()
    clock = FakeClock()

    def header(app: object) -> str:
        return panel_text(app, "header", width=260)

    async def scenario() -> None:
        app = build_live_app(settings=settings, socket_path=tmp_path / "no-supervisord.sock",
                             results_path=tmp_path / "results.json", clock=clock,
                             feed_options={"client_overrides": {"retry_max_backoff": 0.3}})
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "3/3 members · 271/271 partitions" in header(app), timeout=30)
            writer = connect(settings)
            Bus(writer).put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(7, clock()))
            await wait_for(pilot, lambda: "#7" in panel_text(app, "scan"))
            victim = cluster.members[2]
            await asyncio.to_thread(victim.kill9)
            await wait_for(pilot, lambda: "2/3 members · 271/271 partitions" in header(app), timeout=60)
            Bus(writer).put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(8, clock()))  # still served
            await wait_for(pilot, lambda: "#8" in panel_text(app, "scan"), timeout=30)
            await asyncio.to_thread(cluster.restart, victim)
            await wait_for(pilot, lambda: "3/3 members · 271/271 partitions" in header(app), timeout=60)
            writer.shutdown()

    try:
        asyncio.run(scenario())
    finally:
        cluster.stop()
