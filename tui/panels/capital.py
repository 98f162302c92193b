"""Capital: capital, peak, drawdown (``DOLPHIN_STATE_BLUE``), Rm and posture (``DOLPHIN_SAFETY``, §11)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from tui import format as fmt
from tui.panels.base import STATUS_STYLE, Panel, kv_table
from tui.state import SAFETY, STRATEGY


class CapitalPanel(Panel):
    TITLE = "Capital"
    TOPICS = frozenset({STRATEGY, SAFETY})
    SOURCES = (STRATEGY, SAFETY)

    def body(self, now: float) -> RenderableType:
        st = self.payload(STRATEGY)
        safety = self.payload(SAFETY)
        rows: list[tuple[str, RenderableType | str]] = []
        missing: list[RenderableType] = []  # after the values: what is there comes first
        if st is None:
            missing.append(self.missing_text(STRATEGY))
        else:
            dd = fmt.finite(st.drawdown)
            ddt = Text(fmt.pct(dd, 2), style="red" if dd and dd > 0.05 else "yellow" if dd and dd > 0.02 else "green")
            ddt.append("  " + fmt.bar(min((dd or 0.0) / 0.20, 1.0), 10), style="red" if dd and dd > 0.05 else "dim")
            rows += [("capital", Text(fmt.money(st.capital), style="bold")), ("peak", fmt.money(st.peak_capital)),
                     ("drawdown", ddt), ("day PnL", fmt.money(st.pnl, signed=True))]
        if safety is None:
            if st is not None and getattr(st, "posture", None):  # no watchdog: the trader's own posture
                rows.append(("posture", Text.assemble((f" {st.posture} ", STATUS_STYLE.get(st.posture, "bold")),
                                                      (" (trader)", "dim"))))
            missing.append(self.missing_text(SAFETY))
        else:
            posture = fmt.text(safety.posture, 10)
            p = Text(f" {posture} ", style=STATUS_STYLE.get(posture, "bold"))
            rm = Text(fmt.bar(safety.rm, 10), style="cyan")
            rm.append(f" {fmt.num(safety.rm, 3)}")
            rows += [("posture", p), ("Rm", rm)]
            sensors = safety.sensors or {}
            if sensors:
                rows.append(("sensors", Text("  ".join(f"{k} {fmt.num(v, 2)}" for k, v in list(sensors.items())[:5]),
                                             style="dim")))
            if safety.reason:
                rows.append(("reason", Text(fmt.text(safety.reason, 48), style="yellow")))
        parts: list[RenderableType] = [kv_table(rows, key_width=9)] if rows else []
        return Group(*parts, *missing)
