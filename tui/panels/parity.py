"""Parity: live trading against its replays — coverage, missed/extra trades by cause, drift, PnL difference.

Shows `DOLPHIN_FEATURES["parity_latest"]` (the parity daemon, every `parity.interval_s`);
the classification is the daemon's (`dolphin.backtest.parity`), this panel only lays it out.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from tui import format as fmt
from tui.panels.base import Panel, kv_table
from tui.state import PARITY

STATUS_STYLE = {"parity": "bold green", "divergent": "bold yellow", "unexplained": "bold white on red",
                "no_session": "bold white on grey35", "error": "bold red"}
CAUSE_STYLE = {"coverage_gap": "yellow", "timing": "cyan", "fill_price": "magenta", "fee": "magenta",
               "control": "blue", "unexplained": "bold red"}
SHOWN_DIFFS = 2


def _coverage(value: object) -> Text:
    f = fmt.finite(value)
    style = "dim" if f is None else "green" if f >= 0.999999 else "yellow" if f >= 0.9 else "red"
    return Text(fmt.pct(f), style=style)


class ParityPanel(Panel):
    TITLE = "Parity (live vs replay)"
    TOPICS = frozenset({PARITY})
    SOURCES = (PARITY,)

    def body(self, now: float) -> RenderableType:
        r = self.payload(PARITY)
        if r is None:
            return self.missing_text(PARITY)
        status = fmt.text(r.status, 12)
        head = Text()   # the badge style on its span only: a Text-wide style would paint what follows
        head.append(f" {status.upper()} ", style=STATUS_STYLE.get(status, "bold"))
        head.append(f"  {fmt.text(r.venue, 8)} · scans {fmt.integer(r.first_scan)}–{fmt.integer(r.last_scan)}",
                    style="dim")
        if r.error:
            return Group(head, Text(fmt.text(r.error, 200), style="red"))
        coverage = Text()
        coverage.append("scans ")
        coverage.append_text(_coverage(r.scan_coverage))
        coverage.append(" · signals ")
        coverage.append_text(_coverage(r.signal_coverage))
        coverage.append(f" seen, {fmt.pct(r.acted_share)} taken", style="dim")
        trades = Text(f"{fmt.integer(r.live_trades)} live · {fmt.integer(r.backtest_trades)} backtest · ")
        trades.append(f"{fmt.integer(r.missed)} missed", style="yellow" if r.missed else "")
        trades.append(" · ")
        trades.append(f"{fmt.integer(r.extra)} extra", style="yellow" if r.extra else "")
        pnl = Text(fmt.money(r.pnl_diff, signed=True), style="green" if (fmt.finite(r.pnl_diff) or 0) >= 0 else "red")
        pnl.append(f"  exec {fmt.money(r.pnl_execution, signed=True)} · inputs {fmt.money(r.pnl_inputs, signed=True)}",
                   style="dim")
        causes = Text()
        for name, n in sorted((r.causes or {}).items()):
            if causes:
                causes.append(" · ")
            causes.append(f"{name} {n}", style=CAUSE_STYLE.get(name, ""))
        if not causes:
            causes.append("none", style="green")
        drift = Text(f"price {fmt.num(r.price_drift_bps_mean, 1, signed=True)} bps · fee "
                     f"{fmt.num(r.fee_drift_bps_mean, 1, signed=True)} bps" if r.price_drift_bps_mean is not None
                     else "— (paper fills)", style="dim")
        rows: list[tuple[str, RenderableType | str]] = [
            ("coverage", coverage), ("trades", trades), ("causes", causes), ("pnl diff", pnl), ("drift", drift)]
        if not r.exact_match:
            rows.insert(0, ("exact", Text("the journal-exact replay DIFFERS (a bug)", style="bold red")))
        if r.gaps:
            g = r.gaps[-1]
            rows.append(("last gap", Text(f"{fmt.text(g.kind, 10)} {fmt.integer(g.scans)} scans "
                                          f"({fmt.integer(g.first_scan)}–{fmt.integer(g.last_scan)})"
                                          + (f", {r.gaps_total} in all" if r.gaps_total > 1 else ""), style="yellow")))
        lines: list[RenderableType] = [head, kv_table(rows, key_width=9)]
        for d in r.diffs[-SHOWN_DIFFS:]:
            line = Text(f"#{fmt.integer(d.at_scan)} ", style="dim")
            line.append(fmt.text(d.cause, 14), style=CAUSE_STYLE.get(str(d.cause), ""))
            line.append(f" {fmt.text(d.kind, 8)} {fmt.text(f'{d.side} {d.asset}', 20)} "
                        f"{fmt.money(d.pnl_delta, signed=True)}")
            lines.append(line)
        return Group(*lines)
