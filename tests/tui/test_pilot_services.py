"""Pilot tests against a real supervisord: the services table, restart from the TUI, log tails, publisher state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dolphin.bus import Bus, BusSettings, schema
from dolphin.supervision.programs import BY_NAME
from tests.tui import support as S
from tests.tui.support import FakeClock, panel_text, wait_for
from tui.app import build_live_app

pytestmark = pytest.mark.actor

SIZE = (160, 50)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[S.MiniSupervisor]:
    sup = S.MiniSupervisor(tmp_path / "family").start()
    try:
        yield sup
    finally:
        sup.stop()


def _app(settings: BusSettings, tmp_path: Path, sup: S.MiniSupervisor, clock: FakeClock) -> Any:
    return build_live_app(settings=settings, socket_path=sup.socket, results_path=tmp_path / "results.json",
                          clock=clock, poll_s=0.5)


def _rows(app: Any) -> dict[str, list[str]]:
    table = app.query_one("#services-table")
    return {str(key.value): [str(c) for c in table.get_row(key)] for key in table.rows}


def test_services_table_reflects_supervisord(settings: BusSettings, bus: Bus, tmp_path: Path, clock: FakeClock,
                                             supervisor: S.MiniSupervisor) -> None:
    async def scenario() -> None:
        app = _app(settings, tmp_path, supervisor, clock)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: len(_rows(app)) == 2)
            rows = _rows(app)
            real = {p.fullname: p for p in supervisor.client.all_processes()}
            for name, cells in rows.items():
                assert cells[0] == real[name].name and cells[2] == "RUNNING" and cells[3] == str(real[name].pid)
            await wait_for(pilot, lambda: "2/2 running" in panel_text(app, "services", width=120))
            # a heartbeat on the bus fills the "beat" column
            bus.put(schema.HEARTBEAT, schema.heartbeat_key("scanner"), S.heartbeat("scanner", clock()))
            await wait_for(pilot, lambda: _rows(app)["dolphin_data:scanner"][5].endswith(" s"))
            # the publisher of a missing key is named with its supervisord state
            await wait_for(pilot, lambda: "acb is RUNNING" in panel_text(app, "acb", width=120))
            await wait_for(pilot, lambda: "scanner is RUNNING" in panel_text(app, "scan", width=120))
            expected = "not a program of this supervisord" if "exf" in BY_NAME else "not part of the family yet"
            await wait_for(pilot, lambda: expected in panel_text(app, "extf", width=120))
            # a service stopped behind the TUI's back shows within a poll
            supervisor.client.stop("dolphin_data:acb")
            await wait_for(pilot, lambda: _rows(app)["dolphin_data:acb"][2] == "STOPPED")
            await wait_for(pilot, lambda: "acb is STOPPED" in panel_text(app, "acb", width=120))
            await wait_for(pilot, lambda: "1/2 running" in panel_text(app, "services", width=120))
    asyncio.run(scenario())


def test_restart_from_the_tui_restarts_the_service(settings: BusSettings, tmp_path: Path, clock: FakeClock,
                                                   supervisor: S.MiniSupervisor) -> None:
    async def scenario() -> None:
        app = _app(settings, tmp_path, supervisor, clock)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: len(_rows(app)) == 2)
            before = supervisor.client.process("dolphin_data:scanner").pid
            await pilot.press("s")  # focus the services table
            table = app.query_one("#services-table")
            assert app.focused is table
            keys = [str(k.value) for k in table.rows]
            table.move_cursor(row=keys.index("dolphin_data:scanner"))
            await pilot.press("enter")  # offers start/stop/restart
            await wait_for(pilot, lambda: type(app.screen).__name__ == "ServiceActionScreen")
            await pilot.press("r")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
            assert "Restart dolphin_data:scanner?" in str(app.screen.question)
            await pilot.press("y")
            await wait_for(pilot, lambda: app.last_action is not None, what="the restart's result")
            assert app.last_action.ok, app.last_action.detail
            after = supervisor.client.process("dolphin_data:scanner")
            assert after.state == "RUNNING" and after.pid != before
            assert f"{before} → {after.pid}" in app.last_action.detail
            await wait_for(pilot, lambda: _rows(app)["dolphin_data:scanner"][3] == str(after.pid))
            # declining the confirmation does nothing: once the dialogs are gone, no action was started
            app.last_action = None
            await pilot.press("enter")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "ServiceActionScreen")
            await pilot.press("p")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
            await pilot.press("n")
            await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="the dialogs to close")
            assert app.last_action is None
            assert supervisor.client.process("dolphin_data:scanner").pid == after.pid
    asyncio.run(scenario())


def test_log_panel_tails_the_selected_service(settings: BusSettings, tmp_path: Path, clock: FakeClock,
                                              supervisor: S.MiniSupervisor) -> None:
    async def scenario() -> None:
        app = _app(settings, tmp_path, supervisor, clock)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: len(_rows(app)) == 2)
            await pilot.press("s")
            table = app.query_one("#services-table")
            keys = [str(k.value) for k in table.rows]
            table.move_cursor(row=keys.index("dolphin_data:acb"))
            await pilot.press("l")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "LogScreen")
            log = app.screen.query_one("#log-view")
            await wait_for(pilot, lambda: any("acb started pid" in line for line in log.lines))
            assert app.screen.fullname == "dolphin_data:acb"
            await pilot.press("escape")
            await wait_for(pilot, lambda: type(app.screen).__name__ != "LogScreen")
    asyncio.run(scenario())


@pytest.mark.degradation
def test_supervisord_going_away_is_shown_not_fatal(settings: BusSettings, tmp_path: Path, clock: FakeClock,
                                                  supervisor: S.MiniSupervisor) -> None:
    async def scenario() -> None:
        app = _app(settings, tmp_path, supervisor, clock)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: len(_rows(app)) == 2)
            supervisor.stop()
            await wait_for(pilot, lambda: "supervisord is not running" in panel_text(app, "services", width=120))
            await wait_for(pilot, lambda: app.query_one("#services").has_class("-stale"))
            await wait_for(pilot, lambda: "supervisord not reachable" in panel_text(app, "scan", width=120))
    asyncio.run(scenario())
