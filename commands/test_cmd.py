"""`dolphin test [--report] [-k EXPR] [--category NAME]... [PATH]...`: the suite, and the TUI footer's file."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from commands._output import console, print_json

STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "N/A": "dim"}


def results_table(results: dict, title: str) -> Table:
    table = Table(title=title)
    for col in ("category", "passed", "total", "failed", "skipped", "status"):
        table.add_column(col, justify="left" if col in ("category", "status") else "right")
    for name, r in results.items():
        style = STATUS_STYLE.get(r.status, "")
        table.add_row(name, "" if r.passed is None else str(r.passed), "" if r.total is None else str(r.total),
                      str(r.failed or ""), str(r.skipped or ""), f"[{style}]{r.status}[/]")
    return table


def test(
    paths: Annotated[list[str] | None, typer.Argument(help="Test files or directories (default: the whole suite).")]
    = None,
    report: Annotated[bool, typer.Option("--report", help="Write run_logs/test_results_latest.json (TUI footer).")]
    = False,
    keyword: Annotated[str | None, typer.Option("-k", help="Only tests matching this pytest -k expression.")] = None,
    category: Annotated[list[str] | None, typer.Option("--category", help="Only tests of this category "
                                                         "(marker or directory area); repeatable.")] = None,
    exitfirst: Annotated[bool, typer.Option("-x", "--exitfirst", help="Stop at the first failure.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the per-category results as JSON.")] = False,
) -> None:
    """Run the test suite with pytest; with --report, classify by category and write the footer's results file."""
    from dolphin.test_report import run_report

    extra = ["-q"] + (["-x"] if exitfirst else [])
    run = run_report(paths=tuple(paths or ()), keyword=keyword, categories=tuple(category or ()), extra_args=extra,
                     write=report, capture=json_out)
    if json_out:
        print_json({"exit_code": run.exit_code, "duration_s": round(run.duration_s, 2),
                    "results_file": str(run.path) if run.path else None,
                    "categories": {k: v.to_json() for k, v in run.results.items()}})
    else:
        console.print(results_table({k: v for k, v in run.results.items() if v.total or v.skipped}
                                    or run.results, f"{len(run.outcomes)} tests in {run.duration_s:.1f} s"))
        if keyword or paths or category:
            console.print("[yellow]partial run[/] (a selection, not the whole suite): the footer says so too")
        if run.path is not None:
            console.print(f"results written to {run.path}")
    if run.exit_code != 0:
        raise typer.Exit(run.exit_code)
