"""`dolphin health`: the latest meta-health report (MHS v3); `dolphin health strategy`: strategy decay."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from commands._output import console, print_json

if TYPE_CHECKING:
    from dolphin.bus import MetaHealth
    from dolphin.bus.payloads import StrategyHealthReport

app = typer.Typer(help="Health: the family's (MHS, with no subcommand) and the strategy's decay (`strategy`).",
                  invoke_without_command=True)

STATUS_STYLE = {"GREEN": "bold green", "WARMING": "bold cyan", "DEGRADED": "bold yellow", "CRITICAL": "bold red", "DEAD": "bold white on red",
                "UNKNOWN": "bold white on grey35"}


@app.callback()
def health(ctx: typer.Context,
           json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False) -> None:
    """Print the latest MHS report: rm_meta, status, sensors M1–M5, services, data keys, MHS restarts.

    Read from the bus; when the bus is unreachable, from run_logs/meta_health.json.
    `dolphin health strategy` shows the strategy's health and decay instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    family_health(json_out)


def family_health(json_out: bool) -> None:
    """The MHS report (`dolphin health` with no subcommand)."""
    import msgspec

    from dolphin.bus import BusUnavailableError, MetaHealth, schema
    from dolphin.bus.access import Bus
    from dolphin.bus.client import connect
    from dolphin.errors import DataError
    from dolphin.paths import runtime_root

    report: MetaHealth | None = None
    source = "bus"
    try:
        client = connect(cluster_connect_timeout=3.0)
        try:
            report = Bus(client, source="dolphin health").get(schema.META_HEALTH, schema.LATEST)
        finally:
            client.shutdown()
    except BusUnavailableError:
        source = "file (bus unreachable)"
    path = runtime_root() / "meta_health.json"
    if report is None and path.is_file():
        try:
            report = msgspec.json.decode(path.read_bytes(), type=MetaHealth)
            source = f"file {path}" if source == "bus" else source
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            raise DataError(f"{path}: not a valid health report ({exc})") from None
    if report is None:
        raise DataError("no health report yet: is the mhs service running? (`dolphin svc status`)")
    from dolphin.services.mhs.sensors import report_is_stale

    age = time.time() - report.timestamp_s()
    stale = report_is_stale(age, report.check_interval_s)
    status = "UNKNOWN" if stale else str(report.status)   # an old report is not the family's state
    if json_out:
        print_json({"source": source, "age_s": age, "stale": stale, "status": status,
                    "report": msgspec.to_builtins(report)})
        return
    style = STATUS_STYLE.get(status, "")
    if stale:
        console.print(f"[{style}] UNKNOWN [/]  the last report is {age:.0f} s old (it said {report.status}, "
                      f"rm_meta {report.rm_meta:.3f}): MHS is not reporting — `dolphin svc status mhs`, "
                      "`dolphin svc logs mhs`")
    else:
        console.print(f"[{style}] {status} [/]  rm_meta {report.rm_meta:.3f}   ({source}, {age:.0f} s ago)")
    for fault in report.faults:
        console.print(f"  [yellow]•[/] {fault}")
    if report.trader_lag_scans is not None or report.trader_rejected_scans:
        lag = "-" if report.trader_lag_scans is None else str(report.trader_lag_scans)
        console.print(f"  trader: {lag} scan(s) behind the bus, {report.trader_rejected_scans} bus scan(s) refused")
    sensors = Table(title="sensors")
    for col in ("sensor", "score", "weight"):
        sensors.add_column(col, justify="left" if col == "sensor" else "right")
    for name, label, weight in (("m4_control_plane", "M4 control plane (bus, supervisord)", "0.35"),
                                ("m1_data_infra", "M1 data services running", "0.35"),
                                ("m3_data_freshness", "M3 data freshness", "0.20"),
                                ("m5_coherence", "M5 coherence", "0.10"),
                                ("m2_heartbeat", "M2 heartbeats (informational)", "—"),
                                ("m1_trader", "M1 trader (informational)", "—")):
        sensors.add_row(label, f"{getattr(report, name):.2f}", weight)
    console.print(sensors)
    services = Table(title="services")
    services.add_column("service")
    services.add_column("state")
    for name, state in report.service_status.items():
        services.add_row(name, state)
    keys = Table(title="data keys")
    for col in ("key", "status", "age", "score"):
        keys.add_column(col)
    for key, ks in report.hz_key_status.items():
        keys.add_row(key, ks.status or "", "" if ks.age_s is None else f"{ks.age_s:.1f} s", f"{ks.score:.1f}")
    console.print(services)
    console.print(keys)
    if report.recoveries or report.recent_recoveries:
        console.print(_recoveries_table(report, time.time()))


