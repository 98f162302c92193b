"""``python -m dolphin.services.obf`` — the OBF daemon under `run_service`.

Market URLs come from DOLPHIN_MARKET_REST_URL / DOLPHIN_MARKET_WS_URL (else the configured
venue), the runtime root from DOLPHIN_HOME, the bus from DOLPHIN_HZ_PORT / DOLPHIN_HZ_MEMBERS;
the rest from configs/services.yml (``obf:``; DOLPHIN_OBF_CADENCE, DOLPHIN_OBF_SNAPSHOT_S and
DOLPHIN_OBF_WARMUP_S override it).
"""

from __future__ import annotations

import argparse
import functools
import sys

from dolphin.services.obf.service import CADENCES, ObfOptions, run_obf
from dolphin.services.runtime import run_service


def parse_args(argv: list[str] | None = None) -> ObfOptions:
    parser = argparse.ArgumentParser(
        prog="python -m dolphin.services.obf",
        description="The OBF daemon: depth5 books of every USDT perpetual the venue lists → the universe snapshot "
                    "(DOLPHIN_FEATURES[obf_universe_latest]), per-bar OB features (DOLPHIN_FEATURES_SHARD_NN, "
                    "DOLPHIN_FEATURES[ob_macro_latest]) and the Parquet history under <DOLPHIN_HOME>/ob_history.")
    parser.add_argument("--cadence", choices=CADENCES, default=None, help="depth5 stream cadence (obf.cadence)")
    parser.add_argument("--warmup", type=float, default=None, metavar="S", help="first-publish warm-up (obf.warmup_s)")
    parser.add_argument("--snapshot-interval", type=float, default=None, metavar="S",
                        help="universe snapshot and Parquet flush period (obf.snapshot_interval_s)")
    args = parser.parse_args(argv)
    if args.warmup is not None and args.warmup < 0 or args.snapshot_interval is not None and args.snapshot_interval <= 0:
        parser.error("--warmup must be >= 0 and --snapshot-interval > 0")
    return ObfOptions(cadence=args.cadence, warmup_s=args.warmup, snapshot_interval_s=args.snapshot_interval)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    return run_service("obf", functools.partial(run_obf, options=options))


if __name__ == "__main__":
    sys.exit(main())
