"""ExtF: the external factors ACB Scale 1 reads (funding, DVOL, fear & greed, taker ratio; §10.2), with ages.

Each factor shows its value and how long ago its source last answered (ExF keeps a
failing source's last value and says so): a stale factor is red, and the sources that
are failing right now are named below.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from tui import format as fmt
from tui.panels.base import Panel, kv_table
from tui.state import EXF

ROWS = (("funding BTC", "funding_btc", 6, True), ("DVOL BTC", "dvol_btc", 2, False), ("fear&greed", "fng", 0, False),
        ("taker ratio", "taker", 3, False))


class ExtFPanel(Panel):
    TITLE = "ExtF"
    TOPICS = frozenset({EXF})
    SOURCES = (EXF,)
    AGE_IN_BODY = True   # each factor's own age moves with the clock

    def tick_key(self, now: float) -> object:
        exf = self.payload(EXF)
        if exf is None:
            return ()
        return tuple(fmt.age(exf.age_of(name, now)) for _, name, _, _ in ROWS)

    def body(self, now: float) -> RenderableType:
        exf = self.payload(EXF)
        if exf is None:
            return self.missing_text(EXF)
        stale = set(exf.stale)
        rows: list[tuple[str, RenderableType | str]] = []
        for label, name, digits, signed in ROWS:
            value = Text(fmt.num(exf.value(name), digits, signed=signed).ljust(10),
                         style="red" if name in stale else "")
            age = exf.age_of(name, now)
            if age is not None or exf.ages:
                value.append(f" {fmt.age(age)} ago" if age is not None else " never", style="red" if name in stale
                             else "dim")
            if name in stale:
                value.append("  STALE", style="bold red")
            rows.append((label, value))
        parts: list[RenderableType] = [kv_table(rows, key_width=11)]
        for name, error in sorted(exf.errors.items()):
            parts.append(Text(fmt.text(f"{name}: {error}", 96), style="yellow", overflow="fold"))
        return Group(*parts)
