"""End-to-end synthetic backtest: wall time, stage split and peak memory per span, streamed vs whole-span.

    python -m benchmarks.backtest_e2e [--spans 7 56 365] [--whole-max 56] [--seed 7]

For each span the replay of ``dolphin backtest --synthetic --days N`` (the streaming
`SyntheticSource`: generate → scan → engine a day at a time) runs in a fresh child
process, and for spans up to ``--whole-max`` days so does the baseline it replaced: the
whole market generated and scanned in memory first (`synthetic_scan_table` +
`TableSource`). Each run is its own process because peak RSS (``ru_maxrss``) is a
per-process figure; both are started by this harness one after the other, so they see
the same machine. Printed per run: wall seconds (imports included), the stage split
(generate, scan, engine, numba compile/load), peak RSS, and the ratios streamed /
whole-span; the two runs must give identical metrics (checked, printed). Goals (issue
19): peak RSS ≤ 500 MiB at every span; 56 days ≤ 8 s wall. Not a test: nothing fails.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from benchmarks.machine import machine

RSS_GOAL_MIB = 500.0
WALL_GOAL_56_S = 8.0


def child(mode: str, days: int, seed: int) -> None:
    """One replay in this process; prints one JSON line with its figures."""
    started = time.perf_counter()
    from dolphin.backtest.runner import TableSource, replay
    from dolphin.backtest.synthetic import SyntheticFactors, SyntheticSource, synthetic_scan_table
    from dolphin.config import load_config

    cfg = load_config("blue")
    stages: dict[str, float] = {}
    if mode == "stream":
        src = SyntheticSource(days, seed)
        result = replay(src, cfg, acb_source=SyntheticFactors(src.market))
    else:
        t0 = time.perf_counter()
        table, market = synthetic_scan_table(days, seed)
        stages["generate+scan"] = time.perf_counter() - t0
        result = replay(TableSource(table, stages=stages), cfg, acb_source=SyntheticFactors(market))
    wall = time.perf_counter() - started
    m = result.metrics
    print(json.dumps({
        "wall": wall, "stages": result.stages, "engine": result.engine_seconds,
        "compile": result.compile_seconds + result.compile_in_run_seconds, "bars": result.bars,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "fingerprint": [m.trades, m.final_capital, m.fees, m.max_drawdown],
    }))


def run_child(mode: str, days: int, seed: int) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.backtest_e2e", "--child", mode, "--spans", str(days),
                          "--seed", str(seed)], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def split(r: dict[str, object]) -> str:
    st = dict(r["stages"])  # type: ignore[call-overload]
    parts = [f"{k} {float(v):.2f}" for k, v in st.items() if k != "engine"]
    parts.append(f"engine {float(r['engine']):.2f}")  # type: ignore[arg-type]
    parts.append(f"compile/load {float(r['compile']):.2f}")  # type: ignore[arg-type]
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, nargs="+", default=[7, 56])
    ap.add_argument("--whole-max", type=int, default=56, help="largest span also run whole-span (baseline)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", choices=("stream", "whole"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.spans[0], args.seed)
        return
    print(f"machine: {machine('numba', 'numpy')}")
    print(f"synthetic seed {args.seed}, 50 assets, 5 s bars; seconds are wall, RSS is the child's peak\n")
    print(f"{'span':>5} {'run':<7} {'wall s':>8} {'bars/s':>10} {'peak RSS':>11}   stage split (s)")
    for days in args.spans:
        stream = run_child("stream", days, args.seed)
        rows = [("stream", stream)]
        whole = run_child("whole", days, args.seed) if days <= args.whole_max else None
        if whole is not None:
            rows.append(("whole", whole))
        for label, r in rows:
            wall, rss = float(r["wall"]), float(r["rss_mib"])  # type: ignore[arg-type]
            print(f"{days:>5} {label:<7} {wall:>8.2f} {int(r['bars']) / wall:>10,.0f} "  # type: ignore[call-overload]
                  f"{rss:>7.0f} MiB   {split(r)}")
        goals = f"RSS goal ≤ {RSS_GOAL_MIB:.0f} MiB: {'met' if float(stream['rss_mib']) <= RSS_GOAL_MIB else 'NOT met'}"  # type: ignore[arg-type]
        if days == 56:
            goals += f"; wall goal ≤ {WALL_GOAL_56_S:.0f} s: {'met' if float(stream['wall']) <= WALL_GOAL_56_S else 'NOT met'}"  # type: ignore[arg-type]
        if whole is not None:
            same = stream["fingerprint"] == whole["fingerprint"]
            print(f"      stream / whole: wall {float(stream['wall']) / float(whole['wall']):.2f}×, "  # type: ignore[arg-type]
                  f"peak RSS {float(stream['rss_mib']) / float(whole['rss_mib']):.2f}×; "  # type: ignore[arg-type]
                  f"identical metrics: {same}; {goals}")
        else:
            print(f"      (whole-span baseline skipped above --whole-max {args.whole_max}); {goals}")


if __name__ == "__main__":
    main()
