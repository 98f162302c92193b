"""`dolphin report JOURNAL`: a trader session's HTML report with PNG charts, from its journal.

The books are the journal (`read_books`); the equity curve is its committed capital;
vel_div and the entry/exit markers come from the journaled scan inputs, or `--scans`, or
the runtime home's scan archive. The drawing and the page are `dolphin.backtest.report_*`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from commands._output import console, err_console, print_json
from commands._pnl_tables import pnl_group_table


def report(
    journal: Annotated[Path, typer.Argument(help="A trader journal (the trader's is <runtime root>/journal/"
                                                 "<strategy>.jsonl).", show_default=False)],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Directory for report.html and the PNGs (default: <runtime root>/reports/"
                      "<journal>_<UTC time>/).")] = None,
    scans: Annotated[Path | None, typer.Option(
        "--scans", help="vel_div from this scan table (.parquet) or Arrow archive (arrow_scans/ or a root holding "
                        "it) instead of the journal's scan inputs.")] = None,
    config: Annotated[str | None, typer.Option(
        "--config", help="Strategy config for the entry gate lines: blue, green or a .yml path (default: the "
                         "journal's strategy).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the files and the tables as JSON.")] = False,
) -> None:
    """Write a self-contained HTML report (equity and drawdown, vel_div with entries and exits, daily PnL,
    per-pair and per-exit-reason tables) and its PNGs for a trader session."""
    import msgspec

    from dolphin.backtest.report_data import journal_report_data, journal_strategy
    from dolphin.backtest.report_html import prepare_report_dir, write_html_report
    from dolphin.config import load_config
    from dolphin.errors import ConfigError, DataError
    from dolphin.paths import require_exists, runtime_root
    from dolphin.store.journal import JournalCorrupt

    require_exists(journal, "trader journal", DataError)
    if journal.is_dir():
        raise DataError(f"{journal}: is a directory; give the journal file (e.g. {journal}/blue.jsonl)")
    if scans is not None:
        require_exists(scans, "scan table or archive", DataError)
    try:
        named = config or journal_strategy(journal)
    except JournalCorrupt as exc:
        raise DataError(str(exc)) from None
    cfg = None
    if named is not None:
        try:
            cfg = load_config(named)
        except ConfigError:
            if config is not None:   # asked for by name: its error is the answer
                raise
    target = out or runtime_root() / "reports" / f"{journal.stem}_{datetime.now(UTC).strftime('%Y%m%d_%H%M%S')}"
    prepare_report_dir(target)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err_console, transient=True, disable=json_out)
    with progress:
        tasks = {"books": progress.add_task("reading the books", total=1),
                 "journal": progress.add_task("reading the journal's steps", total=None),
                 "scans": progress.add_task("vel_div series", total=1),
                 "draw": progress.add_task("drawing the charts", total=3)}

        def on_stage(stage: str, done: int, total: int) -> None:
            if stage in tasks:
                progress.update(tasks[stage], completed=done, total=total or None)

        data = journal_report_data(journal, cfg, scans=scans, progress=on_stage)
        if cfg is None:
            data.notes.append(f"no strategy config for {named or 'this journal'}: the gate lines are not drawn "
                              "(pass --config blue|green|PATH)")
        written = write_html_report(data, target, progress=on_stage)
    per_pair, per_reason = data.per_pair, data.per_exit_reason
    if json_out:
        print_json({"journal": str(journal), "report": str(written.html),
                    "pngs": {name: str(path) for name, path in written.pngs.items()},
                    "trades": len(data.trades), "initial_capital": data.initial_capital,
                    "final_capital": data.final_capital, "max_drawdown": data.equity.max_drawdown,
                    "vel_div_scans": len(data.vel_div) if data.vel_div is not None else 0, "notes": data.notes,
                    "per_pair": msgspec.to_builtins(per_pair), "per_exit_reason": msgspec.to_builtins(per_reason)})
        return
    m = data.metrics
    style = "green" if m.roi >= 0 else "red"
    console.print(f"[bold]{data.title}[/]  capital {data.initial_capital:,.2f} → {data.final_capital:,.2f} "
                  f"ROI [{style}]{m.roi * 100:+.2f} %[/]  {m.trades} trades  max drawdown "
                  f"{data.equity.max_drawdown * 100:.2f} %")
    if data.trades:
        console.print(pnl_group_table(per_pair, "asset", "per pair"))
        console.print(pnl_group_table(per_reason, "exit_reason", "per exit reason"))
    for note in data.notes:
        console.print(f"note: {note}", style="yellow")
    console.print(f"report: {written.html}")
    for name, path in written.pngs.items():
        console.print(f"  {name}: {path}", style="dim")
