"""`dolphin parity [--since] [--json]`: live trading against its replays, trade by trade (docs/parity.md).

Computed here from the files (the scan archive and the trader's journal), the same way
the parity daemon does, so it works with the bus down. Exit codes: 0 parity, 40
divergent (every difference explained: coverage gaps, cascades, drift beyond tolerance,
controls), 41 unexplained (a bug: the journal-exact replay must match); no session or an
unreadable archive is an error (6) with one line.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from commands._output import console, err_console, print_json

if TYPE_CHECKING:
    from dolphin.bus.payloads import ParityReport

EXIT_PARITY = 0
EXIT_DIVERGENT = 40
EXIT_UNEXPLAINED = 41

STATUS_STYLE = {"parity": "bold green", "divergent": "bold yellow", "unexplained": "bold white on red"}
CAUSE_STYLE = {"coverage_gap": "yellow", "timing": "cyan", "fill_price": "magenta", "fee": "magenta",
               "control": "blue", "unexplained": "bold red"}


def exit_code(status: str) -> int:
    return {"parity": EXIT_PARITY, "divergent": EXIT_DIVERGENT}.get(status, EXIT_UNEXPLAINED)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f} %"


def _bps(mean: float | None, worst: float | None) -> str:
    return "—" if mean is None or worst is None else f"mean {mean:+.2f}, worst {worst:+.2f} bps"


def render(report: ParityReport) -> None:
    from dolphin.backtest.report import iso_utc

    status = str(report.status)
    console.print(f"[{STATUS_STYLE.get(status, 'bold')}] {status.upper()} [/]  {report.strategy} on "
                  f"{report.venue or '?'}  scans {report.first_scan}–{report.last_scan}"
                  + (f"  (since {iso_utc(report.since_ts)[:10]})" if report.since_ts else ""))
    summary = Table(show_header=False, box=None, padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column()
    summary.add_row("scan coverage", f"{_pct(report.scan_coverage)}  ({report.traded_scans} of {report.scans} traded; "
                                     f"{report.unstepped_scans} never stepped, {report.untraded_scans} stale, "
                                     f"{report.halted_scans} halted)")
    summary.add_row("signal coverage", f"{_pct(report.signal_coverage)} seen, {_pct(report.acted_share)} acted on  "
                                       f"({report.seen_entries} seen and {report.acted_entries} taken of "
                                       f"{report.replay_entries} backtest entries)")
    summary.add_row("trades", f"{report.live_trades} closed live, {report.backtest_trades} in the backtest; entries "
                              f"{report.matched} matched, {report.missed} missed, {report.extra} extra")
    summary.add_row("exact replay", "matches the journal" if report.exact_match else "[bold red]DIFFERS[/] (a bug)")
    summary.add_row("pnl", f"live {report.pnl_live:+,.2f}, backtest {report.pnl_backtest:+,.2f}: diff "
                           f"{report.pnl_diff:+,.2f} (execution {report.pnl_execution:+,.2f}, inputs "
                           f"{report.pnl_inputs:+,.2f})")
    summary.add_row("fill-price drift", _bps(report.price_drift_bps_mean, report.price_drift_bps_max)
                    + f"  (tolerance {report.tolerance_price_bps:g} bps a leg)")
    summary.add_row("fee drift", _bps(report.fee_drift_bps_mean, report.fee_drift_bps_max)
                    + f"  (tolerance {report.tolerance_fee_bps:g} bps a round trip)")
    if report.causes:
        summary.add_row("causes", ", ".join(f"[{CAUSE_STYLE.get(k, '')}]{k} {v}[/]" for k, v in report.causes.items()))
    if report.behind_scans:
        summary.add_row("behind", f"{report.behind_scans} archived scan(s) after the journal's last commit")
    console.print(summary)
    if report.gaps:
        gaps = Table(title=f"untraded runs ({len(report.gaps)} of {report.gaps_total})")
        for col in ("kind", "scans", "from", "to", "from (UTC)"):
            gaps.add_column(col, justify="right" if col in ("scans", "from", "to") else "left")
        for g in report.gaps:
            gaps.add_row(str(g.kind), str(g.scans), str(g.first_scan), str(g.last_scan),
                         iso_utc(g.first_ts)[:19] if g.first_ts else "")
        console.print(gaps)
    if report.diffs:
        diffs = Table(title=f"differences ({len(report.diffs)} of {report.diffs_total})")
        for col in ("scan", "stage", "cause", "kind", "trade", "pnl Δ", "detail"):
            diffs.add_column(col, justify="right" if col in ("scan", "pnl Δ") else "left",
                             no_wrap=col != "detail", overflow="fold" if col == "detail" else "ellipsis")
        for d in report.diffs:
            cause = str(d.cause)
            diffs.add_row(str(d.at_scan), str(d.stage), f"[{CAUSE_STYLE.get(cause, '')}]{cause}[/]", str(d.kind),
                          f"{d.side} {d.asset}".strip(), f"{d.pnl_delta:+.2f}", d.detail)
        console.print(diffs)


def parity(
    since: Annotated[str | None, typer.Option("--since", help="Count differences and scans from this UTC day "
                                                              "(YYYY-MM-DD) on; the replays still start at the "
                                                              "session's start.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    journal: Annotated[Path | None, typer.Option("--journal", help="A trader journal (default: the trader's).")] = None,
    scans: Annotated[Path | None, typer.Option("--scans", help="The scan archive (default: the runtime root's).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1_000_000,
                                       help="Show the most recent N differences and gaps.")] = 50,
) -> None:
    """Replay the trader's session and diff it against its journal: coverage, missed and extra trades with
    their cause, drift, PnL difference. Exit 0 parity, 40 divergent (explained), 41 unexplained."""
    from dolphin.backtest.parity import Tolerances
    from dolphin.backtest.parity_run import ArchiveCache, parity_report
    from dolphin.config import load_config
    from dolphin.config.services import load_services_config
    from dolphin.enums import ParityStatus
    from dolphin.errors import DataError
    from dolphin.execution.strategy_guard import journal_path
    from dolphin.paths import require_exists, runtime_root
    from dolphin.store.scan_table import parse_day_ms

    scfg = load_services_config()
    cfg = load_config(scfg.trader.strategy)
    home = runtime_root()
    since_ms = parse_day_ms(since) if since else None
    path = journal or journal_path(home, cfg.name)
    require_exists(path, "trader journal", DataError)
    archive = scans or home
    require_exists(archive, "scan archive", DataError)
    with err_console.status("replaying the session three ways…", spinner="dots") if not json_out else nullcontext():
        table = ArchiveCache(archive).table()
        report = parity_report(table, cfg, path, tol=Tolerances(price_bps=scfg.parity.max_price_drift_bps,
                                                                fee_bps=scfg.parity.max_fee_drift_bps),
                               since_ms=since_ms, max_diffs=limit, max_gaps=limit)
    if report.status in (ParityStatus.NO_SESSION, ParityStatus.ERROR):
        raise DataError(report.error or str(report.status))
    if json_out:
        import msgspec

        print_json(msgspec.to_builtins(report))
    else:
        render(report)
    code = exit_code(str(report.status))
    if code:
        raise typer.Exit(code)
