"""The charts screen (``c`` or the palette's "Charts"): equity over drawdown, vel_div against the gate.

A full screen with the header on top (posture, bus, kill switch — as on every screen), the
two chart panels (`tui.panels.charts`) and the key footer; ``esc`` or ``c`` goes back.
While it is open its panels join the app's panel list, so the app's one drain of dirty
topics and its 1 s tick refresh them exactly like the grid's: push, never a poll.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from tui.panels.base import Panel
from tui.panels.charts import EquityChartPanel, VelDivChartPanel
from tui.panels.header import HeaderPanel
from tui.state import StrategyView, TuiState


class ChartsScreen(Screen[None]):
    BINDINGS = [Binding("escape,c", "close", "Back")]
    CSS = """
    ChartsScreen { layout: vertical; }
    ChartsScreen .chart-panel { height: 1fr; }
    ChartsScreen #chart-equity { height: 3fr; }
    ChartsScreen #chart-vel-div { height: 2fr; }
    ChartsScreen .chart-panel > .body { height: auto; }
    ChartsScreen PlotextPlot { height: 1fr; min-height: 3; }
    ChartsScreen #equity-plot { height: 2fr; }
    """

    def __init__(self, state: TuiState, strategy: StrategyView) -> None:
        super().__init__()
        self.state = state
        self.strategy = strategy
        self.panels: list[Panel] = [
            HeaderPanel(state, id="header"),
            EquityChartPanel(state, id="chart-equity"),
            VelDivChartPanel(state, id="chart-vel-div", strategy=strategy),
        ]

    def compose(self) -> ComposeResult:
        yield from self.panels
        yield Footer()

    def _host(self) -> list[Any] | None:
        panels = getattr(self.app, "panels", None)
        return panels if isinstance(panels, list) else None

    def on_mount(self) -> None:
        host = self._host()
        if host is not None:
            host.extend(p for p in self.panels if p not in host)

    def on_unmount(self) -> None:
        host = self._host()
        if host is not None:
            host[:] = [p for p in host if p not in self.panels]

    def action_close(self) -> None:
        self.dismiss(None)
