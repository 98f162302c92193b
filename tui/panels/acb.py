"""ACB: the adaptive circuit breaker's boost and beta (§10, ``DOLPHIN_FEATURES["acb_boost"]``)."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text

from tui import format as fmt
from tui.panels.base import Panel, kv_table
from tui.state import ACB


class AcbPanel(Panel):
    TITLE = "ACB"
    TOPICS = frozenset({ACB})
    SOURCES = (ACB,)

    def body(self, now: float) -> RenderableType:
        acb = self.payload(ACB)
        if acb is None:
            return self.missing_text(ACB)
        boost = fmt.finite(acb.boost)
        b = Text(fmt.num(boost, 3), style="bold")
        if boost is not None:
            b.append("  " + ("raised" if boost > 1.0 else "neutral" if boost == 1.0 else "cut"),
                     style="yellow" if boost != 1.0 else "dim")
        beta = Text(fmt.bar(acb.beta, 12), style="cyan")
        beta.append(f" {fmt.num(acb.beta, 3)}")
        rows: list[tuple[str, RenderableType | str]] = [("boost", b), ("beta", beta), ("signals", fmt.num(acb.signals, 1)), ("date", fmt.text(acb.date, 10))]
        if acb.pushed_at is None:
            rows.append(("", Text("no _pushed_at: age counts from receipt", style="dim")))
        return kv_table(rows, key_width=8)
