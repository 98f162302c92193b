"""Eigen-scan speed: fast kernels vs the strongest plain-numpy baseline, side by side, plus the 512-bit path.

Run from the project root:

    /work/venv/bin/python -m benchmarks.scan_throughput [--quick]

Prints the machine, then for a synthetic correlated market (3-factor model, fixed seed):
batch builder throughput (bars/s, 50 and 540 assets × 4 windows, with its CPU time per bar
and Lanczos steps per bar) against the baseline, on one thread and on two threads on both
sides; per-bar live update cost for 50 and 540 assets
against the baseline's per-bar cost (one thread each: a live bar is one call); the 512-bit
path's seconds per bar for 50 assets; and the volatility gate per bar. Numba compile
time is excluded (every kernel runs once before it is timed); every figure is the median
of its repeats. Every row ends with the 1-minute load average (the machine is shared). Not a test: it
prints ratios and goals, nothing fails.

The baseline is the cheapest plain-numpy way to get the same λ_max per bar and window:
``np.linalg.eigvalsh(np.corrcoef(window))[-1]`` — no eligibility or variance checks and
no eigenvectors (the fast path also checks eligibility and yields the top vector, so the
ratio understates its lead a little). Its two-thread figure runs half of the bars on
each of two Python threads (LAPACK and the ufuncs release the GIL), OpenBLAS at one
thread per call as for one thread.
"""

from __future__ import annotations

import os

# The numpy baseline is small BLAS/LAPACK calls (50×50 eigh). Multi-threaded OpenBLAS on a
# busy 2-core box spins on the other core and runs them 30–80× slower, which would flatter
# the fast path; one BLAS thread is the fair (and fastest) setting for matrices this size.
# Must be set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.machine import cpu_model
from dolphin.scan.arb512 import ArbScanner, ArbVolGate  # noqa: E402
from dolphin.scan.batch import build_scan_features  # noqa: E402
from dolphin.scan.definitions import DEFAULT_WINDOWS  # noqa: E402
from dolphin.scan.naive import log_returns  # noqa: E402
from dolphin.scan.state import ScanState  # noqa: E402
from dolphin.scan.updater import ScanUpdater  # noqa: E402
from dolphin.scan.volatility import VolGate  # noqa: E402

SEED = 20240406
#: Bars fed before a batch run is timed: every window full (the steady state a long backtest is in).
WARM = DEFAULT_WINDOWS[-1] + 50