def _recoveries_table(report: MetaHealth, now: float) -> Table:
    """What MHS restarted since it started: a count per service, then its latest restarts."""
    table = Table(title="MHS recoveries (since MHS started)")
    for col in ("service", "restarts", "found", "when", "outcome"):
        table.add_column(col, justify="right" if col == "restarts" else "left")
    last = {e.service: e for e in report.recent_recoveries}
    for name in sorted(set(report.recoveries) | set(last)):
        event = last.get(name)
        found, when, outcome = "", "", ""
        if event is not None:
            found, when = event.found, f"{max(0.0, now - event.at):.0f} s ago"
            outcome = event.outcome + (f": {event.error}" if event.error else "")
        table.add_row(name, str(report.recoveries.get(name, 0)), found, when, outcome)
    return table


# ---------------------------------------------------------------- dolphin health strategy
STATE_STYLE = {"probation": "bold white on grey35", "healthy": "bold green", "watch": "bold yellow",
               "degrading": "bold dark_orange", "disabled": "bold white on red"}
LEVEL_STYLE = {"good": "green", "warn": "yellow", "bad": "red", "none": "dim"}
GAUGE_LABEL = {"expectancy": "expectancy (30 trades)", "sharpe": "Sharpe (30 days)", "drawdown": "max drawdown",
               "win_rate": "win rate (30 trades)", "frequency": "trades per day"}


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    if metric in ("expectancy",):
        return f"{value * 100:+.3f} %"
    if metric in ("drawdown", "win_rate"):
        return f"{value * 100:.1f} %"
    return f"{value:.2f}"


def _bar(ratio: float | None, width: int = 12) -> str:
    if ratio is None:
        return " " * width
    filled = max(0, min(width, round(min(ratio, 1.0) * width)))
    return "█" * filled + "░" * (width - filled)


def render_strategy(report: StrategyHealthReport) -> None:
    state = str(report.state)
    head = Text.assemble((f" {state.upper()} ", STATE_STYLE.get(state, "bold")), "  ", (report.strategy, "bold"),
                         f"  {report.trades} closed trade(s) evaluated")
    if report.evaluated != report.state:
        head.append(f"  (the metrics alone say {report.evaluated})", style="dim")
    console.print(head)
    for reason in report.reasons:
        console.print(f"  [yellow]•[/] {reason}")
    if report.kill_engaged:
        console.print("  [red]entries paused through the kill switch (`dolphin kill status`); after a reset, "
                      "`dolphin kill clear` resumes them[/]")
    if not report.baseline_registered:
        console.print("  [dim]no baseline registered: `dolphin backtest … --register-baseline` (gauges need one; the "
                      "drawdown falls back to 10 % / 20 %)[/]")
    else:
        console.print(f"  [dim]baseline: {report.baseline_source}[/]")
    table = Table(title="decay gauges (live / baseline)")
    for col in ("metric", "live", "baseline", "ratio", ""):
        table.add_column(col, justify="right" if col in ("live", "baseline", "ratio") else "left")
    for g in report.gauges:
        style = LEVEL_STYLE.get(str(g.level), "")
        ratio = "no baseline" if g.baseline is None else "—" if g.ratio is None else f"{g.ratio:.2f}×"
        table.add_row(GAUGE_LABEL.get(g.metric, g.metric), _value(g.metric, g.live), _value(g.metric, g.baseline),
                      Text(ratio, style=style), Text(_bar(g.ratio), style=style))
    console.print(table)
    if report.dd_stress is not None:
        console.print(f"  drawdown stress {report.dd_stress:.2f} (watch > 1.2, degrading > 1.5, disabled > 2.0)",
                      style="dim")


@app.command("strategy")
def strategy(json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
             reset: Annotated[bool, typer.Option("--reset", help="Leave a sticky disabled state: a new probation on "
                                                                 "the trades closed from now on.")] = False) -> None:
    """The strategy's health: probation, healthy, watch, degrading or disabled, and its decay gauges.

    Computed from the trader's journal and the baseline registry (read-only: the parity daemon is the
    one that persists the state and pauses entries when the strategy is disabled).
    """
    import msgspec

    from dolphin.config import load_config
    from dolphin.config.services import load_services_config
    from dolphin.execution.kill_switch import KillSwitch, _who
    from dolphin.execution.strategy_guard import StrategyGuard, assess, journal_path
    from dolphin.paths import runtime_root
    from dolphin.store.journal import read_books

    scfg = load_services_config()
    cfg = load_config(scfg.trader.strategy)
    home = runtime_root()
    guard = StrategyGuard(home, cfg.name, KillSwitch.under(home, scfg.trader.kill_switch))
    if reset:
        path = journal_path(home, cfg.name)
        books = read_books(path) if path.is_file() else None
        last = books.trades[-1].trade_id if books and books.trades else None
        guard.reset(last_trade_id=last, at_ms=books.last_ts_ms if books else None, by=_who())
        if not json_out:
            console.print(f"strategy {cfg.name}: health reset — a new probation on the trades closed after "
                          f"trade {last if last is not None else '(none yet)'}; the kill switch is unchanged "
                          "(`dolphin kill clear` resumes entries)")
    report = assess(home, cfg, guard, act=False)
    if json_out:
        print_json(msgspec.to_builtins(report))
        return
    render_strategy(report)
