"""Scan-to-fill latency: from the scan's bus write to the step recorded in the trader's journal.

    python -m benchmarks.trader_latency [--scans 1500] [--home /dev/shm]

The bus member runs as its own process (`python -m dolphin.bus.member`), as under
supervisord. The trader (`TraderService`, paper venue, a real fsynced journal on disk)
runs in this process; a feeder thread publishes scans in lockstep (the next one once the
previous was journaled), so each figure is pure latency, not queueing. The time is taken
when the journal write of the step has returned (fsync done): for a scan that trades,
that is the paper fill recorded. The scans come from a noisy market whose vel_div
crosses the gate often, so hundreds of them trade.

Baselines in the same run: the engine step alone, and the bus put → listener latency
(what any consumer pays before its own work).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import machine
from dolphin.bus import Bus, EigenScan, schema
from dolphin.bus.client import connect


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def start_member(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    ready = tmp / "member.json"
    proc = subprocess.Popen([sys.executable, "-m", "dolphin.bus.member", "--port", "0", "--ready-file", str(ready)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the member did not start")
        time.sleep(0.05)
    import json

    return proc, int(json.loads(ready.read_text())["port"])


def scans(n: int, seed: int = 3) -> list[EigenScan]:
    """A noisy 50-asset market with frequent signals (the engine tests' random market)."""
    from dolphin.market.symbols import universe

    rng = np.random.default_rng(seed)
    assets = universe(50)
    factor = rng.normal(0, 0.002, (n, 1))
    prices = 100.0 * np.exp(np.cumsum(factor + rng.normal(0, 0.002, (n, len(assets))), axis=0))
    vel_div = rng.normal(-0.005, 0.02, n)
    t0 = 1_767_600_000_000
    return [EigenScan(scan_number=i + 1, timestamp_ns=(t0 + i * 5000) * 1_000_000, vel_div=float(vel_div[i]),
                      w50_velocity=0.0, w750_velocity=0.0,
                      asset_prices={a: float(p) for a, p in zip(assets, prices[i])}) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=1500)
    ap.add_argument("--home", default=None, help="where the journal lives (e.g. /dev/shm: fsync-free)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="trader-bench-", dir=args.home))
    member, port = start_member(tmp)
    os.environ.update({"DOLPHIN_HOME": str(tmp / "home"), "DOLPHIN_HZ_PORT": str(port), "DOLPHIN_HZ_MEMBERS": "",
                       "DOLPHIN_TRADER_VENUE": "paper", "DOLPHIN_SIM_SPEED": "1",
                       "DOLPHIN_CONFIG_DIR": str(Path(__file__).resolve().parent.parent / "configs")})
    # the vol gate needs ~770 bars before anything can trade: warm first, measure after
    feed = scans(args.scans + 900)
    latencies: list[float] = []
    fill_latencies: list[float] = []
    committed = threading.Event()
    published_at: dict[int, float] = {}

    from dolphin.services.runtime import ServiceContext, configure_logging
    from dolphin.services.trader.service import run

    def on_step(core, result) -> None:
        done = time.time()
        t = published_at.get(result.scan_number)
        if t is not None and result.scan_number > 900:
            latencies.append((done - t) * 1000)
            if result.orders:
                fill_latencies.append((done - t) * 1000)
        committed.set()

    put_listener: list[float] = []

    def feeder(ctx: ServiceContext, loop: asyncio.AbstractEventLoop) -> None:
        client = connect(cluster_connect_timeout=10.0)
        bus = Bus(client)
        while bus.get(schema.STATE_BLUE, schema.LATEST) is None:   # the trader is listening
            time.sleep(0.05)
        for scan in feed:
            committed.clear()
            now = time.time()
            published_at[scan.scan_number] = now
            bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN,
                    EigenScan(**{**{f: getattr(scan, f) for f in scan.__struct_fields__}, "bridge_ts": now}))
            committed.wait(30)
        client.shutdown()
        loop.call_soon_threadsafe(ctx.stop.set)

    configure_logging("trader", log_file=tmp / "trader.log")

    async def go() -> None:
        ctx = ServiceContext(name="trader", log=configure_logging("trader", log_file=tmp / "trader.log"))
        threading.Thread(target=feeder, args=(ctx, asyncio.get_running_loop()), daemon=True).start()
        try:
            await run(ctx, on_step=on_step)
        finally:
            await ctx.close()

    try:
        asyncio.run(go())
        put_listener = listener_baseline(port, 1000)
    finally:
        member.terminate()
        member.wait(10)
    engine_us = engine_step_baseline()
    print(f"machine: {machine()}; journal on {tmp} (fsync per step)")
    print(f"{'measurement (ms)':52s} {'p50':>8s} {'p99':>8s} {'max':>8s} {'n':>6s}")
    for name, values in (("scan bus write → step journaled (every scan)", latencies),
                         ("scan bus write → paper fill journaled", fill_latencies),
                         ("baseline: bus put → listener callback", put_listener)):
        print(f"{name:52s} {percentile(values, 50):8.3f} {percentile(values, 99):8.3f} "
              f"{max(values) if values else float('nan'):8.3f} {len(values):6d}")
    print(f"{'baseline: engine step_bar alone (µs)':52s} {engine_us:8.1f}")
    print("goal: p99 ≤ 5 ms (bible target < 10 ms)")


def listener_baseline(port: int, n: int) -> list[float]:
    from dolphin.bus import LatestState, subscribe

    writer = connect(cluster_connect_timeout=10.0)
    reader = connect(cluster_connect_timeout=10.0)
    sink = LatestState()
    sub = subscribe(reader, schema.HEARTBEAT, sink, key="bench_heartbeat")
    out = []
    from dolphin.bus import Heartbeat

    bus = Bus(writer)
    for _ in range(n):
        sink.take_all()
        t0 = time.time()
        bus.put(schema.HEARTBEAT, "bench_heartbeat", Heartbeat(ts=t0))
        sink.wait(5)
        ev = sink.take(schema.HEARTBEAT, "bench_heartbeat")
        if ev is not None:
            out.append((ev.received_at - t0) * 1000)
    sub.close()
    writer.shutdown()
    reader.shutdown()
    return out


def engine_step_baseline() -> float:
    from dolphin.config import load_config
    from dolphin.engine.engine import NDAlphaEngine, compile_kernel
    from dolphin.market.symbols import universe

    compile_kernel()
    feed = scans(3000)
    eng = NDAlphaEngine(load_config("blue"), universe(50))
    eng.begin_day("2026-01-05")
    t0 = time.perf_counter()
    for s in feed:
        eng.step_bar(s.scan_number, s.vel_div, s.asset_prices, 0.0, 0.0, True, s.timestamp_ns // 1_000_000)
    return (time.perf_counter() - t0) / len(feed) * 1e6


if __name__ == "__main__":
    main()
