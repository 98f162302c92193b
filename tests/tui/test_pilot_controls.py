"""Pilot tests of the operator's controls against a real embedded member and real files: the kill
switch (level, reason, confirmation, header on every screen), a force exit of the position the
trader publishes, and the trade history read from a journal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from dolphin.bus import Bus, BusSettings, schema
from dolphin.engine.trades import ClosedTrade
from dolphin.enums import KillLevel
from dolphin.execution.controls import TraderControls
from dolphin.store.journal import Commit, Journal, SessionStart, TradeRecord
from tests.tui import support as S
from tests.tui.support import FakeClock, panel_text, wait_for
from tui.app import build_live_app
from tui.controls import KillSwitchScreen, ReasonScreen, TradesScreen

pytestmark = pytest.mark.actor

SIZE = (160, 50)


def _app(settings: BusSettings, tmp_path: Path, clock: FakeClock, controls: TraderControls) -> Any:
    return build_live_app(settings=settings, socket_path=tmp_path / "no-supervisord.sock",
                          results_path=tmp_path / "results.json", clock=clock, controls=controls)


@pytest.fixture
def controls(tmp_path: Path) -> TraderControls:
    return TraderControls.under(tmp_path / "home", "blue", "KILL")


def test_kill_switch_needs_a_level_a_reason_and_a_confirmation(settings: BusSettings, tmp_path: Path,
                                                               clock: FakeClock, controls: TraderControls) -> None:
    async def scenario() -> None:
        app = _app(settings, tmp_path, clock, controls)
        async with app.run_test(size=SIZE) as pilot:
            assert "KILL" not in panel_text(app, "header", width=200)
            # escape at the reason leaves the switch as it was
            await pilot.press("k")
            await wait_for(pilot, lambda: isinstance(app.screen, KillSwitchScreen))
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, ReasonScreen))
            assert not controls.kill.state_path.exists() and controls.kill.level() is KillLevel.CLEAR

            await pilot.press("k")
            await wait_for(pilot, lambda: isinstance(app.screen, KillSwitchScreen))
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press(*"flash crash", "enter")
            await wait_for(pilot, lambda: app.last_control is not None)
            state = controls.kill.state()
            assert state.level is KillLevel.HALT and state.reason == "flash crash" and state.by.endswith("(tui)")
            assert app.last_control.ok and "HALT" in app.last_control.detail
            await wait_for(pilot, lambda: "KILL HALT" in panel_text(app, "header", width=200))

            # set behind the TUI's back (the CLI, another operator): the header follows the file
            controls.kill.engage(KillLevel.PAUSE, reason="cli")
            await wait_for(pilot, lambda: "KILL PAUSE" in panel_text(app, "header", width=200))

            app.last_control = None
            await pilot.press("k", "c")
            await wait_for(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press("enter")          # an empty reason is allowed: the who and when are journaled
            await wait_for(pilot, lambda: app.last_control is not None)
            assert controls.kill.level() is KillLevel.CLEAR
            await wait_for(pilot, lambda: "KILL" not in panel_text(app, "header", width=200))
    asyncio.run(scenario())


def test_force_exit_requests_the_published_position(settings: BusSettings, bus: Bus, tmp_path: Path,
                                                    clock: FakeClock, controls: TraderControls) -> None:
    async def scenario() -> None:
        app = _app(settings, tmp_path, clock, controls)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.state.bus.state == "connected")
            now = clock()
            bus.put(schema.STATE_BLUE, schema.LATEST, S.strategy_state(now, position=False))
            await wait_for(pilot, lambda: "flat" in panel_text(app, "trader", width=100))
            await pilot.press("x")             # nothing open: said, nothing written
            await pilot.pause(0.05)
            assert not isinstance(app.screen, ReasonScreen) and controls.exits.pending() == []

            bus.put(schema.STATE_BLUE, schema.LATEST, S.strategy_state(now, position=True))
            scan = msgspec.structs.replace(S.scan(107, now), asset_prices={"BTCUSDT": 63_500.0})
            bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, scan)
            # the position line carries the engine's marks: SHORT from 64,123.50 at 63,500 is +0.97 %
            await wait_for(pilot, lambda: "mark 63,500.00" in panel_text(app, "trader", width=140))
            trader = panel_text(app, "trader", width=140)
            assert "+116.68 (+0.97%)" in trader and "TP 63,514.33 reached" in trader and "held        6 bars (30 s) · 114 to max hold" in trader, trader

            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press(*"news", "enter")
            await wait_for(pilot, lambda: app.last_control is not None)
            pending = controls.exits.pending()
            assert [(r.asset, r.reason) for r in pending] == [("BTCUSDT", "news")] and pending[0].by.endswith("(tui)")
            assert app.last_control.ok and "BTCUSDT" in app.last_control.detail
    asyncio.run(scenario())


def _trade(tid: int, asset: str, pnl: float, reason: str) -> ClosedTrade:
    ts = 1_775_390_400_000 + tid * 60_000
    return ClosedTrade(trade_id=tid, asset=asset, side="SHORT", entry_bar=tid * 10, entry_ts=ts - 60_000,
                       entry_price=100.0, exit_bar=tid * 10 + 12, exit_ts=ts, exit_price=99.0, notional=1000.0,
                       leverage=1.0, fraction=0.1, pnl=pnl, pnl_pct=pnl / 1000, entry_fee=0.5, exit_fee=0.5,
                       exit_reason=reason, bars_held=12, bucket=3, vel_div_entry=-0.03, confidence=0.6,
                       capital_after=25_000.0 + pnl)


def test_trade_history_reads_the_journal_and_filters(settings: BusSettings, tmp_path: Path, clock: FakeClock,
                                                     controls: TraderControls) -> None:
    trades = [_trade(1, "BTCUSDT", 10.0, "FIXED_TP"), _trade(2, "ETHUSDT", -4.0, "MAX_HOLD"),
              _trade(3, "BTCUSDT", 6.0, "MANUAL")]
    journal = Journal(controls.journal, fsync=False)
    journal.append(SessionStart(seq=journal.next_seq(), wall_ts=0.0, strategy="blue", config_hash="x", venue="sim",
                                book_id="b", pid=1))
    for t in trades:
        journal.append(TradeRecord(seq=journal.next_seq(), scan_number=t.exit_bar, trade=msgspec.to_builtins(t)),
                       Commit(seq=journal.next_seq(), scan_number=t.exit_bar, capital=t.capital_after))
    journal.close()

    async def scenario() -> None:
        app = _app(settings, tmp_path, clock, controls)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, TradesScreen))
            screen = app.screen
            table = screen.query_one("#trades-table")
            await wait_for(pilot, lambda: table.row_count == 3)
            assert [str(k.value) for k in table.rows] == ["3", "2", "1"]          # newest first
            summary = str(screen.query_one("#trades-summary").content)
            assert "3 of 3 trades" in summary and "+12.00" in summary and "66.7%" in summary
            await pilot.press("slash", *"manual")
            await wait_for(pilot, lambda: table.row_count == 1)
            assert [str(k.value) for k in table.rows] == ["3"]
            assert "1 of 3 trades" in str(screen.query_one("#trades-summary").content)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, TradesScreen))
    asyncio.run(scenario())
