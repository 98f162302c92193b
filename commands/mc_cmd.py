"""`dolphin mc run`: an MC-Forewarner assessment now, in the foreground (docs/mcfw.md).

It runs the same assessment as the `mcfw` daemon (`dolphin.services.mcfw.assess`) in
this process, so an operator sees it happen and gets its result even when the family
is down. By default it publishes the report to the bus — an on-demand assessment is
asked for to act on it now (the trader applies it at its next step), not only to read
it — and refuses at once, before computing, when the bus cannot be reached;
``--no-publish`` computes and prints only and never touches the bus.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from commands._output import console, err_console, print_json

if TYPE_CHECKING:
    from dolphin.bus.payloads import McForewarner

app = typer.Typer(help="MC-Forewarner: a Monte-Carlo of the engine over recent history (bible §12, §28.6).",
                  no_args_is_help=True)

STATUS_STYLE = {"GREEN": "bold green", "ORANGE": "bold dark_orange", "RED": "bold red"}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.2f} %"


def _render(p: McForewarner, published: str, history: str) -> None:
    style = STATUS_STYLE.get(str(p.status), "bold")
    console.print(f"[{style}] {p.status} [/]  catastrophic_prob {p.catastrophic_prob:.3f}   "
                  f"envelope {p.envelope_score:.3f}   ({p.source}; {published})")
    if p.reason:
        console.print(f"  [yellow]•[/] {p.reason}")
    table = Table(show_header=False, title="MC-Forewarner")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("paths", f"{p.paths or 0:,} × {p.horizon_days:g} days" if p.horizon_days else str(p.paths or 0)),
        ("drawdown limit", _pct(p.drawdown_limit)),
        ("median / p95 drawdown", f"{_pct(p.median_drawdown)} / {_pct(p.p95_drawdown)}"),
        ("median return", "—" if p.median_return is None else f"{p.median_return * 100:+.2f} %"),
        ("history", history),
        ("ACB boost / max leverage", f"{p.base_boost or 1.0:.3f} / "
                                     f"{'—' if p.max_leverage is None else format(p.max_leverage, '.3f')}"),
        ("seed", str(p.seed)),
        ("compute", f"{p.compute_s or 0.0:.1f} s"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)


MAX_PATHS = 100_000
FLAG_OF = {"min_history_hours": "--min-history-hours", "history_days": "--history-days", "horizon_days": "--days"}


def _check_flags(*, paths: int | None, seed: int | None, boost: float | None, beta: float | None) -> None:
    """Flag values the settings do not bound themselves, as one UsageError line each."""
    import math

    from dolphin.errors import UsageError

    if paths is not None and not 1 <= paths <= MAX_PATHS:
        raise UsageError(f"--paths {paths}: must be between 1 and {MAX_PATHS:,}")
    if seed is not None and not 0 <= seed < 2**32:
        raise UsageError(f"--seed {seed}: must be between 0 and {2**32 - 1}")
    if boost is not None and not (math.isfinite(boost) and 0 < boost <= 10):
        raise UsageError(f"--boost {boost}: must be in (0, 10]")
    if beta is not None and not (math.isfinite(beta) and 0 <= beta <= 10):
        raise UsageError(f"--beta {beta}: must be in [0, 10]")


@app.command("run")
def run(
    paths: Annotated[int | None, typer.Option("--paths",
                                              help="Resampled paths (default: services config mcfw.paths).")] = None,
    days: Annotated[float | None, typer.Option("--days",
                                               help="Horizon of each path in days (default mcfw.horizon_days).")] = None,
    history_days: Annotated[float | None, typer.Option(
        "--history-days", help="Recent history to resample (default mcfw.history_days).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (default mcfw.seed).")] = None,
    min_history_hours: Annotated[float | None, typer.Option(
        "--min-history-hours",
        help="Less usable history than this → FALLBACK_NO_DATA (default mcfw.min_history_hours).")] = None,
    archive: Annotated[Path | None, typer.Option(
        "--archive", help="A scan archive (arrow_scans/ or a root holding one); default the runtime root's.")] = None,
    klines: Annotated[Path | None, typer.Option(
        "--klines", help="Resample scans built from this klines file (Parquet/CSV) instead of an archive.")] = None,
    bar: Annotated[str | None, typer.Option("--bar", help="Bar size for --klines (e.g. 1m); default its own.")] = None,
    config: Annotated[str | None, typer.Option(
        "--config", help="Strategy to assess: blue, green or a .yml (default: the trader's).")] = None,
    boost: Annotated[float | None, typer.Option(
        "--boost", help="ACB base boost (default: the bus's acb_boost, else 1.0).")] = None,
    beta: Annotated[float | None, typer.Option("--beta",
                                               help="ACB beta (default: the bus's acb_boost, else 0.0).")] = None,
    publish: Annotated[bool, typer.Option(
        "--publish/--no-publish", help="Put the report on the bus (default) or only print it.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run an MC-Forewarner assessment now: resample recent history, run the engine over every path, report."""
    import msgspec

    from dolphin.bus import schema
    from dolphin.config import load_config
    from dolphin.config.services import load_services_config
    from dolphin.errors import DataError, UsageError
    from dolphin.paths import require_exists, runtime_root
    from dolphin.services.mcfw.assess import assess, load_history, report_path, save_report, settings_from, to_payload

    if archive is not None and klines is not None:
        raise UsageError("choose one history: --archive PATH or --klines PATH")
    if bar is not None and klines is None:
        raise UsageError("--bar applies to --klines only")
    if archive is not None:
        require_exists(archive, "scan archive", DataError)
    if klines is not None:
        require_exists(klines, "klines file", DataError)
    _check_flags(paths=paths, seed=seed, boost=boost, beta=beta)
    scfg = load_services_config()
    try:
        settings = settings_from(scfg.mcfw, paths=paths, horizon_days=days, history_days=history_days, seed=seed,
                                 min_history_hours=min_history_hours)
    except ValueError as exc:
        text = str(exc)
        for setting, flag in FLAG_OF.items():
            text = text.replace(setting, flag)
        raise UsageError(f"invalid option: {text}") from None
    cfg = load_config(config or scfg.trader.strategy)
    home = runtime_root()

    bus: Any = None
    client: Any = None
    if publish:
        from dolphin.bus import BusUnavailableError
        from dolphin.bus.access import Bus
        from dolphin.bus.client import connect

        try:
            client = connect(cluster_connect_timeout=3.0, client_name="dolphin-mc-run")
        except BusUnavailableError as exc:
            raise type(exc)(f"{exc} — the report could not be published; `dolphin mc run --no-publish` "
                            "computes and prints it without the bus") from None
        bus = Bus(client, source="dolphin mc run")
    try:
        acb_boost, acb_beta, acb_source = 1.0, 0.0, "default"
        if bus is not None and (boost is None or beta is None):
            from dolphin.services.mcfw.service import acb_state

            acb = bus.get(schema.FEATURES, schema.ACB_BOOST)
            if acb is not None:
                acb_boost, acb_beta = acb_state(acb)
                acb_source = "bus"
        if boost is not None or beta is not None:
            acb_source = "flags" if boost is not None and beta is not None else f"{acb_source} and flags"
        acb_boost = acb_boost if boost is None else boost
        acb_beta = acb_beta if beta is None else beta
        history = load_history(home, scfg.mcfw, settings.history_days, archive=archive, klines=klines, bar=bar)
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=err_console, transient=True, disable=json_out)
        t0 = time.monotonic()
        with progress:
            task = progress.add_task("paths", total=settings.paths)
            assessment = assess(history, cfg, settings, boost=acb_boost, beta=acb_beta,
                                progress=lambda done, total: progress.update(task, completed=done, total=total))
        compute_s = time.monotonic() - t0
        previous = bus.get(schema.FEATURES, schema.MC_FOREWARNER_LATEST) if bus is not None else None
        payload = to_payload(assessment, timestamp_s=time.time(), compute_s=compute_s, previous=previous)
        published = "printed only (--no-publish)"
        if bus is not None:
            bus.put(schema.FEATURES, schema.MC_FOREWARNER_LATEST, payload)
            save_report(report_path(home), payload)
            published = f"published to {schema.FEATURES}[{schema.MC_FOREWARNER_LATEST}]"
    finally:
        if client is not None:
            client.shutdown()
    span = "—"
    if payload.history_start and payload.history_end:
        span = f"{payload.history_start[:16]} → {payload.history_end[:16]} ({payload.history_days or 0:.2f} d)"
    history_text = f"{span}, {payload.assets or 0} assets, {history.source}"
    if json_out:
        print_json({"published": bus is not None, "acb": {"boost": acb_boost, "beta": acb_beta, "from": acb_source},
                    "history": history.source, "report": msgspec.to_builtins(payload)})
        return
    _render(payload, published, history_text)
