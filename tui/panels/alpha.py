"""AlphaEngine: vel_div against the entry gate, the signal state, and a sparkline of recent vel_div (§4.1)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Sparkline

from dolphin.bus import scan_view
from tui import format as fmt
from tui.panels.base import Panel, kv_table
from tui.state import SCAN, Thresholds


def signal_state(vel_div: float | None, th: Thresholds) -> tuple[str, str]:
    """(label, style) of the §4.1 gate: below the threshold is a SHORT signal, below extreme is EXTREME."""
    if vel_div is None:
        return "—", "dim"
    if th.direction == "short":
        if vel_div <= th.extreme:
            return "EXTREME SHORT", "bold white on red"
        if vel_div <= th.threshold:
            return "SHORT signal", "bold red"
        return "no signal", "green"
    if vel_div >= th.extreme:
        return "EXTREME LONG", "bold white on green"
    if vel_div >= th.threshold:
        return "LONG signal", "bold green"
    return "no signal", "dim"


def gate_line(vel_div: float | None, th: Thresholds, width: int = 24) -> Text:
    """A scale from 2×extreme to +|extreme| with the threshold (|), extreme (!) and vel_div (●)."""
    lo = min(th.extreme * 2, -abs(th.extreme) * 2)
    hi = abs(th.extreme)
    cells = ["─"] * width

    def at(v: float) -> int:
        return max(0, min(width - 1, round((v - lo) / (hi - lo) * (width - 1))))

    cells[at(th.extreme)] = "!"
    cells[at(th.threshold)] = "|"
    cells[at(0.0)] = "0"
    out = Text()
    if vel_div is not None:
        idx = at(vel_div)
        for i, c in enumerate(cells):
            out.append("●" if i == idx else c, style="bold yellow" if i == idx else "dim")
    else:
        out.append("".join(cells), style="dim")
    return out


class AlphaPanel(Panel):
    TITLE = "AlphaEngine"
    TOPICS = frozenset({SCAN})
    SOURCES = (SCAN,)

    def __init__(self, *args: Any, thresholds: Thresholds | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.thresholds = thresholds or Thresholds()
        self.sparkline = Sparkline([], summary_function=min, id="vel-div-spark")

    def extras(self) -> ComposeResult:
        yield self.sparkline

    def body(self, now: float) -> RenderableType:
        scan = self.payload(SCAN)
        th = self.thresholds
        if scan is None:
            return Group(self.missing_text(SCAN),
                         Text(f"gate {th.direction}: threshold {th.threshold:+.3f} extreme {th.extreme:+.3f}",
                              style="dim"))
        view = scan_view(scan)
        vd = fmt.finite(view.vel_div)
        label, style = signal_state(vd, th)
        value = Text(fmt.num(vd, 4, signed=True), style="bold")
        value.append("  ")
        value.append(f" {label} ", style=style)
        history = self.state.vel_div_history()
        rows: list[tuple[str, RenderableType | str]] = [
            ("vel_div", value),
            ("gate", gate_line(vd, th)),
            ("gate at", f"{th.threshold:+.3f} | extreme {th.extreme:+.3f} ! {th.direction}"),
            ("recent", f"{len(history)} scans {fmt.num(min(history) if history else None, 4, signed=True)}"
                       f" … {fmt.num(max(history) if history else None, 4, signed=True)}"),
        ]
        return kv_table(rows, key_width=9)

    def refresh_extras(self, now: float) -> None:
        history = self.state.vel_div_history()
        self.sparkline.data = history or [0.0]
        if self.sparkline.display != bool(history):
            self.sparkline.display = bool(history)
