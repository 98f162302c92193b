"""`dolphin sim`: run the simulator exchange (Binance USD-M REST + WebSocket) in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands._output import console, print_json


def sim(
    host: Annotated[str, typer.Option(
        help="Address to bind. Anything but loopback exposes the simulator.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0 = any free port).", envvar="DOLPHIN_SIM_PORT")] = 8790,
    symbols: Annotated[str | None, typer.Option(
        help="A count (first N of the universe or file; default all) or SYM1,SYM2,...")] = None,
    source: Annotated[str, typer.Option(help="'synthetic' or a klines .parquet/.csv file to replay.")] = "synthetic",
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second (e.g. 60 for a fast warm-up).")] = 1.0,
    seed: Annotated[int, typer.Option(min=0, help="Synthetic market seed.")] = 7,
    start: Annotated[str | None, typer.Option(
        help="Simulated start: ms or ISO time (default: synthetic runs on the wall clock with day 1's first "
             "panic 3 minutes away; a replay starts a day into its file).")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Persist the account here and restore it on start.")] = None,
    balance: Annotated[float, typer.Option(help="Starting USDT balance of a new account.")] = 25_000.0,
    tick_ms: Annotated[int, typer.Option(help="Emission tick in wall milliseconds.")] = 100,
    no_rate_limits: Annotated[bool, typer.Option(
        "--no-rate-limits", help="Do not enforce request-weight limits.")] = False,
    fault: Annotated[list[str] | None, typer.Option(
        "--fault", help="Inject a fault (repeatable), e.g. error:status=503,code=-1001,count=2 | ack:mode=drop | "
                        "partial:ratio=0.5,delay_ms=2s | ws_drop:every_ms=30s | listenkey:ttl_ms=60s. "
                        "At run time: POST /sim/v1/faults on loopback.")] = None,
    ready_file: Annotated[Path | None, typer.Option(
        help="Write {rest_url, ws_url, port, pid} JSON here when ready.")] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    json_out: Annotated[bool, typer.Option("--json", help="Print the base URLs as one JSON object on start.")] = False,
) -> None:
    """Serve Binance USD-M REST and WebSocket streams on loopback (stop with Ctrl-C or SIGTERM).

    Credentials it accepts: DOLPHIN_SIM_API_KEY / DOLPHIN_SIM_API_SECRET, else
    DOLPHIN_BINANCE_API_KEY / DOLPHIN_BINANCE_API_SECRET, else the documented defaults.
    """
    import logging
    from typing import Any

    from dolphin.market.sim.app import serve
    from dolphin.market.sim.cli import announce_line, build_config, configure_logging

    configure_logging(log_level)
    config, default_keys = build_config(host=host, port=port, symbols=symbols, source=source, speed=speed, seed=seed,
                                        start=start, state_dir=state_dir, api_key=None, api_secret=None,
                                        balance=balance, tick_ms=tick_ms, faults=tuple(fault or ()))
    if default_keys:
        logging.getLogger("dolphin.market.sim").warning(
            "no API credentials configured: accepting the default simulator key %r", config.api_key)

    def announce(simulator: Any) -> None:
        if json_out:
            print_json({"rest_url": simulator.rest_url, "ws_url": simulator.ws_url, "port": simulator.port,
                        "start_ms": simulator.start_ms, "speed": config.speed, "clock": simulator.clock_mode,
                        "resumed": simulator.resumed, "faults": list(config.faults),
                        "source": simulator.source.describe(), "api_key": config.api_key})
        else:
            console.print(announce_line(simulator), markup=False, soft_wrap=True)

    serve(config, ready_file=ready_file, enforce_limits=not no_rate_limits, announce=announce)
