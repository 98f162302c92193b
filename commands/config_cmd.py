"""`dolphin config show|check`: resolved strategy parameters and champion integrity."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from commands._output import console, print_json

app = typer.Typer(help="Strategy configs (blue, green) and champion integrity.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Config name (blue, green) or a path to a .yml file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("show")
def show(name: NameArg = "blue", json_out: JsonOpt = False) -> None:
    """Print the resolved parameters of a config and its champion hash."""
    from dolphin.config import champion_hash, load_config, resolve_config_path

    path = resolve_config_path(name)
    cfg = load_config(path)
    digest = champion_hash(cfg.frozen_params())
    if json_out:
        print_json({"name": cfg.name, "path": str(path), "hash": digest, "params": cfg.to_dict()})
        return
    frozen = cfg.frozen_params()
    table = Table(title=f"{cfg.name} — {path}", show_lines=False)
    table.add_column("section")
    table.add_column("key")
    table.add_column("value", justify="right")
    table.add_column("frozen", justify="center")
    for section, values in cfg.to_dict().items():
        if not isinstance(values, dict):
            table.add_row("", section, str(values), "")
            continue
        for key, value in values.items():
            table.add_row(section, key, repr(value), "●" if key in frozen.get(section, {}) else "")
    console.print(table)
    console.print(f"champion hash: [bold]{digest}[/]")


@app.command("check")
def check(name: NameArg = "blue", json_out: JsonOpt = False) -> None:
    """Fail (exit 4) naming each drifted key when the frozen parameters differ from the champion."""
    from dolphin.config import CHAMPION_HASH, champion_hash, drift, load_config
    from dolphin.errors import DriftError

    cfg = load_config(name)
    digest = champion_hash(cfg.frozen_params())
    drifted = drift(cfg.frozen_params())
    if json_out:
        print_json({"name": cfg.name, "hash": digest, "champion_hash": CHAMPION_HASH,
                    "ok": not drifted, "drift": drifted})
        if drifted:
            raise typer.Exit(DriftError.exit_code)
        return
    if drifted:
        raise DriftError(f"{cfg.name}: champion drift in {len(drifted)} key(s) (hash {digest}, champion "
                         f"{CHAMPION_HASH}): " + "; ".join(drifted), drifted)
    console.print(f"[green]ok[/] {cfg.name}: frozen parameters match the champion (hash {digest})")
