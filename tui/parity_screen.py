"""The parity screen (`p`, or the palette's "Parity and strategy health"): the parity and strategy health panels.

A modal over the main screen rather than two more cells of its grid (the 120×40 layout is
full); its panels join the app's refresh list while it is open, so they are fed by push
and age-ticked like every other panel.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.panels.parity import ParityPanel
from tui.panels.strategy import StrategyHealthPanel
from tui.state import TuiState


class ParityScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,p", "close", "Close")]
    DEFAULT_CSS = """
    #parity-box { height: auto; max-height: 90%; }
    #parity-panels { height: auto; }
    #parity-panels > .panel { width: 1fr; height: auto; min-height: 12; }
    """

    def __init__(self, state: TuiState) -> None:
        super().__init__()
        self.panels = [ParityPanel(state, id="parity"), StrategyHealthPanel(state, id="strategy-health")]

    def compose(self) -> ComposeResult:
        with Vertical(id="parity-box", classes="modal-box"):
            with Horizontal(id="parity-panels"):
                yield from self.panels
            yield Static("[dim]esc to close · `dolphin parity` and `dolphin health strategy` for the details[/dim]")

    def _app_panels(self) -> list[Any] | None:
        panels = getattr(self.app, "panels", None)
        return panels if isinstance(panels, list) else None

    def on_mount(self) -> None:
        panels = self._app_panels()
        if panels is not None:
            panels.extend(self.panels)

    def on_unmount(self) -> None:
        panels = self._app_panels()
        if panels is not None:
            for panel in self.panels:
                if panel in panels:
                    panels.remove(panel)

    def action_close(self) -> None:
        self.dismiss(None)
