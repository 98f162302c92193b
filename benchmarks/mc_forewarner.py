"""MC-Forewarner speed: paths/s of the Monte-Carlo of the engine, on every core vs one, in the same run.

    python -m benchmarks.mc_forewarner [--paths 1000] [--days 7] [--history-days 2] [--baseline-paths 200]

Builds ``--history-days`` of the seeded synthetic market (50 assets, 5 s bars) and its
scans as the history, then times `run_forewarner` — the whole assessment the `mcfw`
daemon runs: history preparation, block plan, jitter, engine warm-up, and the paths
over the engine's numba kernel — for ``--paths`` paths of ``--days`` days on all numba
threads. Baselines in the same process: the first ``--baseline-paths`` of the same
paths on one thread (they must come out bit-equal: path i depends only on the seed),
and the engine alone (`NDAlphaEngine.run_block`) over the history, in bars/s.
Goal: 1,000 paths × 7 days × 50 assets in ≤ 60 s on 2 cores.

Wall time depends on what else runs on the machine: CPU seconds (all threads) are
printed beside it, with the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np

from benchmarks.machine import machine
from dolphin.backtest import montecarlo as mc
from dolphin.backtest.synthetic import synthetic_scan_table
from dolphin.config import load_config
from dolphin.engine.engine import NDAlphaEngine


def timed(fn):  # type: ignore[no-untyped-def]
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=1000)
    ap.add_argument("--days", type=float, default=7.0, help="horizon of each path")
    ap.add_argument("--history-days", type=int, default=2)
    ap.add_argument("--baseline-paths", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7, help="synthetic market seed")
    args = ap.parse_args()
    cfg = load_config("blue")
    print(f"machine: {machine('numba', 'numpy')}; load average {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    table, _ = synthetic_scan_table(args.history_days, args.seed)
    print(f"history: {args.history_days} days x {len(table.assets)} assets = {table.rows:,} bars "
          f"(generate + scan build {time.perf_counter() - t0:.1f} s)")
    settings = mc.McSettings(paths=args.paths, horizon_days=args.days, history_days=args.history_days,
                             min_history_hours=12.0)
    _, compile_s, _ = timed(lambda: mc.run_forewarner(table, cfg, replace(settings, paths=2, horizon_days=0.01)))
    print(f"kernel load/compile: {compile_s:.1f} s (numba cache)")

    threads = mc.set_threads(0)
    full, wall, cpu = timed(lambda: mc.run_forewarner(table, cfg, settings))
    assert full.outcomes is not None and full.horizon_bars is not None
    bars = args.paths * full.horizon_bars
    print(f"\nMC, {threads} threads: {args.paths:,} paths x {args.days:g} d x {full.assets} assets "
          f"({full.horizon_bars:,} bars/path, {bars / 1e6:.1f} M bars): wall {wall:.1f} s, cpu {cpu:.1f} s "
          f"-> {args.paths / wall:.1f} paths/s, {bars / wall / 1e6:.2f} M bars/s")
    print(f"  report: {full.status} catastrophic_prob {full.catastrophic_prob:.3f} envelope {full.envelope_score:.3f} "
          f"median dd {full.median_drawdown:.4f} mean trades/path {full.mean_trades:.1f}")

    k = min(args.baseline_paths, args.paths)
    mc.set_threads(1)
    one, wall1, cpu1 = timed(lambda: mc.run_forewarner(table, cfg, replace(settings, paths=k)))
    mc.set_threads(0)
    assert one.outcomes is not None
    same = all(np.array_equal(getattr(one.outcomes, f), getattr(full.outcomes, f)[:k])
               for f in ("max_drawdown", "final_return", "trades"))
    print(f"baseline, 1 thread: first {k} of the same paths: wall {wall1:.1f} s, cpu {cpu1:.1f} s "
          f"-> {k / wall1:.1f} paths/s; bit-equal to the {threads}-thread run: {same}")

    engine = NDAlphaEngine(cfg, list(table.assets))
    engine.begin_day("bench")
    from dolphin.scan.volatility import vol_regime_ok

    _, ok = vol_regime_ok(table.price("BTCUSDT"), cfg.extras.vol_window, cfg.extras.vol_percentile,
                          cfg.extras.vol_calib_bars)
    _, ewall, ecpu = timed(lambda: engine.run_block(np.arange(table.rows), table.ts, table.vel_div,
                                                    table.v750_lambda_max_velocity, ok, table.prices))
    print(f"baseline, the engine alone (run_block, 1 thread): {table.rows / ewall / 1e6:.2f} M bars/s wall, "
          f"{table.rows / ecpu / 1e6:.2f} M bars/s per cpu second")

    print(f"\nratios (wall): {threads} threads / 1 thread = {(args.paths / wall) / (k / wall1):.2f}x paths/s; "
          f"MC bars/s per thread / engine alone = {(bars / wall / threads) / (table.rows / ewall):.2f}")
    print(f"ratios (cpu):  MC bars per cpu second / engine alone = {(bars / cpu) / (table.rows / ecpu):.2f}; "
          f"cpu per path {cpu / args.paths * 1000:.1f} ms ({threads} threads), {cpu1 / k * 1000:.1f} ms (1 thread)")
    print(f"goal: {args.paths:,} x {args.days:g} d x {full.assets} assets <= 60 s wall: "
          f"{'met' if wall <= 60 else 'NOT met'} ({wall:.1f} s; load average now {os.getloadavg()[0]:.1f}); "
          f"on {threads} idle cores the cpu time ({cpu:.1f} s) spreads to ~{cpu / threads:.1f} s wall")


if __name__ == "__main__":
    main()
