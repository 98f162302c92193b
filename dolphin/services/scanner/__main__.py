"""``python -m dolphin.services.scanner [--precision float64|arb512]`` — the scanner under `run_service`.

Market URLs come from DOLPHIN_MARKET_REST_URL / DOLPHIN_MARKET_WS_URL (else the configured
venue), the venue kind from DOLPHIN_MARKET (sim | binance), the runtime root from
DOLPHIN_HOME, the bus from DOLPHIN_HZ_PORT / DOLPHIN_HZ_MEMBERS; the rest from
configs/services.yml (``scanner:``).
"""

from __future__ import annotations

import argparse
import functools
import sys

from dolphin.scan.precision import PRECISIONS
from dolphin.services.runtime import run_service
from dolphin.services.scanner.service import ScannerOptions, run_scanner


def parse_args(argv: list[str] | None = None) -> ScannerOptions:
    parser = argparse.ArgumentParser(
        prog="python -m dolphin.services.scanner",
        description="The NG8 eigen scanner: 5-second bars from the market streams, one scan per bar (all four "
                    "windows), one Arrow file per scan under <DOLPHIN_HOME>/arrow_scans and one write of "
                    "DOLPHIN_FEATURES[latest_eigen_scan] per live scan.")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="scan arithmetic (default: scanner.precision of the services config, float64)")
    args = parser.parse_args(argv)
    return ScannerOptions(precision=args.precision)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    return run_service("scanner", functools.partial(run_scanner, options=options))


if __name__ == "__main__":
    sys.exit(main())
