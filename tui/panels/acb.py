"""ACB: the adaptive circuit breaker's boost, beta and signals (§10, ``DOLPHIN_FEATURES["acb_boost"]``).

Boost comes from the §10.2 signals of the external factors it used (a stale factor is
left out and named), beta from where w750 stands against its trailing percentile (and
OB-4's stress uplift); the last line says what made the ACB re-evaluate and who wrote it.
"""

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
        if acb.ob_stress:
            beta.append("  OB stress", style="yellow")
        signals = Text(fmt.num(acb.signals, 1))
        if acb.factors or acb.stale_factors:
            signals.append(f"  from {len(acb.factors)}/4 factors", style="dim")
        if acb.stale_factors:
            signals.append(f"  stale: {', '.join(acb.stale_factors)}", style="red")
        rows: list[tuple[str, RenderableType | str]] = [("boost", b), ("beta", beta), ("signals", signals)]
        if acb.w750_now is not None:
            w = Text(f"{acb.w750_now:+.5f}")
            if acb.w750_threshold is not None:
                w.append(f" {'≥' if acb.w750_now >= acb.w750_threshold else '<'} p60 {acb.w750_threshold:+.5f}",
                         style="dim")
            else:
                w.append("  (too little history: beta low)", style="dim")
            rows.append(("w750", w))
        rows.append(("date", fmt.text(acb.date, 10)))
        if acb.trigger or acb.writer:
            who = Text(fmt.text(acb.trigger, 8) if acb.trigger else "", style="cyan")
            if acb.computed_at is not None:
                who.append(f" {fmt.age(now - acb.computed_at)} ago", style="dim")
            if acb.writer:
                who.append(f"  {fmt.text(acb.writer, 22)}" + (f" fence {acb.fence}" if acb.fence is not None else ""),
                           style="dim")
            rows.append(("verdict", who))
        if acb.pushed_at is None:
            rows.append(("", Text("no _pushed_at: age counts from receipt", style="dim")))
        return kv_table(rows, key_width=8)
