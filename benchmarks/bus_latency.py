"""Bus speed on three buses in one run: the embedded member, a real 1-member and a real 3-member Hazelcast.

Measured against each bus, with the same clients and the same value:

* put → listener-callback latency (p50/p99), threaded and asyncio client: a writer and a
  separate listener client in this process (one clock); each event is a ping-pong (put,
  wait for the callback, repeat) — pure latency, no queueing;
* a plain round-trip `get` on the writer (the floor any listener could reach);
* sync put ops/s with one put in flight (one client), and aggregate puts/s from four
  asyncio clients with one put in flight each (four in flight).

The embedded member runs as its own process (`python -m dolphin.bus.member`, as under
supervisord); the real members are Hazelcast 5.7.0 JVMs on loopback started by
tests/hzcluster.py (the jar is fetched with Maven once), with the full JIT and a 512 MiB
heap. Ratios are real/embedded, measured side by side in the same run.

    /work/venv/bin/python -m benchmarks.bus_latency [--events 3000] [--ops 3000] [--only embedded,hz1,hz3]
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hazelcast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine  # noqa: E402
from dolphin.bus import EigenScan, default_codec, schema  # noqa: E402

WARMUP = 500
WRITERS = 4


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


# ---------------------------------------------------------------- the buses
class Target:
    """One bus to measure: where its members are and the cluster name."""

    def __init__(self, label: str, members: list[str], cluster_name: str) -> None:
        self.label = label
        self.members = members
        self.cluster_name = cluster_name

    def options(self) -> dict[str, Any]:
        return {"cluster_members": self.members, "cluster_name": self.cluster_name, "cluster_connect_timeout": 30}


@contextmanager
def embedded_member() -> Iterator[Target]:
    ready = Path(tempfile.mkdtemp()) / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "dolphin.bus.member", "--port", "0", "--ready-file", str(ready),
                             "--log-level", "WARNING"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the embedded member did not start")
            time.sleep(0.02)
        info = json.loads(ready.read_text())
        yield Target("embedded", [f"{info['host']}:{info['port']}"], "dolphin")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


@contextmanager
def real_cluster(size: int) -> Iterator[Target]:
    from tests.hzcluster import JVM_OPTIONS_BENCH, RealCluster, real_cluster_unavailable

    reason = real_cluster_unavailable()
    if reason is not None:
        raise SystemExit(f"cannot run real members: {reason}")
    cluster = RealCluster(Path(tempfile.mkdtemp()) / f"hz{size}", size, fast_failure_detection=False,
                          jvm_options=JVM_OPTIONS_BENCH).start()
    try:
        yield Target(f"hz{size}", list(cluster.addresses), cluster.cluster_name)
    finally:
        cluster.stop()


# ---------------------------------------------------------------- threaded client
def bench_threaded(target: Target, events: int, ops: int, value: str) -> dict[str, float]:
    writer = hazelcast.HazelcastClient(**target.options())
    listener = hazelcast.HazelcastClient(**target.options())
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
    finally:
        writer.shutdown()
        listener.shutdown()
    return summarise(samples, gets, ops / put_s)


# ---------------------------------------------------------------- asyncio client
async def _bench_asyncio(target: Target, events: int, ops: int, value: str) -> dict[str, float]:
    from hazelcast.asyncio import HazelcastClient as AsyncClient

    writer = await AsyncClient.create_and_start(**target.options())
    listener = await AsyncClient.create_and_start(**target.options())
    extra = [await AsyncClient.create_and_start(**target.options()) for _ in range(WRITERS - 1)]
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

        maps = [plain] + [await c.get_map("plain") for c in extra]

        async def write(m: Any, tag: int) -> None:
            for i in range(ops):
                await m.set(f"w{tag}-{i % 100}", value)

        t0 = time.perf_counter()
        await asyncio.gather(*(write(m, tag) for tag, m in enumerate(maps)))
        multi_s = time.perf_counter() - t0
    finally:
        for c in (writer, listener, *extra):
            await c.shutdown()
    out = summarise(samples, gets, ops / put_s)
    out["multi_put_ops"] = WRITERS * ops / multi_s
    return out


def summarise(samples: list[int], gets: list[int], put_ops: float) -> dict[str, float]:
    return {
        "n": len(samples),
        "event_p50": pct(samples, 0.50), "event_p99": pct(samples, 0.99), "event_mean": statistics.fmean(samples) / 1e3,
        "get_p50": pct(gets, 0.50), "get_p99": pct(gets, 0.99),
        "put_ops": put_ops,
    }


TARGETS: dict[str, Callable[[], Any]] = {
    "embedded": embedded_member,
    "hz1": lambda: real_cluster(1),
    "hz3": lambda: real_cluster(3),
}

ROWS = (
    ("put → listener p50 (µs)", "event_p50"),
    ("put → listener p99 (µs)", "event_p99"),
    ("round-trip get p50 (µs)", "get_p50"),
    ("round-trip get p99 (µs)", "get_p99"),
    ("sync put ops/s (1 in flight)", "put_ops"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3_000, help="measured events per client (default 3000)")
    parser.add_argument("--ops", type=int, default=3_000, help="sync puts per client (default 3000)")
    parser.add_argument("--only", default="embedded,hz1,hz3", help="buses to measure (default all three)")
    args = parser.parse_args()
    value = scan_payload()
    chosen = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = sorted(set(chosen) - set(TARGETS))
    if unknown:
        raise SystemExit(f"unknown bus {', '.join(unknown)} (choose from {', '.join(TARGETS)})")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label in chosen:
        with TARGETS[label]() as target:
            print(f"measuring {label} ({', '.join(target.members)}) …", file=sys.stderr, flush=True)
            results[label] = {"threaded": bench_threaded(target, args.events, args.ops, value),
                              "asyncio": asyncio.run(_bench_asyncio(target, args.events, args.ops, value))}
    print(f"machine : {machine('hazelcast-python-client')}")
    print(f"buses   : {', '.join(chosen)} (embedded = DOLPHIN's member in its own process; hzN = N real "
          f"Hazelcast 5.7.0 members on loopback, one backup)")
    print(f"value   : NG8 scan JSON, {len(value)} bytes; {args.events} events per client after {WARMUP} warm-up, "
          "one in flight (ping-pong)")
    base = "embedded" if "embedded" in results else None
    for kind in ("threaded", "asyncio"):
        print()
        header = f"{kind + ' client':30}" + "".join(f"{label:>11}" for label in chosen)
        if base is not None:
            header += "".join(f"{label + '/emb':>11}" for label in chosen if label != base)
        print(header)
        print("-" * len(header))
        rows = ROWS + ((("puts/s, 4 clients × 1 in flight", "multi_put_ops"),) if kind == "asyncio" else ())
        for title, key in rows:
            line = f"{title:30}" + "".join(f"{results[label][kind][key]:11.0f}" for label in chosen)
            if base is not None:
                line += "".join(f"{results[label][kind][key] / results[base][kind][key]:11.2f}"
                                for label in chosen if label != base)
            print(line)
    print()
    for label in chosen:
        worst = max(results[label][k]["event_p99"] for k in ("threaded", "asyncio"))
        print(f"{label:9}: put → listener p99 ≤ {worst / 1000:.2f} ms over both clients "
              f"(goal ≤ 2 ms: {'met' if worst <= 2000 else 'NOT met'})")


if __name__ == "__main__":
    main()
