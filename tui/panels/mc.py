"""MC-Forewarner: catastrophic probability, envelope score, status and source (§28.6)."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Sparkline

from tui import format as fmt
from tui.panels.base import STATUS_STYLE, Panel, kv_table
from tui.state import MC


def _gauge(value: Any, style: str) -> Text:
    out = Text(fmt.bar(value, 14), style=style)
    out.append(f" {fmt.num(value, 3)}")
    return out


class McPanel(Panel):
    TITLE = "MC-Forewarner"
    TOPICS = frozenset({MC})
    SOURCES = (MC,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sparkline = Sparkline([], summary_function=max, id="mc-spark")

    def extras(self) -> ComposeResult:
        yield self.sparkline

    def body(self, now: float) -> RenderableType:
        mc = self.payload(MC)
        if mc is None:
            return self.missing_text(MC)
        prob = fmt.finite(mc.catastrophic_prob)
        # thresholds: GREEN < 0.10 ≤ ORANGE < 0.30 ≤ RED (§28.6)
        prob_style = "green" if prob is not None and prob < 0.10 else "dark_orange" if prob is not None \
            and prob < 0.30 else "red"
        status = fmt.text(mc.status, 8)
        head = Text(f" {status} ", style=STATUS_STYLE.get(status, "bold"))
        source = fmt.text(mc.source, 20)
        head.append(f"  {source}", style="yellow" if source.startswith("FALLBACK") else "dim")
        return kv_table([
            ("status", head),
            ("cat. prob", _gauge(prob, prob_style)),
            ("envelope", _gauge(mc.envelope_score, "cyan")),
        ], key_width=9)

    def refresh_extras(self, now: float) -> None:
        history = self.state.mc_history()
        self.sparkline.data = history or [0.0]
        if self.sparkline.display != (len(history) > 1):
            self.sparkline.display = len(history) > 1
