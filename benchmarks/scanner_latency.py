"""Scanner latency: bar close → bus write done, against the simulator at high speed, float64 and arb512.

Run from the project root:

    /work/venv/bin/python -m benchmarks.scanner_latency [--scans 1000] [--speed 100] [--arb-scans 40]

The simulator (``python -m dolphin.market.sim``, 50 symbols, 20 ms emission tick) and
the bus member (``python -m dolphin.bus.member``) run as their own processes, as under
supervisord; the scanner runs in this process (`run_scanner`, the service body) so its
counters can be read. Latency = from the moment the bar's last final kline
(``"x": true``) was received by the scanner to the completion of its bus write
(``DOLPHIN_FEATURES["latest_eigen_scan"]``), which includes the scan and the put (the
Arrow file — atomic write with fsync of file and directory — follows the put). Bars
drained from the start-up buffer are not counted.

Baselines side by side: the scan computation alone, the Arrow write alone and the bus
put alone (as measured inside the same run), plus `ScanUpdater.update` per bar for 50
and 540 assets on the synthetic 3-factor market of benchmarks/scan_throughput.py.

arb512: the same scanner restarted with ``--precision arb512`` on the float64 run's
archive against a slower simulator (``--arb-speed``, default 10: a bar every 0.5 s of
wall time) — a first start at 512 bits would spend ~2 minutes archiving 899 backfill
scans, a restart only re-warms the windows. Not a test: it prints figures and goals.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.machine import cpu_model  # noqa: E402
from benchmarks.scan_throughput import synthetic_market  # noqa: E402
from dolphin.scan.updater import ScanUpdater  # noqa: E402
from dolphin.services.runtime import ServiceContext  # noqa: E402
from dolphin.services.scanner import ScannerOptions, ScannerStats, run_scanner  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def start(args: list[str], what: str) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    ready = Path(tempfile.mkdtemp()) / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", *args, "--ready-file", str(ready), "--log-level", "WARNING"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    shutil.rmtree(ready.parent, ignore_errors=True)
    return proc, info


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


def start_sim(speed: float) -> tuple[subprocess.Popen[bytes], str, str]:
    proc, info = start(["dolphin.market.sim", "--port", "0", "--symbols", "50", "--speed", str(speed),
                        "--tick-ms", "20"], "simulator")
    return proc, str(info["rest_url"]), str(info["ws_url"])


def options(rest_url: str, ws_url: str, precision: str) -> ScannerOptions:
    """Everything explicit: the run does not depend on configs/services.yml."""
    return ScannerOptions(source="sim", symbols=50, bar_seconds=5, precision=precision, rest_url=rest_url,
                          ws_url=ws_url)


def run_scanner_until(home: Path, options: ScannerOptions, scans: int, timeout_s: float) -> ScannerStats:
    """The scanner service body until ``scans`` live latencies were measured (or the timeout)."""
    stats = ScannerStats()

    async def main() -> None:
        ctx = ServiceContext(name="scanner", log=logging.getLogger("dolphin.scanner"), home=home)
        body = asyncio.create_task(run_scanner(ctx, options, stats=stats))
        deadline = time.monotonic() + timeout_s
        while len(stats.latencies) < scans and time.monotonic() < deadline and not body.done():
            await asyncio.sleep(0.2)
        ctx.stop.set()
        await body
        await ctx.close()

    asyncio.run(main())
    return stats


def ms(values: object, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) * 1e3


def line(label: str, values: object, goal: str = "") -> None:
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        print(f"{label:<44} (no samples)")
        return
    print(f"{label:<44} {ms(v, 50):9.3f} {ms(v, 99):9.3f} {v.max() * 1e3:9.3f} {v.size:7d}   {goal}")


def per_bar_update(n: int, warm: int = 800, bars: int = 300) -> float:
    P = synthetic_market(warm + bars, n, seed=20240406 + n)
    upd = ScanUpdater(n)
    upd.warm(P[:warm])
    upd.update(P[warm])
    t0 = time.perf_counter()
    for r in P[warm + 1:]:
        upd.update(r)
    return (time.perf_counter() - t0) / (bars - 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scans", type=int, default=1_000, help="live float64 scans to measure (default 1000)")
    p.add_argument("--speed", type=float, default=100.0, help="simulator speed for the float64 run (default 100)")
    p.add_argument("--arb-scans", type=int, default=40, help="live arb512 scans to measure (default 40)")
    p.add_argument("--arb-speed", type=float, default=10.0, help="simulator speed for the arb512 run (default 10)")
    p.add_argument("--home", type=Path, default=None,
                   help="runtime root for the float64 archive (default: a new temp dir; /dev/shm shows the cost "
                        "of the disk's fsyncs)")
    p.add_argument("--no-arb", action="store_true", help="skip the arb512 run")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(f"machine: {cpu_model()}; nproc {os.cpu_count()}; Python {platform.python_version()}; "
          f"{platform.system()} {platform.release()}; load avg {load:.2f} (shared)")
    print(f"simulator: 50 symbols, kline_5s, --speed {args.speed:g} (a bar every {5 / args.speed * 1e3:.0f} ms wall), "
          "20 ms tick; member and simulator in their own processes")
    print()

    member, info = start(["dolphin.bus.member", "--port", "0"], "bus member")
    os.environ["DOLPHIN_HZ_PORT"] = str(info["port"])
    os.environ.pop("DOLPHIN_HZ_MEMBERS", None)
    home = Path(tempfile.mkdtemp(prefix="scanner-bench-", dir=args.home))
    homes = [home]
    print(f"archive: {home}")
    try:
        sim, rest_url, ws_url = start_sim(args.speed)
        try:
            t0 = time.perf_counter()
            f64 = run_scanner_until(home, options(rest_url, ws_url, "float64"),
                                    args.scans, timeout_s=120 + args.scans * 5 / args.speed * 3)
            wall = time.perf_counter() - t0
        finally:
            stop(sim)
        print(f"float64: first start backfill {f64.backfill_s:.1f} s ({f64.backfilled} scans archived), "
              f"{f64.live} live scans in {wall:.0f} s; forced {f64.forced}, late {f64.late}, "
              f"missing closes {f64.missing_closes}, bus failures {f64.bus_failures}")
        print()
        print(f"{'measurement (ms)':<44} {'p50':>9} {'p99':>9} {'max':>9} {'n':>7}")
        line("float64: bar close → bus write done", f64.latencies, "goal p99 ≤ 5 ms")
        line("  part: bar complete → scan loop picks it up", f64.wait_times)
        line("  baseline: scan (ScanEngine.update)", f64.compute_times)
        line("  baseline: Arrow file (write + fsync)", f64.write_times)
        line("  baseline: bus put (asyncio client)", f64.put_times)

        if not args.no_arb:
            sim, rest_url, ws_url = start_sim(args.arb_speed)
            try:
                # a float64 first start on this slower market, then the arb512 restart on its archive
                arb_home = Path(tempfile.mkdtemp(prefix="scanner-bench-arb-"))
                homes.append(arb_home)
                run_scanner_until(arb_home, options(rest_url, ws_url, "float64"), 1, timeout_s=120)
                arb = run_scanner_until(arb_home, options(rest_url, ws_url, "arb512"),
                                        args.arb_scans, timeout_s=120 + args.arb_scans * 5 / args.arb_speed * 3)
            finally:
                stop(sim)
            line(f"arb512: bar close → bus write done (speed {args.arb_speed:g})", arb.latencies, "goal < 5,000 ms")
            line("  baseline: scan, 512-bit", arb.compute_times)
            line("  baseline: bus put", arb.put_times)
            print(f"arb512 restart: re-warm + {arb.backfilled} missing scan(s) in {arb.backfill_s:.1f} s; "
                  f"{arb.live} live scans; bars whose eligible counts differ from float64's: "
                  f"{arb.eligibility_mismatches}")
        print()
        for n in (50, 540):
            print(f"ScanUpdater.update, {n} assets × 4 windows: {per_bar_update(n) * 1e6:,.1f} µs/bar")
    finally:
        stop(member)
        for path in homes:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
