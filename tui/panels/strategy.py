"""Strategy health: the state (probation → healthy / watch / degrading / disabled) and the decay gauges.

Shows `DOLPHIN_FEATURES["strategy_health_latest"]` (the parity daemon). Each gauge is a live
rolling metric as a ratio of the registered backtest baseline; its colour band (≥ 0.8 /
0.5–0.8 / < 0.5) is the report's (`GaugeLevel`), not decided here.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from tui import format as fmt
from tui.panels.base import Panel, kv_table
from tui.state import HEALTH

STATE_STYLE = {"probation": "bold white on grey35", "healthy": "bold green", "watch": "bold yellow",
               "degrading": "bold dark_orange", "disabled": "bold white on red"}
LEVEL_STYLE = {"good": "green", "warn": "yellow", "bad": "red", "none": "dim"}
LABEL = {"expectancy": "expect.", "sharpe": "Sharpe", "drawdown": "drawdown", "win_rate": "win rate",
         "frequency": "freq."}


class StrategyHealthPanel(Panel):
    TITLE = "Strategy health"
    TOPICS = frozenset({HEALTH})
    SOURCES = (HEALTH,)

    def body(self, now: float) -> RenderableType:
        h = self.payload(HEALTH)
        if h is None:
            return self.missing_text(HEALTH)
        state = fmt.text(h.state, 12)
        head = Text()   # the badge style on its span only: a Text-wide style would paint what follows
        head.append(f" {state.upper()} ", style=STATE_STYLE.get(state, "bold"))
        head.append(f"  {fmt.integer(h.trades)} trades", style="dim")
        if h.kill_engaged:
            head.append("  entries paused", style="bold red")
        if h.error:
            return Group(head, Text(fmt.text(h.error, 200), style="red"))
        rows: list[tuple[str, RenderableType | str]] = []
        for g in h.gauges:
            level = str(g.level)
            gauge = Text(fmt.bar(g.ratio, 10), style=LEVEL_STYLE.get(level, ""))
            if g.baseline is None:
                gauge.append(" no baseline", style="dim")
            else:
                gauge.append(f" {fmt.num(g.ratio, 2)}×", style=LEVEL_STYLE.get(level, ""))
            rows.append((LABEL.get(g.metric, fmt.text(g.metric, 9)), gauge))
        lines: list[RenderableType] = [head, kv_table(rows, key_width=8)]
        if h.dd_stress is not None:
            lines.append(Text(f"DD stress {fmt.num(h.dd_stress, 2)}", style="dim"))
        for reason in h.reasons[:2]:
            lines.append(Text(fmt.text(reason, 120), style="yellow"))
        return Group(*lines)
