"""`dolphin hz serve|status`: run the embedded bus member, and look at any bus."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from commands._output import console, print_json

app = typer.Typer(help="The Hazelcast bus: run the embedded member, inspect a cluster.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind. Anything but loopback exposes the bus.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0 = any free port).", envvar="DOLPHIN_HZ_PORT")] = 5701,
    cluster_name: Annotated[str, typer.Option(help="Cluster name clients must present.",
                                              envvar="DOLPHIN_HZ_CLUSTER")] = "dolphin",
    data_dir: Annotated[Path | None, typer.Option(help="Snapshot maps and CP values here; restore them on start.")] = None,
    require_credentials: Annotated[bool, typer.Option(
        "--require-credentials",
        help="Also check a username and password: DOLPHIN_HZ_USERNAME / DOLPHIN_HZ_PASSWORD, or the 0600 "
             "file DOLPHIN_HZ_CREDENTIALS_FILE names (the family's member always does).")] = False,
    snapshot_interval: Annotated[float, typer.Option(help="Seconds between snapshots when data changed.")] = 2.0,
    ready_file: Annotated[Path | None, typer.Option(help="Write {host, port, pid, member_uuid} JSON here when ready.")] = None,
    log_level: Annotated[str, typer.Option(help="Log level of the member.")] = "INFO",
) -> None:
    """Run the embedded Hazelcast-protocol member in the foreground (stop with Ctrl-C or SIGTERM)."""
    from dolphin.bus.errors import BusConfigError, MemberStartError
    from dolphin.bus.member.cli import MemberConfigError, build_config, configure_logging
    from dolphin.bus.member.embedded import serve as run_member
    from dolphin.bus.member.member import MemberStartFailed

    configure_logging(log_level)
    try:
        config = build_config(host=host, port=port, cluster_name=cluster_name, data_dir=data_dir,
                              require_credentials=require_credentials, snapshot_interval_s=snapshot_interval)
    except MemberConfigError as exc:
        raise BusConfigError(str(exc)) from exc
    try:
        run_member(config, ready_file=ready_file)
    except MemberStartFailed as exc:
        raise MemberStartError(str(exc)) from exc


@app.command("status")
def status(
    json_out: JsonOpt = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the cluster.")] = 5.0,
) -> None:
    """Member address, cluster, maps with sizes and the age of the latest keys (DOLPHIN_HZ_* settings)."""
    from dolphin.bus.client import connect
    from dolphin.bus.settings import BusSettings
    from dolphin.bus.status import collect_status

    logging.getLogger("hazelcast").setLevel(logging.CRITICAL)  # its retry warnings are not for operators
    settings = replace(BusSettings.from_env(), connect_timeout_s=timeout)
    client = connect(settings, client_name="dolphin-hz-status")
    try:
        report = collect_status(client, settings)
    finally:
        client.shutdown()
    if json_out:
        import msgspec

        print_json(msgspec.to_builtins(report))
        return
    kind = "embedded member" if report.embedded else "member"
    for m in report.members:
        console.print(f"[bold]{kind}[/] {m.address}  uuid {m.uuid}  version {m.version}  "
                      f"partitions {m.partitions}  cluster [bold]{report.cluster_name}[/]  "
                      f"(client {report.client_version})")
    health = report.cluster
    if health is not None:
        style = "green" if health.whole else "bold red"
        missing = f"; missing {', '.join(health.missing)}" if health.missing else ""
        console.print(f"[bold]cluster[/] [{style}]{health.summary()}[/]{missing}")
    maps = Table(title="maps")
    maps.add_column("map")
    maps.add_column("entries", justify="right")
    for mv in report.maps:
        maps.add_row(mv.name, str(mv.size))
    if not report.maps:
        maps.add_row("(none)", "")
    console.print(maps)
    keys = Table(title="latest keys")
    keys.add_column("map")
    keys.add_column("key")
    keys.add_column("age", justify="right")
    keys.add_column("state")
    for k in report.keys:
        if not k.present:
            keys.add_row(k.map_name, k.key, "", "[dim]absent[/]")
        elif not k.valid:
            keys.add_row(k.map_name, k.key, "", f"[red]rejected[/] {k.problem}")
        else:
            keys.add_row(k.map_name, k.key, "" if k.age_s is None else _age(k.age_s), "[green]ok[/]")
    console.print(keys)


@app.command("member-config")
def member_config(
    member: Annotated[list[str], typer.Option(
        "--member", help="host:port of every member of the cluster (repeat; the TCP-IP join list).")],
    host: Annotated[str, typer.Option(help="The address this member binds and advertises (one of --member).")],
    port: Annotated[int, typer.Option(help="This member's port.")] = 5701,
    cluster_name: Annotated[str, typer.Option(help="Cluster name clients must present.",
                                              envvar="DOLPHIN_HZ_CLUSTER")] = "dolphin",
    backup_count: Annotated[int, typer.Option(help="Synchronous backups of every DOLPHIN map.")] = 1,
) -> None:
    """Print the hazelcast.xml of one member of a real cluster for DOLPHIN's maps (docs/deploy.md)."""
    from dolphin.bus.cluster_config import MemberConfigSpec, member_config_xml
    from dolphin.errors import UsageError

    if f"{host}:{port}" not in member:
        raise UsageError(f"{host}:{port} is not in the --member list: a member must join itself too")
    try:
        spec = MemberConfigSpec(cluster_name=cluster_name, host=host, port=port, members=tuple(member),
                                backup_count=backup_count)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    typer.echo(member_config_xml(spec), nl=False)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
