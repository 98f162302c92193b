"""`dolphin kill pause|reduce|halt|clear [--reason]`: the operator's kill switch (docs/trader.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from commands._output import console, print_json

if TYPE_CHECKING:
    from dolphin.execution.kill_switch import KillSwitch

app = typer.Typer(help="The kill switch: pause (no entries), reduce (exits only), halt (no orders), clear.",
                  no_args_is_help=True)

ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (journaled with who and when).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

STYLE = {"clear": "bold green", "pause": "bold yellow", "reduce": "bold dark_orange", "halt": "bold white on red"}


def _switch() -> KillSwitch:
    from dolphin.config.services import load_services_config
    from dolphin.execution.kill_switch import KillSwitch
    from dolphin.paths import runtime_root

    return KillSwitch.under(runtime_root(), load_services_config().trader.kill_switch)


def _set(level: str, reason: str, json_out: bool) -> None:
    from dolphin.enums import KillLevel

    switch = _switch()
    switch.engage(KillLevel(level), reason=reason)
    effective = switch.state()
    if json_out:
        print_json({"level": str(effective.level), "reason": effective.reason, "by": effective.by,
                    "at": effective.at, "state_file": str(switch.state_path), "kill_file": str(switch.path)})
        return
    lvl = str(effective.level)
    console.print(f"[{STYLE[lvl]}] {lvl.upper()} [/]  {effective.level.meaning}"
                  + (f"  ({effective.reason})" if effective.reason else ""))
    if effective.level != KillLevel(level):
        console.print(f"[yellow]the file {switch.path} still holds the switch at halt; remove it to {level}[/]")
    console.print("the trader applies it at its next scan; `dolphin kill status` shows what it applies", style="dim")


@app.command("pause")
def pause(reason: ReasonOpt = "", json_out: JsonOpt = False) -> None:
    """No new entries; open positions keep being managed."""
    _set("pause", reason, json_out)


@app.command("reduce")
def reduce(reason: ReasonOpt = "", json_out: JsonOpt = False) -> None:
    """Only position-reducing orders (exits)."""
    _set("reduce", reason, json_out)


@app.command("halt")
def halt(reason: ReasonOpt = "", json_out: JsonOpt = False) -> None:
    """No orders at all; open orders are cancelled."""
    _set("halt", reason, json_out)


@app.command("clear")
def clear(reason: ReasonOpt = "", json_out: JsonOpt = False) -> None:
    """Trade as usual again."""
    _set("clear", reason, json_out)


@app.command("status")
def status(json_out: JsonOpt = False) -> None:
    """The switch as set, and what the running trader last applied (from the bus, when it answers)."""
    switch = _switch()
    state = switch.state()
    applied = _trader_applied()
    if json_out:
        print_json({"level": str(state.level), "reason": state.reason, "by": state.by, "at": state.at,
                    "trader_applies": applied})
        return
    lvl = str(state.level)
    console.print(f"[{STYLE[lvl]}] {lvl.upper()} [/]  {state.level.meaning}"
                  + (f"  — {state.reason}" if state.reason else "") + (f"  (by {state.by})" if state.by else ""))
    if applied is None:
        console.print("the trader's state is not on the bus (is it running?)", style="dim")
    elif applied != lvl:
        console.print(f"the trader still applies {applied}: it changes at its next scan", style="yellow")


def _trader_applied() -> str | None:
    from dolphin.bus import BusUnavailableError, schema
    from dolphin.bus.access import Bus
    from dolphin.bus.client import connect

    try:
        client = connect(cluster_connect_timeout=3.0)
    except BusUnavailableError:
        return None
    try:
        state = Bus(client, source="dolphin kill").get(schema.STATE_BLUE, schema.LATEST)
    finally:
        client.shutdown()
    return None if state is None else state.kill_level
