"""ExtF: the external factors ACB Scale 1 reads (funding, DVOL, fear & greed, taker ratio; §10.2)."""

from __future__ import annotations

from rich.console import RenderableType

from tui import format as fmt
from tui.panels.base import Panel, kv_table
from tui.state import EXF


class ExtFPanel(Panel):
    TITLE = "ExtF"
    TOPICS = frozenset({EXF})
    SOURCES = (EXF,)

    def body(self, now: float) -> RenderableType:
        exf = self.payload(EXF)
        if exf is None:
            return self.missing_text(EXF)
        return kv_table([
            ("funding BTC", fmt.num(exf.funding_btc, 6, signed=True)),
            ("DVOL BTC", fmt.num(exf.dvol_btc, 2)),
            ("fear&greed", fmt.num(exf.fng, 0)),
            ("taker ratio", fmt.num(exf.taker, 3)),
        ], key_width=11)
