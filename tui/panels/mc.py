"""MC-Forewarner: status, catastrophic probability with its history, envelope, source, paths (§28.6).

The probability's colour is the published §28.6 status of that probability
(`dolphin.engine.mc_gate.status_for_probability`), not a threshold of the TUI's own.
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Sparkline

from dolphin.engine.mc_gate import status_for_probability
from tui import format as fmt
from tui.panels.base import STATUS_STYLE, Panel, kv_table
from tui.state import MC

PROB_STYLE = {"GREEN": "green", "ORANGE": "dark_orange", "RED": "red"}


def _gauge(value: Any, style: str) -> Text:
    out = Text(fmt.bar(value, 14), style=style)
    out.append(f" {fmt.num(value, 3)}")
    return out


def _paths(mc: Any) -> Text:
    """``1,000 × 7 d ≥12.0%``: how many paths, how long, the drawdown that counts; a fallback's reason."""
    paths = getattr(mc, "paths", None)
    if paths is None:
        return Text(fmt.DASH, style="dim")
    if paths == 0:
        return Text(fmt.text(getattr(mc, "reason", None) or "none", 28), style="yellow")
    out = Text(f"{paths:,}")
    horizon = fmt.finite(getattr(mc, "horizon_days", None))
    if horizon is not None:
        out.append(f" × {horizon:g} d")
    limit = fmt.finite(getattr(mc, "drawdown_limit", None))
    if limit is not None:
        out.append(f" dd≥{fmt.pct(limit)}", style="dim")
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
        prob_style = PROB_STYLE[status_for_probability(prob if prob is not None else float("nan"))]
        status = fmt.text(mc.status, 8)
        head = Text(f" {status} ", style=STATUS_STYLE.get(status, "bold"))
        source = fmt.text(mc.source, 20)
        head.append(f"  {source}", style="yellow" if source.startswith("FALLBACK") else "dim")
        return kv_table([
            ("status", head),
            ("cat. prob", _gauge(prob, prob_style)),
            ("envelope", _gauge(mc.envelope_score, "cyan")),
            ("paths", _paths(mc)),
        ], key_width=9)

    def refresh_extras(self, now: float) -> None:
        history = self.state.mc_history()
        self.sparkline.data = history or [0.0]
        if self.sparkline.display != (len(history) > 1):
            self.sparkline.display = len(history) > 1
