"""`dolphin up` / `dolphin down`: the daemon family under supervisord."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.panel import Panel
from rich.status import Status

from commands._output import console, err_console, print_json
from commands.svc_cmd import process_json, process_table


def up(
    market: Annotated[str | None, typer.Option("--market", help="sim (local simulator exchange) or binance.")] = None,
    speed: Annotated[float | None, typer.Option("--speed", help="Simulated seconds per wall second (sim only).")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Return once the family runs (for scripts).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print where things are as JSON.")] = False,
    bus: Annotated[str, typer.Option(
        "--bus", help="auto (external iff DOLPHIN_HZ_MEMBERS is set), embedded (DOLPHIN's own member) or "
                      "external (a real Hazelcast cluster at DOLPHIN_HZ_MEMBERS).")] = "auto",
    only: Annotated[str | None, typer.Option(
        "--only", help="Run only these programs on this host (comma-separated; a family split across hosts, "
                       "e.g. sim,scanner,mhs on one and trader on another). Also DOLPHIN_PROGRAMS.")] = None,
) -> None:
    """Start the family on its embedded defaults and wait until every autostart program is RUNNING."""
    from dolphin.bus.cluster_health import probe_cluster
    from dolphin.config.services import load_services_config, override
    from dolphin.errors import UsageError
    from dolphin.supervision.family import mainnet_data, select_bus
    from dolphin.supervision.family import up as family_up
    from dolphin.supervision.programs import check_selection
    from dolphin.supervision.render import market_urls

    cluster = select_bus(bus)
    health = probe_cluster(cluster) if cluster is not None else None  # unreachable: one line, exit 10
    cfg = load_services_config()
    if market is not None and market not in ("sim", "binance"):
        raise UsageError(f"--market must be sim or binance, got {market!r}")
    cfg = override(cfg, "market", source=market, speed=speed)
    if speed is not None and cfg.market.source != "sim":
        raise UsageError("--speed applies to the simulator only (--market sim)")
    if only is not None:
        cfg = override(cfg, "supervisor", programs=only)
        os.environ["DOLPHIN_PROGRAMS"] = cfg.supervisor.programs  # the TUI started below sees the same family
    check_selection(cfg)
    rest, ws = market_urls(cfg)
    on_mainnet = mainnet_data(cfg)
    if on_mainnet:  # before anything starts, so it is seen even if the start fails
        (err_console if json_out else console).print(Panel(
            f"MAINNET MARKET DATA: market.binance_network is mainnet, so every service reads production Binance "
            f"({rest}).\nOrders stay behind the explicit mainnet flag: the trader trades on {cfg.trader.venue}.",
            title="mainnet", style="bold red"))
    with Status("starting the family…", console=err_console, spinner="dots") as status:
        def progress(infos) -> None:
            status.update("starting: " + ", ".join(f"{i.name} {i.state}" for i in infos))

        result = family_up(cfg, on_progress=None if json_out else progress)
    where = {
        "already_running": result.already_running,
        "runtime_root": str(result.paths.home),
        "supervisor_socket": str(result.paths.socket),
        "supervisor_config": str(result.paths.conf),
        "logs": str(result.paths.logdir),
        "bus": f"{cfg.bus.host}:{cfg.bus.port}" if cluster is None else f"cluster {','.join(cluster.members)}",
        "bus_cluster": None if health is None else health.summary(),
        "market": {"source": cfg.market.source, "rest": rest, "ws": ws,
                   "network": cfg.market.binance_network if cfg.market.source == "binance" else None,
                   "mainnet_data": on_mainnet,
                   "speed": cfg.market.speed if cfg.market.source == "sim" else None},
    }
    if json_out:
        print_json({**where, "processes": process_json(result.processes)})
        return
    headline = "the family is already running" if result.already_running else "the family is up"
    console.print(f"[bold green]{headline}[/]")
    console.print(process_table(result.processes))
    console.print(f"runtime root  {where['runtime_root']}\nsupervisor    {where['supervisor_socket']}\n"
                  f"logs          {where['logs']}\nbus           {where['bus']}"
                  f"{'' if health is None else f'  ({health.summary()})'}\n"
                  f"market        {cfg.market.source}: {rest}  {ws}")
    if on_mainnet:
        console.print(f"[bold red]MAINNET market data[/] ({rest}); orders stay on {cfg.trader.venue}")
    for warming, text in _warmups():
        console.print(f"[cyan]warming up[/]: {WARMUP_LINES[warming].format(progress=text)}")
    if detach:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):  # scripts and pipes: return once the family runs
        console.print("no terminal here: watch it with `dolphin tui`, stop it with `dolphin down`")
        return
    from commands.tui_cmd import run_tui

    run_tui()  # quitting the TUI leaves the family running (`dolphin down` stops it)


#: What `dolphin up` says of a service still warming up (its heartbeat's progress goes in).
WARMUP_LINES: dict[str, str] = {
    "scanner": "the scanner is {progress} — the first scan follows it (watch it in the TUI's Scan panel, or "
               "`dolphin health`: WARMING)",
    "obf": "OBF is in its first-publish {progress} — the order-book features follow it (the TUI's OBF panel, or "
           "`dolphin health`: WARMING)",
}


def _warmups() -> list[tuple[str, str]]:
    """The start-up progress of the services that report one on their heartbeat ("backfilling 412 of 899
    bars", "warm-up 23 of 60 s"); empty when none warms up (or the bus does not answer at once: this line is
    a courtesy, not a check)."""
    from dolphin.bus import BusUnavailableError, Heartbeat, schema
    from dolphin.bus.access import Bus
    from dolphin.bus.client import connect

    try:
        client = connect(cluster_connect_timeout=3.0)
    except BusUnavailableError:
        return []
    out: list[tuple[str, str]] = []
    try:
        bus = Bus(client, source="dolphin up")
        for service in WARMUP_LINES:
            try:
                beat = bus.get(schema.HEARTBEAT, schema.heartbeat_key(service))
            except Exception:
                continue
            text = beat.warmup_text() if isinstance(beat, Heartbeat) else None
            if text is not None:
                out.append((service, text))
    finally:
        client.shutdown()
    return out


def down(json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False) -> None:
    """Stop every program and supervisord; returns once no process of the family is left."""
    from dolphin.supervision.family import down as family_down

    with Status("stopping the family…", console=err_console, spinner="dots"):
        result = family_down()
    if json_out:
        print_json({"was_running": result.was_running, "stopped_pids": result.stopped_pids})
        return
    if not result.was_running:
        console.print("nothing to stop: the family is not running")
        return
    console.print(f"[yellow]the family is down[/] ({len(result.stopped_pids)} processes stopped)")
