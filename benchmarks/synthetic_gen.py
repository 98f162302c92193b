"""Synthetic market generation throughput.

Run from the project root: ``python -m benchmarks.synthetic_gen [--days 56] [--wide-days 1]``.

Prints bars × symbols per second for the backtester's shape (50 symbols, many days,
generated a day at a time, and closes only as ``dolphin backtest --synthetic`` draws them, side
by side), the simulator's
widest shape (540 symbols), a cold random-access seek (a late hour from a fresh market:
the price levels of all earlier hours must be carried), the klines table, the 1 s paths,
and the calibration vel_div — each with its ratio to the target it has to beat.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

from dolphin.market.synthetic import SyntheticConfig, SyntheticMarket
from dolphin.market.synthetic import calibration as cal

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """``fn()`` and its wall time in seconds."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def report(label: str, seconds: float, cells: int, target_s: float) -> None:
    """One line: time, throughput and headroom against ``target_s``."""
    print(f"{label:<44} {seconds:8.2f} s  {cells / seconds / 1e6:7.2f} M bar·sym/s  "
          f"target < {target_s:g} s  ({target_s / seconds:5.1f}× headroom)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=56, help="days of the 50-symbol run")
    parser.add_argument("--wide-days", type=int, default=1, help="days of the 540-symbol run")
    args = parser.parse_args(argv)
    if args.days < 1 or args.wide_days < 1:
        parser.error("--days and --wide-days must be at least 1")

    narrow = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=50))
    per_day = narrow.bars_per_day

    def backtest_days() -> None:
        for day in range(args.days):
            narrow.day(day)

    _, seconds = timed(backtest_days)
    report(f"50 symbols × {args.days} d, day by day", seconds, args.days * per_day * 50,
           60.0 * args.days / 56)

    # The backtester's path: closes only (no 1 s sub-paths, volumes or OHLC), on a fresh
    # market so no chunk is cached; issue 19's goal is ≤ 1 s for 56 days.
    closes_only = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=50))
    closes_only.closes(0, 1)  # compile (or load) the numba kernels outside the timing

    def backtest_closes() -> None:
        for day in range(args.days):
            closes_only.closes(day * per_day, per_day)

    _, c_seconds = timed(backtest_closes)
    report(f"closes only, 50 symbols × {args.days} d", c_seconds, args.days * per_day * 50,
           1.0 * args.days / 56)
    print(f"{'':<44} closes only vs full bars, same days: {seconds / c_seconds:.1f}× faster")

    wide = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=540))
    _, seconds = timed(lambda: wide.generate(0, args.wide_days * per_day))
    report(f"540 symbols × {args.wide_days} d", seconds, args.wide_days * per_day * 540,
           5.0 * args.wide_days)

    fresh = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=50))
    seek_day = min(args.days, 30)
    _, seconds = timed(lambda: fresh.generate(seek_day * per_day, fresh.config.bars_per_chunk))
    report(f"cold seek: 1 h at day {seek_day} (carries {seek_day} d)", seconds,
           (seek_day * 24 + 1) * fresh.config.bars_per_chunk * 50, 30.0 * seek_day / 30)

    _, seconds = timed(lambda: narrow.klines_table(days=1))
    report("klines_table, 50 symbols × 1 d", seconds, per_day * 50, 2.0)

    _, seconds = timed(lambda: narrow.intrabar_paths(0, per_day))
    report("intrabar_paths, 50 symbols × 1 d", seconds, per_day * 50, 2.0)

    closes = narrow.day(0).close
    cal.vel_div(closes[:2_000])  # compile (or load) the numba kernel outside the timing
    _, seconds = timed(lambda: cal.vel_div(closes))
    report("calibration vel_div, 50 symbols × 1 d", seconds, per_day * 50, 5.0)


if __name__ == "__main__":
    main()
