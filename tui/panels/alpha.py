"""AlphaEngine: vel_div against the entry gate, the signal state, and a sparkline of recent vel_div (§4.1)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Sparkline

from dolphin.engine.params import StrategyConfig
from dolphin.engine.signal import classify
from dolphin.enums import PositionSide, SignalState
from tui import format as fmt
from tui.panels.base import Panel, kv_table
from tui.state import SCAN, StrategyView

_LABELS: dict[SignalState, tuple[str, str]] = {
    SignalState.UNDEFINED: ("—", "dim"),
    SignalState.NONE: ("no signal", "green"),
    SignalState.SIGNAL: ("{side} signal", "bold red"),
    SignalState.EXTREME: ("EXTREME {side}", "bold white on red"),
}


def signal_state(vel_div: float | None, cfg: StrategyConfig) -> tuple[str, str]:
    """(label, style) of the engine's own §4.1 classification of `vel_div` under `cfg`."""
    label, style = _LABELS[classify(vel_div, cfg)]
    side = PositionSide.of(cfg.direction_sign)
    if side is PositionSide.LONG:
        style = style.replace("red", "green")
    return label.format(side=side.value), style


def gate_line(vel_div: float | None, cfg: StrategyConfig, width: int = 24) -> Text:
    """A scale from 2×extreme to +|extreme| with the threshold (|), extreme (!) and vel_div (●)."""
    threshold, extreme = cfg.signal_threshold, cfg.signal_extreme
    lo = min(extreme * 2, -abs(extreme) * 2)
    hi = abs(extreme)
    cells = ["─"] * width

    def at(v: float) -> int:
        return max(0, min(width - 1, round((v - lo) / (hi - lo) * (width - 1))))

    cells[at(extreme)] = "!"
    cells[at(threshold)] = "|"
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

    def __init__(self, *args: Any, strategy: StrategyView, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategy = strategy
        self.sparkline = Sparkline([], summary_function=min, id="vel-div-spark")

    def extras(self) -> ComposeResult:
        yield self.sparkline

    def body(self, now: float) -> RenderableType:
        scan = self.state.scan_record() if self.payload(SCAN) is not None else None
        cfg = self.strategy.config
        if cfg is None:
            return Group(Text(f"gate unknown: {self.strategy.error}", style="yellow"),
                         self.missing_text(SCAN) if scan is None else Text(""))
        direction = PositionSide.of(cfg.direction_sign).value.lower()
        gate = f"threshold {cfg.signal_threshold:+.3f} extreme {cfg.signal_extreme:+.3f}"
        if scan is None:
            return Group(self.missing_text(SCAN), Text(f"gate {direction}: {gate}", style="dim"))
        vd = fmt.finite(scan.vel_div)
        label, style = signal_state(vd, cfg)
        value = Text(fmt.num(vd, 4, signed=True), style="bold")
        value.append("  ")
        value.append(f" {label} ", style=style)
        history = self.state.vel_div_history()
        rows: list[tuple[str, RenderableType | str]] = [
            ("vel_div", value),
            ("gate", gate_line(vd, cfg)),
            ("gate at", f"{cfg.signal_threshold:+.3f} | extreme {cfg.signal_extreme:+.3f} ! {direction}"),
            ("recent", f"{len(history)} scans {fmt.num(min(history) if history else None, 4, signed=True)}"
                       f" … {fmt.num(max(history) if history else None, 4, signed=True)}"),
        ]
        return kv_table(rows, key_width=9)

    def refresh_extras(self, now: float) -> None:
        history = self.state.vel_div_history()
        self.sparkline.data = history or [0.0]
        if self.sparkline.display != bool(history):
            self.sparkline.display = bool(history)
