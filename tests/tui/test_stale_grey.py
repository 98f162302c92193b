"""A stale panel greys its values: a green GREEN from a dead feed must not read as health."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from dolphin.bus import Bus, BusSettings, schema
from tests.tui import _support as S
from tests.tui.conftest import FakeClock, panel_text, wait_for
from tui.app import build_live_app

pytestmark = pytest.mark.actor


def _colours(panel: Any) -> set[tuple[int, int, int]]:
    body = panel.body_widget
    out = set()
    for y in range(body.size.height):
        for seg in body.render_line(y):
            if seg.style is not None and seg.style.color is not None:
                out.add(seg.style.color.get_truecolor())
    return out


def _grey(rgb: tuple[int, int, int]) -> bool:
    return max(rgb) - min(rgb) <= 2


def test_stale_health_is_drawn_in_greys_and_colour_returns_with_fresh_data(
        settings: BusSettings, bus: Bus, tmp_path: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        app = build_live_app(settings=settings, socket_path=tmp_path / "none.sock", results_path=tmp_path / "r.json",
                             clock=clock, controls=None)
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: app.state.bus.state == "connected")
            bus.put(schema.META_HEALTH, schema.LATEST, S.meta_health(clock(), status="GREEN"))
            panel = app.query_one("#syshealth")
            await wait_for(pilot, lambda: "GREEN" in panel_text(app, "syshealth"))
            await wait_for(pilot, lambda: any(not _grey(c) for c in _colours(panel)))   # green, in colour

            clock.advance(120.0)                      # past MHS's 30 s: the feed is dead
            await wait_for(pilot, lambda: panel.has_class("-stale"))
            await wait_for(pilot, lambda: _colours(panel) and all(_grey(c) for c in _colours(panel)))
            assert "GREEN" in panel_text(app, "syshealth")       # the last value is still there, greyed

            clock.advance(-120.0)                     # (the codec dates values on the real clock)
            bus.put(schema.META_HEALTH, schema.LATEST, S.meta_health(clock(), status="GREEN"))
            await wait_for(pilot, lambda: not panel.has_class("-stale"))
            await wait_for(pilot, lambda: any(not _grey(c) for c in _colours(panel)))
    asyncio.run(scenario())
