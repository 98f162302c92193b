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
            p.append("  Rm ", style="dim")
            p.append(fmt.bar(safety.rm, 10), style="cyan")
            p.append(f" {fmt.num(safety.rm, 3)}")
            rows.append(("posture", p))
            sensors = safety.sensors or {}
            if sensors:
                rows.append(("sensors", _sensors(sensors)))
        parts: list[RenderableType] = [kv_table(rows, key_width=9)] if rows else []
        if safety is not None and safety.reason:
            parts.append(Text(fmt.text(safety.reason, 150), style="yellow", overflow="fold"))
        return Group(*parts, *missing)


#: the survival stack's categories (§11.2) by the engine's names, shortened for one line
SENSOR_SHORT = (("cat1_invariant", "C1"), ("cat2_structural", "C2"), ("cat3_microstructure", "C3"),
                ("cat4_environmental", "C4"), ("cat5_capital", "C5"))


def _sensors(sensors: dict[str, float]) -> Text:
    """The five categories on one line, a degraded one (< 0.8, §11.3) in red; other names as sent."""
    out = Text()
    known = [(short, sensors[name]) for name, short in SENSOR_SHORT if name in sensors]
    if not known:
        known = [(k, v) for k, v in list(sensors.items())[:5]]
    for i, (label, value) in enumerate(known):
        if i:
            out.append(" ")
        out.append(f"{label} ", style="dim")
        out.append(fmt.num(value, 2), style="red" if value < 0.8 else "")
    return out
