"""`dolphin live [--config] [--mainnet --yes-mainnet]`, `dolphin live status`, `dolphin live keys` (docs/live.md)."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from commands._output import console, print_json

app = typer.Typer(help="Live trading on Binance USD-M: testnet by default; mainnet needs --mainnet and a typed "
                       "confirmation.", invoke_without_command=True)

CONFIRM_WORD = "MAINNET"


def _confirm_mainnet(mainnet: bool, yes_mainnet: bool) -> None:
    from dolphin.errors import UsageError

    if yes_mainnet and not mainnet:
        raise UsageError("--yes-mainnet confirms --mainnet: give both, or neither for testnet")
    if not mainnet or yes_mainnet:
        return
    if not sys.stdin.isatty():
        raise UsageError("mainnet needs a typed confirmation on a terminal (or --yes-mainnet for a supervised "
                         "service)")
    console.print("[bold white on red] MAINNET [/] orders will spend real money on fapi.binance.com.")
    typed = typer.prompt(f"Type {CONFIRM_WORD} to continue", default="", show_default=False)
    if typed.strip() != CONFIRM_WORD:
        raise UsageError(f"mainnet not confirmed (typed {typed.strip()!r}, expected {CONFIRM_WORD})")


def show_preflight(report: Any) -> None:
    from rich.table import Table

    table = Table(title=f"preflight — {report.network}", show_lines=False)
    table.add_column("check")
    table.add_column("", justify="center")
    table.add_column("reason", overflow="fold")
    for c in report.checks:
        table.add_row(c.name, "[green]pass[/]" if c.ok else "[bold red]FAIL[/]", c.reason)
    console.print(table)
    if report.ok:
        console.print(f"[green]all {len(report.checks)} checks passed[/]")
    else:
        console.print(f"[bold red]{len(report.failed)} of {len(report.checks)} checks failed[/]")


@app.callback()
def live(
    ctx: typer.Context,
    config: Annotated[str, typer.Option("--config", help="Strategy config (blue, green or a .yml path).")] = "",
    mainnet: Annotated[bool, typer.Option("--mainnet", help="Trade on Binance mainnet: real money.")] = False,
    yes_mainnet: Annotated[bool, typer.Option("--yes-mainnet", help="Confirm --mainnet without the typed "
                                                                    "confirmation (a supervised service).")] = False,
) -> None:
    """Trade live in the foreground with a status line: preflight first (refused on any failure), then the trader.

    Logs go to run_logs/logs/live.log; Ctrl-C stops it (the journal keeps the books).
    """
    if ctx.invoked_subcommand is not None:
        return
    import asyncio
    import os

    from rich.live import Live
    from rich.text import Text

    from dolphin.config import load_config
    from dolphin.config.services import load_services_config
    from dolphin.errors import DolphinError
    from dolphin.execution.live.preflight import PreflightFailed, run_preflight
    from dolphin.paths import runtime_root
    from dolphin.services.live.service import LiveOptions, live_services_config, run
    from dolphin.services.runtime import run_service
    from dolphin.store.journal import JournalCorrupt, JournalLocked

    _confirm_mainnet(mainnet, yes_mainnet)
    if config:
        os.environ["DOLPHIN_TRADER_STRATEGY"] = config
    scfg = live_services_config(load_services_config())
    load_config(scfg.trader.strategy)
    report = asyncio.run(run_preflight(scfg, mainnet=mainnet, home=runtime_root(), strategy=scfg.trader.strategy))
    show_preflight(report)
    if not report.ok:
        raise PreflightFailed(f"preflight failed: {', '.join(c.name for c in report.failed)} — live trading refused")
    log_file = runtime_root() / "logs" / "live.log"
    status = Text(f"live {scfg.trader.strategy} on {report.network}: starting… (log: {log_file})")

    def on_step(core: Any, result: Any) -> None:
        eng, st = core.engine, core.stats
        pos = eng.open_position
        held = f"{pos.side} {pos.asset} @ {pos.entry_price:g}" if pos else "flat"
        status.plain = (f"{report.network}  scan {st.last_scan_number}  capital {eng.capital:,.2f}  {held}  "
                        f"trades {len(core.trades)}  orders {st.orders}  refused {st.refused}  "
                        f"kill {core.kill_state.level}  latency {st.last_latency_ms or 0:.1f} ms")

    options = LiveOptions(mainnet=mainnet)
    try:
        with Live(status, console=console, refresh_per_second=4, transient=False):
            code = run_service("live", lambda ctx: run(ctx, options, on_step=on_step), log_file=log_file,
                               raise_crash=True)
    except JournalLocked as exc:
        raise DolphinError(f"{exc}: another live trader holds this book (`dolphin svc stop live`?)") from None
    except JournalCorrupt as exc:
        raise DolphinError(f"the live journal is damaged: {exc}") from None
    except (DolphinError, OSError) as exc:
        raise DolphinError(f"the live trader stopped: {exc} (traceback in {log_file})") from None
    except Exception as exc:
        raise DolphinError(f"the live trader crashed: {type(exc).__name__}: {exc} (traceback in {log_file})") from None
    if code:
        raise DolphinError(f"the live trader stopped with an error (exit {code}); see {log_file}")


@app.command("status")
def status(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The live trader's counters and alerts, as it last published them on the bus."""
    import msgspec

    from dolphin.bus import BusUnavailableError, schema
    from dolphin.bus.access import Bus
    from dolphin.bus.client import connect
    from dolphin.errors import DolphinError

    try:
        client = connect(cluster_connect_timeout=3.0)
    except BusUnavailableError as exc:
        raise DolphinError(f"the bus is not reachable: {exc}") from None
    try:
        state = Bus(client, source="dolphin live status").get(schema.STATE_BLUE, schema.LATEST)
    finally:
        client.shutdown()
    live = state.live if state is not None else None
    if state is None or live is None:
        raise DolphinError("no live trader's state on the bus (is `dolphin live` running?)")
    if json_out:
        print_json({"kill_level": state.kill_level, "capital": state.capital, **msgspec.to_builtins(live)})
        return
    render_status(state, live)


