"""Bus speed: put → listener-callback latency and sync put/get throughput on the embedded member.

The member runs as its own process (`python -m dolphin.bus.member`, as under
supervisord); the writer and the listener are two separate clients in this process,
so both timestamps come from one clock. Each event is one ping-pong: put, wait for the
listener callback, repeat — pure latency, no queueing.

Baselines printed side by side, measured in the same run:
* a plain round-trip `get` on the same client (the floor any listener could reach);
* the threaded client against the asyncio client.

    /work/venv/bin/python benchmarks/bus_latency.py [--events 10000] [--ops 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import hazelcast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine
from dolphin.bus import EigenScan, default_codec, schema  # noqa: E402

WARMUP = 500


def scan_payload() -> str:
    """A realistic value: an NG8 scan with 50 asset prices (the trader's hot key)."""
    prices = {f"A{i:02d}USDT": 100.0 + i for i in range(50)}
    scan = EigenScan(scan_number=1, timestamp_ns=time.time_ns(), vel_div=-0.0312, w50_velocity=-0.011,
                     w150_velocity=0.002, w300_velocity=0.004, w750_velocity=0.0202, instability_50=0.31,
                     asset_prices=prices, timestamp="2026-01-01T00:00:00+00:00", bridge_ts=time.time())
    return default_codec.encode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, scan)


def pct(samples_ns: list[int], q: float) -> float:
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e3  # µs


def start_member() -> tuple[subprocess.Popen[bytes], str]:
    ready = Path(tempfile.mkdtemp()) / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "dolphin.bus.member", "--port", "0", "--ready-file", str(ready),
                             "--log-level", "WARNING"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("member did not start")
        time.sleep(0.02)
    info = json.loads(ready.read_text())
    return proc, f"{info['host']}:{info['port']}"


def options(address: str) -> dict[str, object]:
    return {"cluster_members": [address], "cluster_name": "dolphin", "cluster_connect_timeout": 10}


# ---------------------------------------------------------------- threaded client
def bench_threaded(address: str, events: int, ops: int, value: str) -> dict[str, float]:
    writer = hazelcast.HazelcastClient(**options(address))
    listener = hazelcast.HazelcastClient(**options(address))
    try:
        wmap = writer.get_map("bench").blocking()
        arrived = threading.Event()
        stamp = [0]

        def on_event(_event: object) -> None:
            stamp[0] = time.perf_counter_ns()
            arrived.set()

        listener.get_map("bench").blocking().add_entry_listener(include_value=True, key="k", added_func=on_event,
                                                                updated_func=on_event)
        samples = []
        for i in range(WARMUP + events):
            arrived.clear()
            t0 = time.perf_counter_ns()
            wmap.set("k", value)
            if not arrived.wait(10):
                raise SystemExit("event lost")
            if i >= WARMUP:
                samples.append(stamp[0] - t0)
        gets = []
        for i in range(WARMUP + events):
            t0 = time.perf_counter_ns()
            wmap.get("k")
            if i >= WARMUP:
                gets.append(time.perf_counter_ns() - t0)
        plain = writer.get_map("plain").blocking()  # no listener: pure request/response throughput
        t0 = time.perf_counter()
        for i in range(ops):
            plain.set(f"k{i % 100}", value)
        put_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(ops):
            plain.get(f"k{i % 100}")
        get_s = time.perf_counter() - t0
    finally:
        writer.shutdown()
        listener.shutdown()
    return summarise(samples, gets, ops / put_s, ops / get_s)


# ---------------------------------------------------------------- asyncio client
async def _bench_asyncio(address: str, events: int, ops: int, value: str) -> dict[str, float]:
    from hazelcast.asyncio import HazelcastClient as AsyncClient

    writer = await AsyncClient.create_and_start(**options(address))
    listener = await AsyncClient.create_and_start(**options(address))
    try:
        wmap = await writer.get_map("bench")
        loop = asyncio.get_running_loop()
        waiter: list[asyncio.Future[int]] = [loop.create_future()]

        def on_event(_event: object) -> None:
            if not waiter[0].done():
                waiter[0].set_result(time.perf_counter_ns())

        lmap = await listener.get_map("bench")
        await lmap.add_entry_listener(include_value=True, key="k", added_func=on_event, updated_func=on_event)
        samples = []
        for i in range(WARMUP + events):
            waiter[0] = loop.create_future()
            t0 = time.perf_counter_ns()
            await wmap.set("k", value)
            arrived = await asyncio.wait_for(waiter[0], 10)
            if i >= WARMUP:
                samples.append(arrived - t0)
        gets = []
        for i in range(WARMUP + events):
            t0 = time.perf_counter_ns()
            await wmap.get("k")
            if i >= WARMUP:
                gets.append(time.perf_counter_ns() - t0)
        plain = await writer.get_map("plain")
        t0 = time.perf_counter()
        for i in range(ops):
            await plain.set(f"k{i % 100}", value)
        put_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(ops):
            await plain.get(f"k{i % 100}")
        get_s = time.perf_counter() - t0
    finally:
        await writer.shutdown()
        await listener.shutdown()
    return summarise(samples, gets, ops / put_s, ops / get_s)


def summarise(samples: list[int], gets: list[int], put_ops: float, get_ops: float) -> dict[str, float]:
    return {
        "n": len(samples),
        "event_p50": pct(samples, 0.50), "event_p99": pct(samples, 0.99), "event_mean": statistics.fmean(samples) / 1e3,
        "get_p50": pct(gets, 0.50), "get_p99": pct(gets, 0.99),
        "put_ops": put_ops, "get_ops": get_ops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="measured events per client (default 10000)")
    parser.add_argument("--ops", type=int, default=5_000, help="sync puts and gets per client (default 5000)")
    args = parser.parse_args()
    value = scan_payload()
    proc, address = start_member()
    try:
        threaded = bench_threaded(address, args.events, args.ops, value)
        aio = asyncio.run(_bench_asyncio(address, args.events, args.ops, value))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    print(f"machine : {machine('hazelcast-python-client')}")
    print(f"member  : embedded, separate process, loopback {address}; value = NG8 scan JSON, {len(value)} bytes")
    print(f"events  : {threaded['n']} per client after {WARMUP} warm-up, one in flight (ping-pong)")
    print()
    header = f"{'':34}{'threaded':>12}{'asyncio':>12}{'async/thr':>11}"
    print(header)
    print("-" * len(header))
    rows = [
        ("put → listener callback p50 (µs)", "event_p50"),
        ("put → listener callback p99 (µs)", "event_p99"),
        ("round-trip get p50 (µs)  [floor]", "get_p50"),
        ("round-trip get p99 (µs)  [floor]", "get_p99"),
        ("sync put ops/s", "put_ops"),
        ("sync get ops/s", "get_ops"),
    ]
    for label, key in rows:
        t, a = threaded[key], aio[key]
        print(f"{label:34}{t:12.0f}{a:12.0f}{a / t:11.2f}")
    print()
    for name, r in (("threaded", threaded), ("asyncio", aio)):
        print(f"{name:8}: listener p50 = {r['event_p50'] / r['get_p50']:.2f}× a plain get p50; "
              f"p99 {r['event_p99'] / 1000:.2f} ms (goal ≤ 2 ms: {'met' if r['event_p99'] <= 2000 else 'NOT met'})")


if __name__ == "__main__":
    main()
