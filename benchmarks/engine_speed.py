"""Engine bars/s: the numba NDAlphaEngine against the plain-Python reference, same data, same run.

    python -m benchmarks.engine_speed [--days 56] [--ref-days 2] [--seed 7]

Builds ``--days`` of the seeded synthetic market (50 assets, 5 s bars) and its scans,
times the numba engine over all of it (engine time only: `process_day` calls), then
times both engines over the first ``--ref-days`` days, checks they made the same trades,
and prints bars/s and the ratio. Goal: 56 days (~968k bars) in ≤ 10 s; ≥ 50× the reference.
Beside the engine time it prints the end-to-end wall of the same work in this process
(generation, scan build, volatility gate, numba compile/load, engine) and its split: the
engine is a small part of what a user waits for (``benchmarks.backtest_e2e`` measures the
`dolphin backtest` path itself, with peak memory).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.machine import machine
from dolphin.backtest.synthetic import SyntheticFactors, SyntheticSource
from dolphin.config import load_config
from dolphin.engine.acb import AdaptiveCircuitBreaker
from dolphin.engine.engine import NDAlphaEngine
from dolphin.scan.table import ScanTable
from dolphin.scan.volatility import vol_regime_ok
from tests.reference.engine_ref import ReferenceEngine


def run(engine, table, market, vol_ok, days: int) -> float:
    per_day = market.bars_per_day
    elapsed = 0.0
    for d in range(days):
        s, e = d * per_day, (d + 1) * per_day
        date = time.strftime("%Y-%m-%d", time.gmtime(table.ts[s] / 1000))
        args = (np.arange(s, e), table.ts[s:e], table.vel_div[s:e], table.v750_lambda_max_velocity[s:e], vol_ok[s:e],
                table.prices[s:e])
        t0 = time.perf_counter()
        engine.process_day(date, *args)
        elapsed += time.perf_counter() - t0
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=56)
    ap.add_argument("--ref-days", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    cfg = load_config("blue")
    print(f"machine: {machine('numba', 'numpy')}")
    t_start = time.perf_counter()
    src = SyntheticSource(args.days, args.seed)       # the same rows as synthetic_scan_table, day by day
    table, market = ScanTable.concat(list(src.pieces())), src.market
    gen_s, scan_s = src.stages["generate"], src.stages["scan"]
    print(f"data: {args.days} days x {len(table.assets)} assets = {table.rows:,} bars "
          f"(generate {gen_s:.1f} s + scan build {scan_s:.1f} s)")
    t0 = time.perf_counter()
    _, vol_ok = vol_regime_ok(table.price("BTCUSDT"), cfg.extras.vol_window, cfg.extras.vol_percentile,
                              cfg.extras.vol_calib_bars)
    vol_s = time.perf_counter() - t0
    assets = list(table.assets)

    def fresh(cls):
        return cls(cfg, assets, acb=AdaptiveCircuitBreaker(cfg.acb, SyntheticFactors(market)))

    t0 = time.perf_counter()
    warm = fresh(NDAlphaEngine)                       # compile (or load the numba cache) outside the timing
    run(warm, table, market, vol_ok, 1)
    warm_s = time.perf_counter() - t0

    fast = fresh(NDAlphaEngine)
    full = run(fast, table, market, vol_ok, args.days)
    print(f"numba engine, {args.days} days: {full:.2f} s engine time, {table.rows / full:,.0f} bars/s, "
          f"{len(fast.trades)} trades (goal <= 10 s for 56 days)")
    total = gen_s + scan_s + vol_s + warm_s + full
    other = time.perf_counter() - t_start - total
    print(f"end to end, same work in this process: {total:.1f} s = generate {gen_s:.1f} ({gen_s / total:.0%}) "
          f"+ scan {scan_s:.1f} ({scan_s / total:.0%}) + vol gate {vol_s:.2f} + engine compile/load and "
          f"one warm-up day {warm_s:.2f} + engine {full:.2f} ({full / total:.1%}); "
          f"{table.rows / total:,.0f} bars/s end to end vs {table.rows / full:,.0f} engine only "
          f"(plus {other:.1f} s of table joins and bookkeeping)")

    ref_bars = args.ref_days * market.bars_per_day
    fast_k = fresh(NDAlphaEngine)
    t_fast = run(fast_k, table, market, vol_ok, args.ref_days)
    ref = fresh(ReferenceEngine)
    t_ref = run(ref, table, market, vol_ok, args.ref_days)
    same = [(t.asset, t.entry_bar, t.exit_bar, t.pnl) for t in fast_k.trades] == \
           [(t.asset, t.entry_bar, t.exit_bar, t.pnl) for t in ref.trades]
    print(f"same {args.ref_days} days ({ref_bars:,} bars): numba {ref_bars / t_fast:,.0f} bars/s, "
          f"reference {ref_bars / t_ref:,.0f} bars/s, ratio {t_ref / t_fast:,.0f}x (goal >= 50x); "
          f"identical trades: {same} ({len(ref.trades)})")


if __name__ == "__main__":
    main()