def render_status(state: Any, live: Any) -> None:
    from rich.table import Table

    age = time.time() - live.updated_at
    console.print(f"[bold]live[/] on [bold]{live.network}[/] ({live.rest_url}) — kill switch {state.kill_level}, "
                  f"capital {state.capital:,.2f}, updated {age:.0f} s ago")
    table = Table(show_header=False, box=None, padding=(0, 2))
    rows = [
        ("user-data stream", f"{'connected' if live.stream_connected else 'DOWN'}; connects {live.stream_connects}, "
                             f"reconnects {live.stream_reconnects}, storm waits {live.storm_waits}, listen-key "
                             f"renewals {live.listen_key_renewals} (expired {live.listen_key_expirations}), "
                             f"keepalives {live.keepalives} (failed {live.keepalive_failures}), events "
                             f"{live.stream_events}, dropped {live.stream_dropped}, resyncs {live.resyncs}"),
        ("orders", f"{live.orders} sent, {live.legs} legs filled, {live.fills} fills ({live.partial_fills} partial), "
                   f"venue rejects {live.venue_rejects}, unfilled {live.unfilled}, lost acks {live.lost_acks}, "
                   f"rate limited {live.rate_limited}, halt cancels {live.halt_cancels}"),
        ("risk rejects", ", ".join(f"{k} {v}" for k, v in sorted(live.risk_rejects.items())) or "none"),
        ("order types", f"entry {live.entry_order}, exit {live.exit_order}; post-only filled "
                        f"{live.post_only_filled}, fell back to market {live.post_only_fallbacks}"),
        ("latency", f"last {live.last_latency_ms or 0:.1f} ms, p50 {live.latency_p50_ms or 0:.1f} ms; last slippage "
                    f"{'-' if live.last_slippage_bps is None else f'{live.last_slippage_bps:+.1f} bps'}"),
        ("reconciliation", f"{live.reconciles} runs, {live.reconcile_failures} failed; last "
                           f"{'ok' if live.last_reconcile_ok else 'NOT ok'}: {live.last_reconcile_detail}"),
        ("positions", ("UNKNOWN (entries blocked)" if live.positions_unknown else
                       ", ".join(f"{s} {a:+g}" for s, a in live.venue_positions.items()) or "flat")
         + (f"; disputed: {', '.join(live.disputed)}" if live.disputed else "")),
        ("wallet", f"{live.wallet or 0:,.2f} USDT (session start {live.session_start_wallet or 0:,.2f}); "
                   f"auto pauses {live.pauses}, auto halts {live.halts}"),
        ("alerts", ", ".join(f"{k} {v}" for k, v in sorted(live.alerts.items())) or "none"),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    console.print(table)
    for a in live.active_alerts:
        console.print(f"[bold red]ACTIVE[/] {a.kind} {a.symbol}: {a.detail}")
    for a in live.recent_alerts[-5:]:
        console.print(f"[dim]{time.strftime('%H:%M:%S', time.localtime(a.at))}[/] {a.kind} {a.symbol}: {a.detail}")


@app.command("keys")
def keys(from_env: Annotated[bool, typer.Option("--from-env", help="Take them from DOLPHIN_BINANCE_API_KEY/SECRET "
                                                                   "instead of asking.")] = False) -> None:
    """Write the API key pair to the live key file (mode 0600, folder 0700); nothing is printed back."""
    import os

    from dolphin.config.services import load_services_config
    from dolphin.errors import UsageError
    from dolphin.execution.live.venue import keys_file
    from dolphin.market.urls import API_KEY_ENV, API_SECRET_ENV
    from dolphin.paths import runtime_root
    from dolphin.secret_file import write_secret_file

    path = keys_file(runtime_root(), load_services_config().live.keys_file)
    if from_env:
        key, secret = os.environ.get(API_KEY_ENV, ""), os.environ.get(API_SECRET_ENV, "")
    else:
        if not sys.stdin.isatty():
            raise UsageError("`dolphin live keys` asks on a terminal; use --from-env in scripts")
        key = typer.prompt("API key", hide_input=True)
        secret = typer.prompt("API secret", hide_input=True)
    if not key.strip() or not secret.strip():
        raise UsageError(f"both the key and the secret are needed ({API_KEY_ENV}, {API_SECRET_ENV})")
    write_secret_file(path, {"api_key": key.strip(), "api_secret": secret.strip()})
    console.print(f"keys written to {path} (mode 0600)")


def preflight(
    config: Annotated[str, typer.Option("--config", help="Strategy config (blue, green or a .yml path).")] = "",
    mainnet: Annotated[bool, typer.Option("--mainnet", help="Check mainnet (no order is sent; the configured leverage and margin type are set on one symbol).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run the live trader's checks (≥ 20); exit non-zero when any fails."""
    import asyncio
    import os

    import msgspec

    from dolphin.config.services import load_services_config
    from dolphin.execution.live.preflight import PreflightFailed, run_preflight
    from dolphin.paths import runtime_root
    from dolphin.services.live.service import live_services_config

    if config:
        os.environ["DOLPHIN_TRADER_STRATEGY"] = config
    scfg = live_services_config(load_services_config())
    report = asyncio.run(run_preflight(scfg, mainnet=mainnet, home=runtime_root(), strategy=scfg.trader.strategy))
    if json_out:
        print_json({"ok": report.ok, "network": report.network,
                    "checks": [msgspec.to_builtins(c) for c in report.checks]})
        if not report.ok:
            raise typer.Exit(PreflightFailed.exit_code)
        return
    show_preflight(report)
    if not report.ok:
        raise PreflightFailed(f"{len(report.failed)} check(s) failed: {', '.join(c.name for c in report.failed)}")
