"""The charts screen: equity over drawdown and vel_div against the gate (textual-plotext).

Snapshots at 120×40 and 200×50 with a frozen clock (update with ``--snapshot-update`` after
a deliberate change and review the SVGs); the screen's text is also read back from the SVG
and checked against the state it was drawn from. Pilot tests: the key and the palette
entry open it, new state reaches it by push, ``esc`` closes it, a replay journal feeds it.
"""

from __future__ import annotations

import asyncio
import html
import math
import re
from pathlib import Path
from typing import Any

import pytest

from dolphin.bus import BusEvent, schema
from dolphin.engine.params import StrategyConfig
from tests.tui import support as S
from tests.tui.support import plain, wait_for
from tests.tui.test_snapshots import CATALOG
from tui.app import DolphinTui
from tui.charts_screen import ChartsScreen
from tui.panels.charts import EquityChartPanel, VelDivChartPanel
from tui.replay import JournalEvent
from tui.state import LINK_CONNECTED, LINK_REPLAY, StrategyView, TuiState

pytestmark = pytest.mark.data_integrity

CFG = StrategyConfig()
STRATEGY = StrategyView(config=CFG, source="test")
CAPITALS = [25_000.0, 25_120.5, 24_980.0, 25_210.0, 25_150.0]   # then S.fill's state: 25,431.55


def _state() -> TuiState:
    state = TuiState(clock=lambda: S.T0, catalog=CATALOG)
    state.rejections = lambda: 0
    state.set_bus(LINK_CONNECTED, address="127.0.0.1:5701")
    for i, capital in enumerate(CAPITALS):   # the trader's state over the last 50 minutes
        at = S.T0 - 3000 + 600 * i
        state.deliver(BusEvent(schema.STATE_BLUE, schema.LATEST, "ADDED", S.strategy_state(at, capital=capital), at))
    for i in range(80):                      # vel_div swinging through the gate
        vd = round(0.025 * math.sin(i / 6) - 0.012, 4)
        state.deliver(BusEvent(schema.FEATURES, schema.LATEST_EIGEN_SCAN, "ADDED",
                               S.scan(4120 + i, S.T0 - 3, vel_div=vd), S.T0 - 3))
    S.fill(state, published=S.T0 - 3)        # every panel's source; the last scan is #4223
    return state


def _app(state: TuiState, tmp_path: Path) -> DolphinTui:
    return DolphinTui(state=state, results_path=tmp_path / "none.json", strategy=STRATEGY)


def svg_lines(svg: str) -> list[str]:
    """The screen's text rows from a Textual SVG screenshot (text elements grouped by y, ordered by x)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text[^>]*\bx="([\d.]+)"[^>]*\by="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    return ["".join(t for _, t in sorted(parts)).replace("\xa0", " ") for _, parts in sorted(rows.items())]


def _check_screen(lines: list[str], height: int) -> None:
    text = "\n".join(lines)
    assert "Equity & drawdown" in text and "vel_div & entry gate" in text
    assert "capital 25,431.55  peak 25,600.00  drawdown 0.66 %" in text      # the trader's state
    assert "+431.55 over 6 level(s)" in text                                   # 25,000 → 25,431.55
    assert f"threshold {CFG.signal_threshold:+.3f}" in text and f"extreme {CFG.signal_extreme:+.3f}" in text
    assert "equity" in text and "drawdown %" in text and "vel_div" in text    # the plots' legends
    assert "#4120 … #4223 (104)" in text and "scan number" in text
    for label in ("11:10", "11:59"):                                           # the time axis (UTC)
        assert label in text
    assert "4120" in text and "4223" in text                                   # the scan axis
    assert "25431.5" in text and "24980.0" in text                             # the equity axis spans the curve
    assert "esc" in lines[-1] and "Back" in lines[-1]                          # the footer
    assert len(lines) >= height


async def _open(pilot: Any, captured: list[str]) -> None:
    await pilot.press("c")
    await pilot.pause()
    captured.append(pilot.app.export_screenshot())


@pytest.mark.parametrize("size", [(120, 40), (200, 50)], ids=["120x40", "200x50"])
def test_charts_screen(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    captured: list[str] = []
    assert snap_compare(_app(_state(), tmp_path), terminal_size=size, run_before=lambda p: _open(p, captured))
    _check_screen(svg_lines(captured[0]), size[1])


def test_charts_open_follow_the_state_and_close(tmp_path: Path) -> None:
    state = _state()
    app = _app(state, tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            assert any(c.title == "Charts" for c in app.get_system_commands(app.screen))
            base = len(app.panels)
            await pilot.press("c")
            await wait_for(pilot, lambda: isinstance(app.screen, ChartsScreen))
            screen = app.screen
            assert all(p in app.panels for p in screen.panels) and len(app.panels) == base + 3
            equity = screen.query_one(EquityChartPanel)
            vel_div = screen.query_one(VelDivChartPanel)
            # a trade closes: the trader publishes a new capital; the chart follows by push
            state.deliver(BusEvent(schema.STATE_BLUE, schema.LATEST, "ADDED",
                                   S.strategy_state(S.T0 - 1, capital=25_500.25), S.T0 - 1))
            await wait_for(pilot, lambda: "+500.25 over 7 level(s)" in plain(equity.body_widget.content, 100))
            found = equity.series()
            assert found is not None and found[0].equity[-1] == 25_500.25
            state.deliver(BusEvent(schema.FEATURES, schema.LATEST_EIGEN_SCAN, "ADDED",
                                   S.scan(4224, S.T0 - 1, vel_div=-0.0611), S.T0 - 1))
            await wait_for(pilot, lambda: "-0.0611" in plain(vel_div.body_widget.content, 100))
            assert "EXTREME" in plain(vel_div.body_widget.content, 100)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, ChartsScreen))
            assert len(app.panels) == base and equity not in app.panels
    asyncio.run(scenario())


def test_charts_from_a_replay_journal_and_with_nothing_published(tmp_path: Path) -> None:
    state = TuiState(clock=lambda: S.T0, catalog=CATALOG)
    state.set_bus(LINK_REPLAY, address="scans/")
    app = _app(state, tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("c")
            await wait_for(pilot, lambda: isinstance(app.screen, ChartsScreen))
            equity = app.screen.query_one(EquityChartPanel)
            assert "is not in this replay" in plain(equity.body_widget.content, 100)
            assert not equity.equity_plot.display and not app.screen.query_one(VelDivChartPanel).plot.display
            for k, capital in enumerate([25_000.0, 25_000.0, 25_040.0, 24_990.0]):   # commits, one per scan
                state.add_journal(JournalEvent(S.T0 - 300 + 60 * k, "capital", capital, 10 + k))
            await wait_for(pilot, lambda: "(replay journal)" in plain(equity.body_widget.content, 100))
            assert state.equity_history() == [(int((S.T0 - 300) * 1000), 25_000.0),
                                              (int((S.T0 - 180) * 1000), 25_040.0),
                                              (int((S.T0 - 120) * 1000), 24_990.0)]
            assert "max drawdown 0.20 %" in plain(equity.body_widget.content, 100)   # 25,040 → 24,990
            assert equity.equity_plot.display and equity.age_text == "replay journal"
    asyncio.run(scenario())
