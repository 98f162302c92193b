"""OBF: the order-book universe snapshot (§26.2): coverage, spreads, depth, fill odds, imbalance."""

from __future__ import annotations

import statistics

from rich.console import RenderableType
from rich.text import Text

from tui import format as fmt
from tui.panels.base import Panel, kv_table
from tui.state import OBF

UNIVERSE = 540  # the USDT perpetuals the OBF service covers in production (§26.2)


def _median(values: list[float]) -> float | None:
    clean = [v for v in values if fmt.finite(v) is not None]
    return statistics.median(clean) if clean else None


def _mean(values: list[float]) -> float | None:
    clean = [v for v in values if fmt.finite(v) is not None]
    return sum(clean) / len(clean) if clean else None


class ObfPanel(Panel):
    TITLE = "OBF"
    TOPICS = frozenset({OBF})
    SOURCES = (OBF,)

    def body(self, now: float) -> RenderableType:
        obf = self.payload(OBF)
        if obf is None:
            return self.missing_text(OBF)
        assets = obf.assets or {}
        n = len(assets)
        cover = Text(f"{n} assets")
        if obf.n_assets != n:
            cover.append(f" (header says {obf.n_assets})", style="yellow")
        cover.append(f"  {n / UNIVERSE:.0%} of {UNIVERSE}", style="dim" if n >= 200 else "yellow")
        spreads = [a.spread_bps for a in assets.values()]
        widest = sorted(assets.items(), key=lambda kv: kv[1].spread_bps, reverse=True)[:2]
        wide = Text(", ".join(f"{k} {v.spread_bps:.1f}" for k, v in widest) or "—", style="dim")
        return kv_table([
            ("coverage", cover),
            ("spread", f"median {fmt.num(_median(spreads), 2)} bps"),
            ("depth 1%", f"median {fmt.money(_median([a.depth_1pct_usd for a in assets.values()]))} USD"),
            ("fill prob", f"mean {fmt.num(_mean([a.fill_probability for a in assets.values()]), 3)}"),
            ("imbalance", f"mean {fmt.num(_mean([a.imbalance for a in assets.values()]), 3, signed=True)}"),
            ("widest", wide),
        ], key_width=9)
