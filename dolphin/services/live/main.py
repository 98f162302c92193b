"""The `live` program's entry point: flags, the preflight, then the service (see ``__main__``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from dolphin.services.runtime import run_service


def preflight_lines(report: object) -> list[str]:
    """One line per check, failures first marked (the log of a refused start)."""
    checks = getattr(report, "checks", [])
    return [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.reason}" for c in checks]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dolphin.services.live",
                                     description="The live trader (testnet unless --mainnet --yes-mainnet).")
    parser.add_argument("--mainnet", action="store_true", help="trade on Binance mainnet (real money)")
    parser.add_argument("--yes-mainnet", action="store_true", help="the confirmation a supervised service gives")
    parser.add_argument("--skip-preflight", action="store_true",
                        help="drills and tests only: start without the preflight (logged as a warning)")
    args = parser.parse_args(argv)
    if args.mainnet != args.yes_mainnet:
        print("error: a supervised live trader trades mainnet only with both --mainnet and --yes-mainnet",
              file=sys.stderr)
        return 2
    from dolphin.config.services import load_services_config
    from dolphin.errors import DolphinError
    from dolphin.execution.live.preflight import run_preflight
    from dolphin.execution.live.venue import keys_file, load_keys, resolve_venue
    from dolphin.paths import runtime_root
    from dolphin.services.live.service import LiveOptions, live_services_config, run

    try:
        scfg = live_services_config(load_services_config())
        venue = resolve_venue(mainnet=args.mainnet)        # refused here, in one line, before any connection
        load_keys(venue, keys_file(runtime_root(), scfg.live.keys_file))
        if not args.skip_preflight:
            report = asyncio.run(run_preflight(scfg, mainnet=args.mainnet, home=runtime_root(),
                                               strategy=scfg.trader.strategy))
            for line in preflight_lines(report):
                print(line, flush=True)
            if not report.ok:
                print(f"error: preflight failed ({len(report.failed)} check(s)): live trading refused",
                      file=sys.stderr, flush=True)
                return 40
    except DolphinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.skip_preflight:
        logging.getLogger("dolphin.live").warning("started WITHOUT the preflight (--skip-preflight)")
    options = LiveOptions(mainnet=args.mainnet)
    return run_service("live", lambda ctx: run(ctx, options))
