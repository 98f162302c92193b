"""`dolphin svc status|start|stop|restart|logs`: drive the family's programs through supervisord."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from commands._output import console, print_json
from dolphin.enums import ServiceAction

if TYPE_CHECKING:
    from dolphin.supervision.rpc import ProcessInfo

app = typer.Typer(help="The daemon family's services (supervisord).", no_args_is_help=True)

NamesArg = Annotated[list[str], typer.Argument(help="Service short names (scanner, sim, hz, …) or group:name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

STATE_STYLE = {"RUNNING": "green", "STARTING": "yellow", "BACKOFF": "yellow", "STOPPING": "yellow",
               "STOPPED": "dim", "EXITED": "red", "FATAL": "bold red", "UNKNOWN": "red"}


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}"


def process_table(infos: list[ProcessInfo], title: str = "services") -> Table:
    from dolphin.supervision.programs import BY_NAME

    table = Table(title=title)
    for col in ("service", "group", "state", "pid", "uptime", "role"):
        table.add_column(col, justify="right" if col in ("pid", "uptime") else "left")
    for i in infos:
        program = BY_NAME.get(i.name)
        style = STATE_STYLE.get(i.state, "")
        table.add_row(i.name, i.group, f"[{style}]{i.state}[/]", str(i.pid or ""), _uptime(i.uptime_s),
                      program.description if program else i.description)
    return table


def process_json(infos: list[ProcessInfo]) -> list[dict[str, object]]:
    return [{"name": i.name, "group": i.group, "state": i.state, "pid": i.pid or None, "uptime_s": i.uptime_s,
             "exitstatus": i.exitstatus, "spawnerr": i.spawnerr or None, "log": i.logfile} for i in infos]


def _context():
    from dolphin.config.services import load_services_config
    from dolphin.supervision.family import family_paths, require_running

    cfg = load_services_config()
    paths = family_paths()
    return cfg, paths, require_running(paths)


@app.command("status")
def status(
    names: Annotated[list[str] | None, typer.Argument(help="Only these services (short names or group:name).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Every program (or only the ones named): state, pid, uptime."""
    from dolphin.config.services import load_services_config
    from dolphin.supervision.family import resolve_many

    # an unknown name fails first, listing the valid ones
    wanted = {p.fullname for p in resolve_many(names, load_services_config())} if names else None
    _, paths, sup = _context()
    infos = [i for i in sup.all_processes() if wanted is None or i.fullname in wanted]
    if json_out:
        print_json({"socket": str(paths.socket), "processes": process_json(infos)})
        return
    console.print(process_table(infos))


ACTION_STYLE = {ServiceAction.START: "green", ServiceAction.STOP: "yellow", ServiceAction.RESTART: "green"}


def _act(names: list[str], action: ServiceAction, *, hold: bool = False) -> None:
    from dolphin.supervision.actions import act
    from dolphin.supervision.family import resolve_many
    from dolphin.supervision.holds import set_hold

    cfg, paths, sup = _context()
    programs = resolve_many(names, cfg)  # every name is checked before anything is touched
    for program in programs:
        if action is ServiceAction.STOP and hold:
            set_hold(paths.home, program.name, True)      # before the stop: MHS must not race it back
        result = act(sup, program.fullname, action)
        verb, _, rest = result.summary().partition(" ")
        console.print(f"[{ACTION_STYLE[action]}]{verb}[/] {rest}")
        if action is not ServiceAction.STOP and set_hold(paths.home, program.name, False):
            console.print(f"  [dim]{program.name} is no longer held: MHS restarts it again if it stops[/]")
        elif action is ServiceAction.STOP and hold:
            console.print(f"  [dim]held: MHS leaves {program.name} stopped until `dolphin svc start {program.name}`[/]")
        elif action is ServiceAction.STOP and program.critical_data and cfg.mhs.recovery:
            console.print(f"  [yellow]MHS restarts {program.name} at its next check (every {cfg.mhs.check_interval_s:g} s) "
                          f"(critical data); `dolphin svc stop --hold {program.name}` keeps it stopped[/]")


@app.command("start")
def start(names: NamesArg) -> None:
    """Start services and wait until they are RUNNING."""
    _act(names, ServiceAction.START)


@app.command("stop")
def stop(names: NamesArg,
         hold: Annotated[bool, typer.Option("--hold", help="Keep it stopped: MHS does not restart a held "
                                                           "service (`svc start` lifts the hold).")] = False) -> None:
    """Stop services (MHS restarts a stopped critical data service unless it is held)."""
    _act(names, ServiceAction.STOP, hold=hold)


@app.command("restart")
def restart(names: NamesArg) -> None:
    """Stop then start services, waiting for RUNNING (failures show the last log lines)."""
    _act(names, ServiceAction.RESTART)


@app.command("logs")
def logs(
    name: Annotated[str, typer.Argument(help="Service short name or group:name.")],
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new lines (Ctrl-C to stop).")] = False,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, max=100_000, help="Lines to show.")] = 40,
) -> None:
    """The tail of a service's log, through supervisord."""
    from dolphin.supervision.programs import resolve

    cfg, _, sup = _context()
    program = resolve(name, cfg)
    text = sup.tail(program.fullname, max(4096, lines * 200))
    tail = text.splitlines()[-lines:]
    for line in tail:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if not follow:
        return
    _, offset = sup.read_from(program.fullname, 0, 0)
    try:
        while True:
            time.sleep(0.5)
            chunk, offset = sup.read_from(program.fullname, offset)
            for line in chunk.splitlines():
                console.print(line, markup=False, highlight=False, soft_wrap=True)
    except KeyboardInterrupt:
        return
