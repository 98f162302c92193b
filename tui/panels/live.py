"""Live: `dolphin live`'s venue, user-data stream, orders, reconciliation and alerts (``StrategyState.live``).

Shown only while the trader on the bus is a live one (a paper trader publishes no
``live`` block): the panel takes no room on a paper family's screen. Active alerts —
standing mismatches, UNKNOWN positions — come first, in red; what each means and what to
do is in docs/live.md ("Alerts").
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from tui import format as fmt
from tui.panels.base import Panel, kv_table
from tui.state import STRATEGY

RECENT_SHOWN = 4


def _alert_line(a: Any, style: str) -> Text:
    out = Text()
    out.append(time.strftime("%H:%M:%S ", time.localtime(a.at)), style="dim")
    out.append(f"{a.kind}", style=style)
    if a.symbol:
        out.append(f" {a.symbol}", style="bold")
    out.append(f" {fmt.text(a.detail, 70)}")
    return out


class LivePanel(Panel):
    TITLE = "Live"
    TOPICS = frozenset({STRATEGY})
    SOURCES = (STRATEGY,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.display = False     # until a live trader publishes

    def live(self) -> Any:
        st = self.payload(STRATEGY)
        return getattr(st, "live", None) if st is not None else None

    def refresh_extras(self, now: float) -> None:
        shown = self.live() is not None
        if self.display != shown:
            self.display = shown

    def body(self, now: float) -> RenderableType:
        live = self.live()
        if live is None:
            return Text("no live trader on the bus", style="dim")
        net = Text(f" {live.network.upper()} ", style="bold white on red" if live.network == "mainnet"
                   else "bold black on yellow" if live.network == "testnet" else "bold")
        stream = Text("connected" if live.stream_connected else "DOWN",
                      style="green" if live.stream_connected else "bold red")
        stream.append(f"  reconnects {live.stream_reconnects}  renewals {live.listen_key_renewals}  storm "
                      f"{live.storm_waits}", style="dim")
        if live.positions_unknown:
            positions = Text("UNKNOWN — entries blocked", style="bold red")
        else:
            held = ", ".join(f"{s} {a:+g}" for s, a in live.venue_positions.items())
            positions = Text(held or "flat")
            if live.disputed:
                positions.append(f"  disputed: {', '.join(live.disputed)}", style="bold red")
        recon = Text("ok" if live.last_reconcile_ok else "NOT ok", style="green" if live.last_reconcile_ok else "red")
        recon.append(f"  {live.reconciles} runs, {live.reconcile_failures} failed", style="dim")
        rejects = sum(live.risk_rejects.values())
        orders = Text(f"{live.orders} sent, {live.fills} fills ({live.partial_fills} partial)")
        orders.append(f"  rejects venue {live.venue_rejects} risk {rejects}  lost acks {live.lost_acks}",
                      style="yellow" if live.venue_rejects or rejects else "dim")
        latency = f"{fmt.num(live.last_latency_ms, 1)} ms (p50 {fmt.num(live.latency_p50_ms, 1)})"
        if live.last_slippage_bps is not None:
            latency += f"  slippage {live.last_slippage_bps:+.1f} bps"
        rows: list[tuple[str, RenderableType | str]] = [
            ("venue", net), ("stream", stream), ("positions", positions), ("reconcile", recon), ("orders", orders),
            ("latency", latency),
            ("wallet", f"{fmt.money(live.wallet)}  auto pause {live.pauses} halt {live.halts}")]
        parts: list[RenderableType] = [kv_table(rows, key_width=9)]
        for a in live.active_alerts:
            parts.append(_alert_line(a, "bold red"))
        for a in list(live.recent_alerts)[-RECENT_SHOWN:]:
            if all(a.at != b.at or a.kind != b.kind for b in live.active_alerts):
                parts.append(_alert_line(a, "green" if a.action == "info" else "yellow"))
        return Group(*parts)


__all__ = ["LivePanel"]
