"""``python -m dolphin.services.bridge [--watch DIR] [--poll S]`` — the scan bridge under `run_service`."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from dolphin.services.bridge.service import BridgeOptions, run_bridge
from dolphin.services.runtime import run_service


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"{value} must be in (0, 60] seconds")
    return value


def parse_args(argv: list[str] | None = None) -> BridgeOptions:
    parser = argparse.ArgumentParser(
        prog="python -m dolphin.services.bridge",
        description="Push new Arrow scan files (NG5) written by an external scanner to "
                    "DOLPHIN_FEATURES[latest_eigen_scan]. New files are found by mtime, polling.")
    parser.add_argument("--watch", type=Path, default=None, metavar="DIR",
                        help="arrow_scans directory, or a directory holding one (default: <runtime root>/arrow_scans)")
    parser.add_argument("--poll", type=_positive_seconds, default=BridgeOptions.poll_s, metavar="S",
                        help=f"seconds between polls (default {BridgeOptions.poll_s})")
    args = parser.parse_args(argv)
    return BridgeOptions(watch=args.watch, poll_s=args.poll)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    return run_service("bridge", functools.partial(run_bridge, options=options))


if __name__ == "__main__":
    sys.exit(main())
