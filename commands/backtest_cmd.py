"""`dolphin backtest`: replay a scan table (or a seeded synthetic market) through the engine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from commands._output import console, err_console, print_json
from commands._pnl_tables import pnl_group_table

if TYPE_CHECKING:
    from dolphin.backtest.journal_ob import ObCheck
    from dolphin.backtest.runner import BacktestResult
    from dolphin.engine.ob import OBProvider


STAGE_LABELS = {"read": "reading scans", "generate": "generating market", "scan": "scanning",
                "engine": "replaying days",
                "ob": "reading OB history"}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.2f} %"


def _num(x: float | None, fmt: str = "{:.3f}") -> str:
    return "—" if x is None else fmt.format(x)


def _stage_line(result: BacktestResult) -> str:
    """Where the wall time went: each stage, numba compile/load apart, and the command's total."""
    parts = [f"{STAGE_LABELS.get(k, k).split()[0]} {v:.2f} s" for k, v in result.stages.items() if k != "total"]
    compile_s = result.compile_seconds + result.compile_in_run_seconds
    parts.append(f"numba compile/load {compile_s:.2f} s")
    if "total" in result.stages:
        parts.append(f"total {result.stages['total']:.2f} s")
    return " · ".join(parts)


def _render(result: BacktestResult, files: dict[str, Path]) -> None:
    from dolphin.backtest.metrics import pnl_groups
    from dolphin.backtest.report import iso_utc

    m = result.metrics
    summary = Table(title=f"backtest — {result.config.name} ({result.source})", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in [
        ("span", f"{iso_utc(result.span_start_ms)[:10]} → {iso_utc(result.span_end_ms)[:10]} "
                 f"({len(result.days)} days, {result.bars:,} bars, {len(result.assets)} assets)"),
        ("capital", f"{m.initial_capital:,.2f} → {m.final_capital:,.2f}"),
        ("ROI", _pct(m.roi)),
        ("profit factor", _num(m.profit_factor)),
        ("Sharpe (daily, √365)", _num(m.sharpe, "{:.2f}")),
        ("max drawdown", _pct(-m.max_drawdown) if m.max_drawdown else "0.00 %"),
        ("win rate", _pct(m.win_rate).lstrip("+") if m.win_rate is not None else "—"),
        ("trades", f"{m.trades} ({m.wins} won, {m.losses} lost)"),
        ("fees", f"{m.fees:,.2f}"),
        ("exits", ", ".join(f"{k} {v}" for k, v in m.exit_reasons.items()) or "—"),
        ("engine time", f"{result.engine_seconds:.2f} s ({result.bars / max(result.engine_seconds, 1e-9):,.0f} bars/s)"),
        ("time", _stage_line(result)),
    ]:
        summary.add_row(label, value)
    if result.open_position is not None:
        p = result.open_position
        summary.add_row("open at end", f"{p.side} {p.asset} @ {p.entry_price:g} (not counted)")
    console.print(summary)
    days = Table(title="per day")
    for col in ("date", "trades", "pnl", "capital", "boost", "beta", "MC", "posture"):
        days.add_column(col, justify="right" if col not in ("date", "MC", "posture") else "left")
    for d in result.days:
        days.add_row(d.date, str(d.trades), f"{d.pnl:+,.2f}", f"{d.capital:,.2f}", f"{d.boost:.3f}", f"{d.beta:.2f}",
                     d.mc_status, d.posture)
    console.print(days)
    if result.trades:
        console.print(pnl_group_table(pnl_groups(result.trades, "asset"), "asset", "per pair"))
        console.print(pnl_group_table(pnl_groups(result.trades, "exit_reason"), "exit_reason", "per exit reason"))
    check = result.extra.get("ob_check")
    if check is not None:
        _render_ob_check(check)   # type: ignore[arg-type]
    for label, path in files.items():
        console.print(f"{label + ':':<8} {path}")


def _render_ob_check(check: ObCheck) -> None:
    """`--journal --ob`: how the journal's OB compares with the recorded history, step by step."""
    from dolphin.backtest.journal_ob import describe

    t = Table(title="OB: journal vs recorded history", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("steps checked", f"{check.steps:,} (OB source per journaled step: "
              + (", ".join(f"{k} {v:,}" for k, v in check.sources.items()) or "—") + ")")
    t.add_row("history agrees", f"{check.agree:,}")
    t.add_row("history differs", f"{check.differ:,}" + (" (" + ", ".join(f"{k} {v:,}" for k, v in check.causes.items())
                                                         + " asset-steps)" if check.causes else ""))
    t.add_row("not covered", f"{check.uncovered:,} (no history bar for the step's close)")
    if check.filled:
        t.add_row("filled from history", f"{check.filled:,} steps whose journal record carries no OB")
    console.print(t)
    if check.differences:
        d = Table(title="first differences (per cause: the first steps, their first differing asset)")
        for col in ("scan", "asset", "field", "journal", "history", "likely cause"):
            d.add_column(col, justify="right" if col in ("scan", "journal", "history") else "left")
        for x in check.differences:
            d.add_row(str(x.scan_number), x.asset, x.field, f"{x.journal:.6g}", f"{x.history:.6g}", describe(x))
        console.print(d)


def backtest(
    synthetic: Annotated[bool, typer.Option("--synthetic", help="Generate a seeded synthetic market and replay it.")] = False,
    days: Annotated[int, typer.Option("--days", min=1, max=365, help="Days of synthetic market (with --synthetic).")] = 3,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Synthetic market seed.")] = 7,
    scans: Annotated[Path | None, typer.Option("--scans", help="A scan table (Parquet) or an Arrow scan archive "
                                                               "(arrow_scans/ or a root holding it) to replay.")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First UTC date to replay (YYYY-MM-DD).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last UTC date to replay (YYYY-MM-DD).")] = None,
    config: Annotated[str, typer.Option("--config", help="Strategy config: blue, green or a .yml path.")] = "blue",
    trade_from_scan: Annotated[int | None, typer.Option(
        "--trade-from-scan", min=1, help="Replay a live session: earlier scans only warm the engine.")] = None,
    until_scan: Annotated[int | None, typer.Option("--until-scan", min=1, help="Stop after this scan.")] = None,
    journal: Annotated[Path | None, typer.Option(
        "--journal", help="A trader journal: replay its session exactly (traded scans, ACB, posture, kill switch; "
                          "its scan range unless given).")] = None,
    ob: Annotated[Path | None, typer.Option(
        "--ob", help="Recorded OB history (an ob_history/ folder or a runtime root holding one): each bar reads "
                     "the OB features of the latest OB bar at or before its close, as the trader did. With --journal the "
                     "journal's OB stays the input; the history fills steps without and is cross-checked.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    write: Annotated[bool, typer.Option("--write/--no-write", help="Write summary and trades under run_logs/backtest/.")] = True,
    register_baseline: Annotated[bool, typer.Option(
        "--register-baseline", help="Register this run's metrics as the strategy's health baseline "
                                    "(run_logs/baselines/<config>.json; `dolphin health strategy`).")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Also write an HTML report with PNG charts (equity and drawdown, vel_div with entries and "
                         "exits, daily PnL, per-pair and per-exit-reason tables) into this directory.")] = None,
) -> None:
    """Replay scans through the alpha engine: progress per stage, then a summary and per-day rows."""
    started = time.perf_counter()
    from dolphin.backtest.report import write_report
    from dolphin.backtest.runner import ScanSource, SpanPlan, TableSource, replay
    from dolphin.backtest.synthetic import SyntheticFactors, SyntheticSource
    from dolphin.config import load_config
    from dolphin.errors import DataError, UsageError
    from dolphin.market.synthetic import STREAM_VERSION
    from dolphin.paths import require_exists
    from dolphin.store.scan_table import ScanTableFile

    if journal is not None and scans is None:
        raise UsageError("--journal replays a live session over its scan archive: add --scans PATH "
                         "(the runtime root, or its arrow_scans/)")
    if synthetic == (scans is not None):
        raise UsageError("choose one input: --synthetic or --scans PATH")
    if scans is not None:
        require_exists(scans, "scan table", DataError)
    if journal is not None:
        require_exists(journal, "trader journal", DataError)
    if ob is not None:
        if scans is None:
            raise UsageError("--ob replays recorded OB history over recorded scans: use it with --scans")
        require_exists(ob, "OB history", DataError)
    if report is not None:
        from dolphin.backtest.report_html import prepare_report_dir

        prepare_report_dir(report)   # before the replay: a bad directory fails in a second, not after the run
    cfg = load_config(config)
    session = None
    if journal is not None:
        from dolphin.backtest.session import SessionInputs

        if synthetic:
            raise UsageError("--journal replays a live session over its scan archive: use it with --scans")
        session = SessionInputs.from_journal(journal)
        trade_from_scan = trade_from_scan or session.first_scan
        until_scan = until_scan or session.last_scan
    progress = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[seconds]:>7.2f} s"), console=err_console, transient=True,
                        disable=json_out)
    tasks: dict[str, TaskID] = {}

    def on_progress(stage: str, done: int, total: int, seconds: float) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(STAGE_LABELS.get(stage, stage), total=total, seconds=0.0)
        progress.update(tasks[stage], completed=done, total=total, seconds=seconds)

    with progress:
        scan_source: ScanSource
        acb_source = None
        if synthetic:
            scan_source = SyntheticSource(days, seed, progress=on_progress)
            acb_source = SyntheticFactors(scan_source.market)
            source = f"synthetic seed {seed}, {days} days (stream v{STREAM_VERSION})"
        elif scans is not None and scans.is_dir():
            from dolphin.store.scan_archive import load_arrow_scans

            t0 = time.perf_counter()
            on_progress("read", 0, 1, 0.0)
            table = load_arrow_scans(scans)
            on_progress("read", 1, 1, time.perf_counter() - t0)
            scan_source = TableSource(table, stages={"read": time.perf_counter() - t0})
            source = str(scans)
        else:
            assert scans is not None
            scan_source = ScanTableFile(scans, progress=on_progress)
            source = str(scans)
        plan = SpanPlan.scan(scan_source.keys(), date_from=date_from, date_to=date_to,
                             trade_from_scan=trade_from_scan, until_scan=until_scan)
        stages = ((("generate", days), ("scan", plan.stop)) if synthetic
                  else (("read", plan.stop),) if isinstance(scan_source, ScanTableFile) else ())
        tap = None
        if report is not None:
            from dolphin.backtest.report_data import VelDivTap

            scan_source = tap = VelDivTap(scan_source)   # the report's vel_div chart: two columns, not the table
        ob_provider: OBProvider | None = None
        ob_check = None
        if ob is not None:
            from dolphin.backtest.ob_replay import history_provider, replay_span

            t0 = time.perf_counter()
            on_progress("ob", 0, 1, 0.0)
            assets = list(scan_source.assets)
            history = history_provider(ob, replay_span(scan_source.keys(), plan.start, plan.stop), assets)
            ob_provider = history
            if session is not None:   # the journal's OB stays the input; the history fills and is checked
                from dolphin.backtest.journal_ob import cross_check, with_history

                assert trade_from_scan is not None and until_scan is not None
                ob_provider = with_history(session, history, assets)
                ob_check = cross_check(session.ob_between(trade_from_scan, until_scan), history, assets)
            on_progress("ob", 1, 1, time.perf_counter() - t0)
            source += f" + OB history {ob}" + (" (cross-checked; the journal's OB replayed)" if session else "")
        for stage, total in (*stages, ("engine", plan.days)):
            on_progress(stage, 0, total, 0.0)
        result = replay(scan_source, cfg, date_from=date_from, date_to=date_to, acb_source=acb_source,
                        ob_provider=ob_provider, source=source, trade_from_scan=trade_from_scan, until_scan=until_scan, session=session,
                        progress=on_progress, plan=plan)
    result.stages["total"] = time.perf_counter() - started
    if ob_check is not None:
        result.extra["ob_check"] = ob_check
    files: dict[str, Path] = {}
    if report is not None:
        from dolphin.backtest.report_data import backtest_report_data
        from dolphin.backtest.report_html import write_html_report

        with Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), console=err_console,
                      transient=True, disable=json_out) as drawing:
            draw = drawing.add_task("drawing the report", total=3)

            def on_draw(stage: str, done: int, total: int) -> None:
                if stage == "draw":
                    drawing.update(draw, completed=done, total=total)

            data = backtest_report_data(result, tap)
            files["report"] = write_html_report(data, report, progress=on_draw).html
    if write:
        written = write_report(result)
        files = {"summary": written.summary, "trades": written.trades, **files}
    baseline_file = _register_baseline(result) if register_baseline else None
    if json_out:
        import msgspec

        from dolphin.backtest.metrics import pnl_groups

        out = dict(result.summary())
        if baseline_file is not None:
            out["baseline"] = str(baseline_file)
        out["days"] = [{"date": d.date, "trades": d.trades, "pnl": d.pnl, "capital": d.capital} for d in result.days]
        out["per_pair"] = pnl_groups(result.trades, "asset")
        out["per_exit_reason"] = pnl_groups(result.trades, "exit_reason")
        if files:
            out["files"] = {label: str(path) for label, path in files.items()}
        print_json(msgspec.to_builtins(out))
        return
    _render(result, files)
    if baseline_file is not None:
        console.print(f"baseline: {baseline_file} (expectancy, Sharpe, drawdown, win rate and trade frequency of "
                      f"{result.config.name}; `dolphin health strategy` compares live trading with it)")


def _register_baseline(result: BacktestResult) -> Path:
    import time

    from dolphin.backtest.strategy_health import baseline_from_result
    from dolphin.errors import DataError
    from dolphin.paths import runtime_root
    from dolphin.store.baselines import register_baseline

    if not result.trades:
        raise DataError("no closed trade in this backtest: nothing to register as a baseline (replay a longer span)")
    return register_baseline(runtime_root(), baseline_from_result(result, registered_at=time.time()))