def synthetic_market(T: int, n: int, seed: int = SEED) -> np.ndarray:
    """Prices of a 3-factor market: returns = 1e-3·(F·L + 0.8·ε), 5-second-bar scale."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((T, 3))
    load = rng.uniform(0.1, 0.9, (3, n)) * np.array([[1.0], [0.5], [0.3]])
    r = 1e-3 * (f @ load + 0.8 * rng.standard_normal((T, n)))
    return 100.0 * np.exp(np.cumsum(r, axis=0))


def median_of(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` runs (not the best: the machine is shared, and a best-of flatters)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def baseline_bars(R: np.ndarray, bars: Sequence[int]) -> list[float]:
    """λ_max of every window at each bar: np.corrcoef + np.linalg.eigvalsh, nothing else."""
    out = []
    for t in bars:
        for w in DEFAULT_WINDOWS:
            out.append(float(np.linalg.eigvalsh(np.corrcoef(R[t - w + 1:t + 1], rowvar=False))[-1]))
    return out


def baseline_bars_threads(R: np.ndarray, bars: Sequence[int], pool: ThreadPoolExecutor) -> None:
    """The same work split into two halves run on two threads."""
    half = len(bars) // 2
    list(pool.map(lambda part: baseline_bars(R, part), (bars[:half], bars[half:])))


def load_avg() -> str:
    """The 1-minute load average, printed beside every figure (the machine is shared)."""
    return f"load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "load n/a"


def row(label: str, fast: str, naive: str, ratio: str, goal: str) -> None:
    print(f"{label:<34} {fast:>16} {naive:>16} {ratio:>9}   {goal}")


def bench_batch(n: int, T: int, repeats: int, naive_bars: int, goal_bps: float) -> None:
    """Batch builder on T bars of n assets: wall bars/s (median) on 1 and 2 threads, CPU µs per bar
    (process time, all threads), Lanczos steps per bar, beside the baseline on the same threads."""
    P = synthetic_market(T, n)
    build_scan_features(P[:200], parallel=False)        # compile / load the cached kernels
    build_scan_features(P[:200], parallel=True)
    R = log_returns(P)
    sample = list(range(T - naive_bars, T))             # full windows: the baseline's cost per bar is flat
    with ThreadPoolExecutor(2) as pool:
        for threads in (1, 2):
            if threads > numba.get_num_threads():
                row(f"batch, {n} assets, {threads} threads", "n/a (numba threads)", "", "", "")
                continue
            walls, cpus, steps = [], [], 0.0
            for _ in range(repeats):
                state = ScanState.new(n)
                build_scan_features(P[:WARM], parallel=threads > 1, state=state)   # windows full: steady state
                before = state.solver_stats()["lanczos_steps"]
                t0, c0 = time.perf_counter(), time.process_time()
                build_scan_features(P[WARM:], parallel=threads > 1, state=state)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                steps = (state.solver_stats()["lanczos_steps"] - before) / (T - WARM)
            fast_s, cpu_s = statistics.median(walls), statistics.median(cpus)
            if threads == 1:
                base_s = median_of(lambda: baseline_bars(R, sample), repeats)
            else:
                base_s = median_of(lambda: baseline_bars_threads(R, sample, pool), repeats)
            fast_bps, base_bps = (T - WARM) / fast_s, len(sample) / base_s
            goal = f"goal ≥ {goal_bps / 1e3:,.0f}k bars/s (2 threads)" if threads == 2 else ""
            row(f"batch, {n} assets × 4 w, {threads} thread{'s' if threads > 1 else ''}",
                f"{fast_bps:,.0f} bars/s", f"{base_bps:,.0f} bars/s", f"{fast_bps / base_bps:.0f}×",
                f"{goal}{'; ' if goal else ''}{cpu_s / (T - WARM) * 1e6:,.1f} µs CPU/bar, "
                f"{steps:.1f} Lanczos steps/bar; {load_avg()}")


def bench_update(n: int, warm: int, bars: int, naive_bars: int, repeats: int) -> None:
    P = synthetic_market(warm + bars, n, seed=SEED + n)
    upd = ScanUpdater(n)
    upd.warm(P[:warm])
    upd.update(P[warm])                                # compile / load scan_one
    rows = P[warm + 1:warm + bars]
    per_bar = []
    for r in rows:
        t0 = time.perf_counter()
        upd.update(r)
        per_bar.append(time.perf_counter() - t0)
    fast_us = statistics.median(per_bar) * 1e6
    R = log_returns(P)
    sample = list(range(warm + 1, warm + 1 + naive_bars))
    naive_us = median_of(lambda: baseline_bars(R, sample), repeats) / naive_bars * 1e6
    goal = "goal ≤ 100 µs" if n <= 50 else "goal ≤ 10 ms"
    row(f"live update, {n} assets × 4 windows", f"{fast_us:,.1f} µs/bar", f"{naive_us:,.1f} µs/bar",
        f"{naive_us / fast_us:.0f}×", f"{goal}; {load_avg()}")


def bench_arb(n: int, bars: int) -> None:
    P = synthetic_market(DEFAULT_WINDOWS[-1] + 2 + bars, n, seed=SEED + 1)
    sc = ArbScanner(n)
    t0 = time.perf_counter()
    sc.warm(P[:DEFAULT_WINDOWS[-1] + 2])
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in P[DEFAULT_WINDOWS[-1] + 2:]:
        sc.update(r)
    per_bar = (time.perf_counter() - t0) / bars
    verdict = "ok" if per_bar < 5 else "TOO SLOW"
    row(f"arb512 scan, {n} assets × 4 windows", f"{per_bar:.3f} s/bar", "", "",
        f"5-s cadence: {verdict} (backfill of {DEFAULT_WINDOWS[-1] + 2} bars: {warm_s:.1f} s)")


def bench_vol(bars: int) -> None:
    p = synthetic_market(bars, 1, seed=SEED + 2)[:, 0] * 600
    gate, agate = VolGate(), ArbVolGate()
    gate.update(float(p[0]))
    t0 = time.perf_counter()
    for x in p[1:]:
        gate.update(float(x))
    f_us = (time.perf_counter() - t0) / (bars - 1) * 1e6
    t0 = time.perf_counter()
    for x in p:
        agate.update(float(x))
    a_us = (time.perf_counter() - t0) / bars * 1e6
    row("vol gate (float64 | arb512)", f"{f_us:,.1f} µs/bar", f"{a_us:,.1f} µs/bar", "", "arb512 in the naive column")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run, not for the README)")
    args = ap.parse_args()
    q = args.quick
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {cpu_model()}; nproc {affinity}; numba threads {numba.get_num_threads()}; "
          f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    print("market: synthetic 3-factor random walk, seed", SEED, "; windows", DEFAULT_WINDOWS,
          "; baseline: np.corrcoef + np.linalg.eigvalsh per window; medians")
    print()
    row("", "fast", "numpy baseline", "ratio", "")
    reps = 1 if q else 3
    bench_batch(50, T=5_000 if q else 20_000, repeats=reps, naive_bars=100 if q else 400, goal_bps=150e3)
    bench_batch(540, T=1_300 if q else 3_000, repeats=1 if q else 2, naive_bars=3 if q else 10, goal_bps=3e3)
    bench_update(50, warm=1_000, bars=500 if q else 3_000, naive_bars=50 if q else 200, repeats=reps)
    bench_update(540, warm=800, bars=20 if q else 100, naive_bars=3 if q else 10, repeats=reps)
    bench_arb(50, bars=1 if q else 5)
    bench_vol(bars=2_000 if q else 10_000)


if __name__ == "__main__":
    main()
