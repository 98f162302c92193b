"""OBF: the order-book universe live (§26.2, §9.2): coverage, regime, cascades, worst spreads, thinnest books.

Three keys of the OBF daemon feed it: the 60 s universe snapshot (spreads, depth, fill
odds per asset), the per-bar macro (regime, cascade count, market imbalance) and the
daemon's status (how many symbols it subscribed, the bus circuit). The age line shows the
snapshot's and the macro's ages; either going stale turns the panel red.
"""

from __future__ import annotations

import statistics

from rich.console import RenderableType
from rich.text import Text

from dolphin.enums import ObRegime
from tui import format as fmt
from tui.panels.base import Panel, kv_table
from tui.state import OB_MACRO, OBF, OBF_STATUS

REGIME_STYLE = {ObRegime.CALM: "bold green", ObRegime.NEUTRAL: "bold", ObRegime.STRESS: "bold red"}
SHOWN = 2   # worst spreads and thinnest books named


def _short(symbol: str) -> str:
    """``BTCUSDT`` → ``BTC``: every symbol here is USDT-quoted, the suffix only costs width."""
    return symbol[:-4] if symbol.endswith("USDT") and len(symbol) > 4 else symbol


def _median(values: list[float]) -> float | None:
    clean = [v for v in values if fmt.finite(v) is not None]
    return statistics.median(clean) if clean else None


class ObfPanel(Panel):
    TITLE = "OBF"
    TOPICS = frozenset({OBF, OB_MACRO, OBF_STATUS})
    SOURCES = (OBF, OB_MACRO)

    def body(self, now: float) -> RenderableType:
        obf = self.payload(OBF)
        macro = self.payload(OB_MACRO)
        status = self.payload(OBF_STATUS)
        if obf is None and macro is None:
            return self.missing_text(OBF)
        rows: list[tuple[str, RenderableType | str]] = []
        if macro is not None:
            regime = ObRegime.of_signal(macro.regime_signal)
            line = Text(regime.value, style=REGIME_STYLE[regime])
            line.append(f"  cascades {macro.cascade_count}", style="bold red" if macro.cascade_count else "")
            line.append(f"  imb {fmt.num(macro.market_imbalance, 3, signed=True)}", style="dim")
            rows.append(("regime", line))
        else:
            rows.append(("regime", Text("no macro yet", style="dim")))
        if obf is not None:
            assets = obf.assets or {}
            n = len(assets)
            cover = Text(f"{n} assets")
            if status is not None and status.symbols:
                cover.append(f" of {status.symbols}", style="dim" if n >= 0.9 * status.symbols else "yellow")
            if obf.n_assets != n:
                cover.append(f" (header says {obf.n_assets})", style="yellow")
            rows.append(("coverage", cover))
            spreads = [a.spread_bps for a in assets.values()]
            widest = sorted(assets.items(), key=lambda kv: kv[1].spread_bps, reverse=True)[:SHOWN]
            wide = Text(f"med {fmt.num(_median(spreads), 2)} bp  ")
            wide.append(", ".join(f"{_short(k)} {v.spread_bps:.1f}" for k, v in widest) or fmt.DASH, style="yellow")
            rows.append(("spread", wide))
            depths = [a.depth_1pct_usd for a in assets.values()]
            thinnest = sorted(assets.items(), key=lambda kv: kv[1].depth_1pct_usd)[:SHOWN]
            thin = Text(f"med {fmt.usd(_median(depths))}  ")
            thin.append(", ".join(f"{_short(k)} {fmt.usd(v.depth_1pct_usd)}" for k, v in thinnest) or fmt.DASH,
                        style="yellow")
            rows.append(("depth 1%", thin))
        else:
            rows.append(("coverage", self.missing_text(OBF)))
        if status is not None and status.circuit != "closed":
            rows.append(("bus", Text(f"circuit {status.circuit}: fallback file", style="bold red")))
        return kv_table(rows, key_width=9)
