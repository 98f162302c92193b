"""Pilot tests against a real embedded member: bus puts reach the right panels, ages go stale, the link heals."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from dolphin.bus import Bus, BusSettings, EmbeddedMember, schema
from tests.support import free_port
from tests.tui import support as S
from tests.tui.support import FakeClock, panel_text, wait_for
from tui.app import build_live_app

pytestmark = pytest.mark.actor

SIZE = (160, 50)
FAST_RECONNECT = {"retry_initial_backoff": 0.05, "retry_max_backoff": 0.3, "retry_multiplier": 1.5}


def _app(settings: BusSettings, tmp_path: Path, clock: FakeClock, **feed: Any) -> Any:
    return build_live_app(settings=settings, socket_path=tmp_path / "no-supervisord.sock",
                          results_path=tmp_path / "results.json", clock=clock,
                          feed_options={"client_overrides": FAST_RECONNECT, **feed})


def _connected(app: Any) -> bool:
    return app.state.bus.state == "connected"


def test_puts_update_the_right_panels(settings: BusSettings, bus: Bus, tmp_path: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = _app(settings, tmp_path, clock)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: _connected(app))
            now = clock()
            bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(4242, now, vel_div=-0.0312))
            await wait_for(pilot, lambda: "#4242" in panel_text(app, "scan"))
            # every panel repaints from the same state, each in its own time: wait for each one
            await wait_for(pilot, lambda: "-0.0312" in (t := panel_text(app, "alpha")) and "SHORT signal" in t)
            await wait_for(pilot, lambda: "#4242" in panel_text(app, "trader"))
            assert "never published" in panel_text(app, "syshealth")  # untouched panels stay as they were

            bus.put(schema.META_HEALTH, schema.LATEST, S.meta_health(now, status="DEGRADED", rm=0.72))
            await wait_for(pilot, lambda: "DEGRADED" in panel_text(app, "syshealth"))
            assert "0.72" in panel_text(app, "syshealth")

            bus.put(schema.STATE_BLUE, schema.LATEST, S.strategy_state(now, capital=26_001.25))
            await wait_for(pilot, lambda: "26,001.25" in panel_text(app, "capital"))
            await wait_for(pilot, lambda: all(s in panel_text(app, "trader", width=80)
                                              for s in ("SHORT BTCUSDT", "64,123.50", "SOLUSDT")))

            bus.put(schema.SAFETY, schema.LATEST, S.safety(now, posture="TURTLE", rm=0.41))
            await wait_for(pilot, lambda: "TURTLE" in panel_text(app, "capital"))
            await wait_for(pilot, lambda: "TURTLE" in panel_text(app, "header", width=200))

            bus.put(schema.PNL_BLUE, "2026-04-05", S.daily_result(now, pnl=-123.45))
            await wait_for(pilot, lambda: "-123.45" in panel_text(app, "trader", width=80))

            for key, payload, panel, text in (
                    (schema.ACB_BOOST, S.acb(now), "acb", "1.347"),
                    (schema.EXF_LATEST, S.exf(now), "extf", "52.30"),
                    (schema.OBF_UNIVERSE_LATEST, S.obf(now), "obf", "5 assets"),
                    (schema.MC_FOREWARNER_LATEST, S.mc(now, prob=0.42), "mc", "RED")):
                bus.put(schema.FEATURES, key, payload)
                await wait_for(pilot, lambda panel=panel, text=text: text in panel_text(app, panel))
            for panel in ("scan", "syshealth", "capital", "acb", "extf", "obf", "mc"):
                assert app.query_one(f"#{panel}").has_class("-stale") is False
    asyncio.run(scenario())


def test_values_already_on_the_bus_show_at_start_and_ng7_reads(settings: BusSettings, bus: Bus, tmp_path: Path,
                                                              clock: FakeClock) -> None:
    now = clock()
    bus.put(schema.FEATURES, schema.ACB_BOOST, S.acb(now))
    bus.put(schema.PNL_BLUE, "2026-04-04", S.daily_result(now, pnl=1.0, day="2026-04-04"))
    bus.put(schema.PNL_BLUE, "2026-04-05", S.daily_result(now, pnl=77.7))
    bus.put(schema.HEARTBEAT, schema.heartbeat_key("scanner"), S.heartbeat("scanner", now))
    bus.map(schema.FEATURES).set(schema.LATEST_EIGEN_SCAN, S.scan_ng7(99, now))  # NG7 nested, raw

    async def scenario() -> None:
        app = _app(settings, tmp_path, clock)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: _connected(app))  # connected = the first read of every key is done
            await wait_for(pilot, lambda: "+77.70" in panel_text(app, "trader", width=80))
            await wait_for(pilot, lambda: all(s in panel_text(app, "scan") for s in ("NG7", "+0.01100", "9.500")))
            await wait_for(pilot, lambda: "-0.0200" in panel_text(app, "alpha"))  # vel_div = v50 − v750 for NG7 (§3.1)
            await wait_for(pilot, lambda: "1.347" in panel_text(app, "acb"))
            assert "+77.70" in panel_text(app, "trader", width=80)  # the latest date
            assert "scanner" in app.state.heartbeats()
            feed = app.feeds[0]
            reads = feed.snapshot_reads
            await pilot.press("r")  # force refresh: one more read of the shown keys, nothing else
            await wait_for(pilot, lambda: feed.snapshot_reads == reads + 1)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Refresh", "Log panel", "Toggle test footer", "Focus services", "Start service", "Stop service",
                    "Restart service", "Help", "Quit"} <= titles
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
            await pilot.press("escape")
    asyncio.run(scenario())


def test_staleness_appears_when_a_source_stops(settings: BusSettings, bus: Bus, tmp_path: Path) -> None:
    # Only `advance` moves this clock. It starts a minute behind real time so a payload "published now"
    # by it is never in the real future (the codec refuses those).
    clock = FakeClock(frozen=time.time() - 60)

    async def scenario() -> None:
        app = _app(settings, tmp_path, clock)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: _connected(app))
            now = clock()
            bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(1, now))
            bus.put(schema.META_HEALTH, schema.LATEST, S.meta_health(now))
            scan_panel, health = app.query_one("#scan"), app.query_one("#syshealth")
            await wait_for(pilot, lambda: "#1" in panel_text(app, "scan"))
            await wait_for(pilot, lambda: "ago" in scan_panel.age_text)
            assert not scan_panel.has_class("-stale")
            clock.advance(25)  # quiet but alive: under the 30 s threshold
            await wait_for(pilot, lambda: "25 s ago" in scan_panel.age_text)
            assert not scan_panel.has_class("-stale")
            clock.advance(10)  # the scanner stopped: 35 s without a scan
            await wait_for(pilot, lambda: scan_panel.has_class("-stale"))
            assert "STALE 35 s" in scan_panel.age_text
            assert health.has_class("-stale")  # MHS: 30 s too
            bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(2, clock()))  # it comes back
            await wait_for(pilot, lambda: not scan_panel.has_class("-stale"))
            assert health.has_class("-stale")
    asyncio.run(scenario())


@pytest.mark.degradation
def test_rejected_values_are_counted_in_the_header(settings: BusSettings, bus: Bus, tmp_path: Path,
                                                    clock: FakeClock) -> None:
    async def scenario() -> None:
        app = _app(settings, tmp_path, clock)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: _connected(app))
            raw = bus.map(schema.FEATURES)
            raw.set(schema.ACB_BOOST, '{"boost": NaN, "beta": 0.2}')
            raw.set(schema.EXF_LATEST, "not json at all")
            raw.set(schema.MC_FOREWARNER_LATEST, '{"status": "PURPLE", "catastrophic_prob": 2}')
            await wait_for(pilot, lambda: "rejected 3" in panel_text(app, "header", width=200))
            assert "never published" in panel_text(app, "acb")  # garbage never reaches a panel
            bus.put(schema.FEATURES, schema.ACB_BOOST, S.acb(clock()))
            await wait_for(pilot, lambda: "1.347" in panel_text(app, "acb"))
    asyncio.run(scenario())


@pytest.mark.degradation
def test_a_lost_bus_shows_in_the_header_and_the_app_reconnects(tmp_path: Path, clock: FakeClock) -> None:
    port = free_port()
    first = EmbeddedMember(port=port).start()
    settings = BusSettings(members=(f"127.0.0.1:{port}",), connect_timeout_s=10.0)
    from dolphin.bus import connect

    async def scenario() -> None:
        app = _app(settings, tmp_path, clock, connect_timeout_s=1.0, retry_s=(0.2, 0.5))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: _connected(app))
            w = connect(settings)
            Bus(w).put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(10, clock()))
            w.shutdown()
            await wait_for(pilot, lambda: "#10" in panel_text(app, "scan"))
            first.stop()
            await wait_for(pilot, lambda: "bus LOST" in panel_text(app, "header", width=200))
            await wait_for(pilot, lambda: app.query_one("#scan").has_class("-stale"))  # data of a lost bus is not trusted as fresh
            assert "bus lost" in app.query_one("#scan").age_text
            second = EmbeddedMember(port=port).start()
            try:
                await wait_for(pilot, lambda: _connected(app))
                w2 = connect(settings)
                Bus(w2).put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(11, clock()))
                w2.shutdown()
                await wait_for(pilot, lambda: "#11" in panel_text(app, "scan"))
                await wait_for(pilot, lambda: "bus ●" in panel_text(app, "header", width=200))
            finally:
                second.stop()
    asyncio.run(scenario())


def test_cold_start_without_a_bus_says_so(tmp_path: Path, clock: FakeClock) -> None:
    settings = BusSettings(members=(f"127.0.0.1:{free_port()}",), connect_timeout_s=10.0)

    async def scenario() -> None:
        app = _app(settings, tmp_path, clock, connect_timeout_s=0.5, retry_s=(0.2,))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "bus DOWN" in panel_text(app, "header", width=200))
            assert "no bus connection yet" in panel_text(app, "scan")
            assert "supervisord is not running" in panel_text(app, "services", width=120)
    asyncio.run(scenario())
