"""`dolphin obf status|query`: the OBF daemon's counters, and its Parquet history through DuckDB."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from commands._output import console, print_json

app = typer.Typer(help="The order-book universe (OBF): daemon status, history queries.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
PathOpt = Annotated[Path | None, typer.Option(
    "--path", help="An ob_history folder or a runtime root holding one (default: <DOLPHIN_HOME>/ob_history).")]

CIRCUIT_STYLE = {"closed": "green", "half_open": "yellow", "open": "bold red"}


def _iso_ms(ms: int | None) -> str:
    if ms is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + "Z"


def _age(now: float, then: float | None) -> str:
    return "—" if then is None else f"{max(0.0, now - then):.0f} s ago"


@app.command("status")
def status(json_out: JsonOpt = False) -> None:
    """Assets covered, message rate, last bar and snapshot, reconnects, crossed/dark counts, circuit state.

    Read from the bus (DOLPHIN_FEATURES[obf_status]); when the bus is unreachable, from
    <DOLPHIN_HOME>/ob_cache/obf_status.json — the daemon writes both every few seconds.
    """
    import msgspec

    from dolphin.bus import BusUnavailableError, ObfStatus, schema
    from dolphin.bus.access import Bus
    from dolphin.bus.client import connect
    from dolphin.errors import DataError
    from dolphin.paths import runtime_root
    from dolphin.store.ob_cache import STATUS_STALE_S, read_status_file, status_path

    report: ObfStatus | None = None
    source = "bus"
    try:
        client = connect(cluster_connect_timeout=3.0)
        try:
            report = Bus(client, source="dolphin obf status").get(schema.FEATURES, schema.OBF_STATUS)
        finally:
            client.shutdown()
    except BusUnavailableError:
        source = "file (bus unreachable)"
    home = runtime_root()
    file_report = read_status_file(home)
    if file_report is not None and (report is None or file_report.timestamp > report.timestamp):
        report = file_report    # the file is written even while the bus is away: the newer of the two
        source = f"file {status_path(home)}" if source == "bus" else source
    if report is None:
        raise DataError("no OBF status yet: is the obf service running? (`dolphin svc status obf`)")
    now = time.time()
    age = now - report.timestamp
    stale = age > STATUS_STALE_S
    if json_out:
        print_json({"source": source, "age_s": age, "stale": stale, "status": msgspec.to_builtins(report)})
        return
    phase = "NOT REPORTING" if stale else report.phase.upper()
    style = "bold white on red" if stale else {"live": "bold green", "warm-up": "bold yellow"}.get(report.phase,
                                                                                                   "bold red")
    console.print(f"[{style}] {phase} [/]  obf pid {report.pid}   ({source}, {age:.0f} s ago)")
    if stale:
        console.print(f"  the last status is {age:.0f} s old: the daemon is not running or hung — "
                      "`dolphin svc status obf`, `dolphin svc logs obf`")
    circuit = report.circuit
    rows: list[tuple[str, Any]] = [
        ("assets covered", f"{report.covered} of {report.symbols} subscribed ({report.dark} dark now, "
                           f"{report.dark_events} went dark since start)"),
        ("message rate", f"{report.message_rate:,.0f} updates/s ({report.messages:,} since start)"),
        ("last bar", _iso_ms(report.last_bar_ms)),
        ("last snapshot", _age(now, report.last_snapshot_at)),
        ("connections", f"{report.connections} ({report.reconnects} reconnects, {report.stalls} feed stalls)"),
        ("crossed books", str(report.dropped.get("crossed", 0))),
        ("dropped", ", ".join(f"{k} {v}" for k, v in sorted(report.dropped.items())) or "none"),
        ("circuit", f"[{CIRCUIT_STYLE.get(circuit, 'red')}]{circuit}[/] ({report.push_failures} failed pushes, "
                    f"{report.circuit_opens} opening(s), {report.fallback_writes} fallback writes)"),
        ("history", f"{report.history_rows:,} rows in {report.history_parts} parts since start"),
    ]
    if report.warmup_left_s > 0:
        rows.append(("warm-up", f"{report.warmup_left_s:.0f} s before the first publish"))
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def _print_rows(result: Any, json_out: bool, limit: int) -> None:
    rows = result.to_pylist()
    if json_out:
        print_json({"columns": result.column_names, "rows": rows})
        return
    table = Table()
    for name in result.column_names:
        table.add_column(name, overflow="fold")
    for row in rows[:limit]:
        table.add_row(*("—" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)
    more = f" (first {limit} shown; --limit to see more)" if len(rows) > limit else ""
    console.print(f"{len(rows)} row(s){more}", style="dim")


@app.command("query")
def query(
    sql: Annotated[str | None, typer.Argument(
        help="SQL over the views universe, features and macro (DuckDB), e.g. "
             "\"SELECT symbol, avg(spread_bps) FROM universe GROUP BY 1 ORDER BY 2 DESC LIMIT 10\".")] = None,
    asset: Annotated[str | None, typer.Option("--asset", help="One symbol's rows instead of SQL, e.g. BTCUSDT.")] = None,
    table_name: Annotated[str, typer.Option("--table", help="With --asset: features or universe.")] = "features",
    start: Annotated[str | None, typer.Option("--from", help="Market time from: YYYY-MM-DD or ISO-8601.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Market time to: YYYY-MM-DD (whole day) or ISO-8601.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows shown in the table (JSON has all).")] = 50,
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Query the OBF Parquet history (never pruned) with DuckDB: SQL, or `--asset SYM --from --to`."""
    from dolphin.errors import UsageError
    from dolphin.paths import runtime_root
    from dolphin.store.ob_history import HISTORY_DIR, TimeRange, asset_history, query_history

    if (sql is None) == (asset is None):
        raise UsageError("give either SQL or --asset SYMBOL (not both)")
    root = path if path is not None else runtime_root() / HISTORY_DIR
    span = TimeRange.parse(start, end)
    if asset is not None:
        result = asset_history(root, asset.upper(), span, table=table_name)
    else:
        assert sql is not None
        result = query_history(root, sql, span)
    _print_rows(result, json_out, limit)
