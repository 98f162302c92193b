"""Header: wall clock, market time, posture, bus member and link state, rejected values (§28.2)."""

from __future__ import annotations

from rich.text import Text

from tui import format as fmt
from tui.controls import KILL_STYLE
from tui.panels.base import STATUS_STYLE, Panel
from tui.state import (
    BUS,
    KILL,
    LINK_CONNECTED,
    LINK_CONNECTING,
    LINK_DOWN,
    LINK_LOST,
    LINK_OFF,
    LINK_REPLAY,
    SAFETY,
    SCAN,
    STRATEGY,
)


class HeaderPanel(Panel):
    TITLE = ""
    TOPICS = frozenset({BUS, SCAN, SAFETY, STRATEGY, KILL})
    SHOW_AGE = False
    AGE_IN_BODY = True  # the clock
    DEFAULT_CLASSES = "header"

    def tick_key(self, now: float) -> object:
        link = self.state.bus
        return (int(now), fmt.age(now - link.since) if link.since is not None else "")

    def body(self, now: float) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(" DOLPHIN ", style="bold black on cyan")
        out.append(f" {fmt.clock(now)} UTC ", style="bold")
        scan = self.payload(SCAN)
        market = None
        if scan is not None:
            try:
                market = scan.timestamp_s()
            except Exception:
                market = None
        out.append("│ market ", style="dim")
        out.append(fmt.clock(market, date=True), style="bold" if market is not None else "dim")
        out.append(" │ posture ", style="dim")
        safety = self.payload(SAFETY)
        trader = self.payload(STRATEGY)
        if safety is not None:
            posture = fmt.text(getattr(safety, "posture", None), 12)
            out.append(f" {posture} ", style=STATUS_STYLE.get(posture, "bold"))
            out.append(f" Rm {fmt.num(getattr(safety, 'rm', None), 2)}")
        elif trader is not None and getattr(trader, "posture", None):  # no watchdog: the trader's own posture
            posture = fmt.text(trader.posture, 12)
            out.append(f" {posture} ", style=STATUS_STYLE.get(posture, "bold"))
            out.append(" (trader)", style="dim")
        else:
            out.append("—", style="dim")
        self._kill(out, trader)
        out.append(" │ ", style="dim")
        self._link(out, now)
        rejected = 0
        try:
            rejected = int(self.state.rejections())
        except Exception:
            rejected = 0
        out.append(" │ rejected ", style="dim")
        out.append(str(rejected), style="bold red" if rejected else "dim")
        return out

    def _kill(self, out: Text, trader: object) -> None:
        """The kill switch on every screen: as set (local files), and what the trader applies when that differs."""
        state = self.state.kill
        level = str(getattr(state, "level", "") or "") if state is not None else ""
        applied = str(getattr(trader, "kill_level", "") or "") if trader is not None else ""
        if not level and not applied:
            return
        shown = level or applied
        if shown != "clear":
            out.append(" │ ", style="dim")
            out.append(f" KILL {shown.upper()} ", style=KILL_STYLE.get(shown, "bold"))
        if level and applied and applied != level:
            out.append(f" (trader: {applied})", style="yellow")

    def _link(self, out: Text, now: float) -> None:
        link = self.state.bus
        replay = self.state.replay
        if link.state == LINK_REPLAY and replay is not None:
            out.append(" REPLAY ", style="bold black on magenta")
            out.append(f" {fmt.text(replay.label, 40)} ×{replay.speed:g} ")
            out.append(f"scan {replay.position}/{replay.total}")
            if replay.paused:
                out.append(" PAUSED", style="bold yellow")
            if replay.finished:
                out.append(" finished", style="dim")
            return
        since = fmt.age(now - link.since) if link.since is not None else "—"
        if link.state == LINK_CONNECTED:
            out.append("bus ● ", style="bold green")
            out.append(link.address or "—")
            cluster = link.cluster
            if cluster is not None and (cluster.expected > 1 or not cluster.whole):  # a real cluster, or a sick one
                out.append(f" · {cluster.summary()}", style="green" if cluster.whole else "bold red")
        elif link.state == LINK_LOST:
            out.append(" bus LOST ", style="bold white on red")
            out.append(f" {link.address} {since} — reconnecting", style="red")
        elif link.state == LINK_DOWN:
            out.append(" bus DOWN ", style="bold white on red")
            out.append(f" {link.address} {since} — retrying", style="red")
        elif link.state == LINK_CONNECTING:
            out.append("bus … ", style="bold yellow")
            out.append(f"{link.address} connecting", style="yellow")
        elif link.state == LINK_OFF:
            out.append("bus off", style="dim")
        else:
            out.append(f"bus {link.state}")
