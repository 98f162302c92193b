"""Command line of the simulator process, shared by ``python -m dolphin.market.sim`` and `dolphin sim`.

Credentials the simulator accepts come from ``--api-key``/``--api-secret``, else
``DOLPHIN_SIM_API_KEY``/``DOLPHIN_SIM_API_SECRET``, else ``DOLPHIN_BINANCE_API_KEY``/
``DOLPHIN_BINANCE_API_SECRET`` (so a rehearsal shares one environment with the trader),
else the documented loopback defaults. The secret is never printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from dolphin.market.errors import MarketError
from dolphin.market.sim.config import SimConfig, credentials, parse_start, parse_symbols
from dolphin.market.urls import DEFAULT_SIM_HOST, DEFAULT_SIM_PORT

PORT_ENV = "DOLPHIN_SIM_PORT"


def configure_logging(level: str = "INFO") -> None:
    """One line per event on stderr; quiet if the host process already configured logging."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(stream=sys.stderr, level=level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dolphin.market").setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def build_config(*, host: str, port: int, symbols: str | None, source: str, speed: float, seed: int,
                 start: str | None, state_dir: Path | None, api_key: str | None, api_secret: str | None,
                 balance: float, tick_ms: int = 100, faults: tuple[str, ...] = ()) -> tuple[SimConfig, bool]:
    """(config, using default credentials) from command-line values; raises SimConfigError."""
    key, secret, default = credentials(api_key, api_secret)
    if source != "synthetic" and not Path(source).expanduser().is_file():
        from dolphin.market.errors import SimConfigError

        raise SimConfigError(f"--source {source!r}: no such file (use 'synthetic' or a klines .parquet/.csv)")
    config = SimConfig(host=host, port=port, source=source if source == "synthetic" else str(Path(source).expanduser()),
                       symbols=parse_symbols(symbols), seed=seed, speed=speed, start_ms=parse_start(start),
                       state_dir=state_dir, api_key=key, api_secret=secret, balance=balance, tick_ms=tick_ms,
                       faults=tuple(faults))
    return config, default


def announce_line(sim: Any) -> str:
    from dolphin.market.sim.app import iso

    faults = f", faults: {'; '.join(sim.config.faults)}" if sim.config.faults else ""
    return (f"dolphin sim: REST {sim.rest_url}  WS {sim.ws_url}  "
            f"(sim time {iso(sim.start_ms)}, {sim.clock_description()}, speed {sim.config.speed:g}x, "
            f"{sim.source.describe()}{faults})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dolphin.market.sim",
                                description="Run the DOLPHIN simulator exchange (Binance USD-M protocol) "
                                            "in the foreground.")
    p.add_argument("--host", default=DEFAULT_SIM_HOST, help=f"address to bind (default {DEFAULT_SIM_HOST})")
    p.add_argument("--port", type=int, default=int(os.environ.get(PORT_ENV) or DEFAULT_SIM_PORT),
                   help=f"port to bind, 0 = any free (default ${PORT_ENV} or {DEFAULT_SIM_PORT})")
    p.add_argument("--symbols", default=None, help="a count (first N of the universe/file) or SYM1,SYM2,...")
    p.add_argument("--source", default="synthetic", help="'synthetic' (default) or a klines .parquet/.csv to replay")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    p.add_argument("--seed", type=int, default=7, help="market seed (default 7)")
    p.add_argument("--start", default=None,
                   help="simulated start: ms or ISO time (default: synthetic runs on the wall clock, its market "
                        "placed 3 min before day 1's first panic; a replay starts a day into its file)")
    p.add_argument("--state-dir", type=Path, default=None, help="persist the account here and restore it on start")
    p.add_argument("--api-key", default=None, help="API key to accept (default from the environment)")
    p.add_argument("--api-secret", default=None, help="API secret to accept (prefer the environment)")
    p.add_argument("--balance", type=float, default=25_000.0, help="starting USDT balance (default 25000)")
    p.add_argument("--tick-ms", type=int, default=100, help="emission tick in wall ms (default 100)")
    p.add_argument("--no-rate-limits", action="store_true", help="do not enforce request-weight limits")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="inject a fault, e.g. error:status=503,code=-1001,count=2 | ack:mode=drop | "
                        "partial:ratio=0.5,delay_ms=2s | ws_drop:every_ms=30s | listenkey:ttl_ms=60s (repeatable)")
    p.add_argument("--ready-file", type=Path, default=None, help="write {rest_url, ws_url, port, pid} JSON when ready")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    log = logging.getLogger("dolphin.market.sim")
    from dolphin.market.sim.app import serve

    try:
        config, default_keys = build_config(host=args.host, port=args.port, symbols=args.symbols, source=args.source,
                                            speed=args.speed, seed=args.seed, start=args.start,
                                            state_dir=args.state_dir, api_key=args.api_key,
                                            api_secret=args.api_secret, balance=args.balance, tick_ms=args.tick_ms,
                                            faults=tuple(args.fault))
        if default_keys:
            log.warning("no API credentials configured: accepting the default simulator key %r", config.api_key)

        def announce(sim: Any) -> None:
            print(announce_line(sim), flush=True)

        serve(config, ready_file=args.ready_file, enforce_limits=not args.no_rate_limits, announce=announce)
    except MarketError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
