"""OBF's bus write path alone, on the embedded member and on a real Hazelcast member, in the same run.

    python -m benchmarks.obf_bus_floor [--rounds 200]

Issue 13's "depth update → shard feature visible on the bus" (goal p99 ≤ 5 ms) is, after the
daemon's own ~1 ms (benchmarks/obf_ingest.py splits it), the bus's: the daemon's publisher
pushing the 50 priority symbols' shard documents and the macro at a bar close, and a listener
in this process receiving BTCUSDT's document. This runs exactly that (`ObfPublisher`, the
official client, one `put_all` per shard map — which the client splits into one request per
partition) against each bus in turn, with nothing else running: DOLPHIN's embedded member (the
default of a family on one host) and one real Hazelcast member (`com.hazelcast:hazelcast`, the
pinned version, full JIT, as tests/hzcluster.py runs it for benchmarks). Latency per bar =
listener received − documents offered to the publisher; the first 20 bars of each bus are
warm-up (JIT, connections) and left out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.machine import machine
from benchmarks.obf_ingest import PROBE_SYMBOL, _env, _free_port, _member, _pct, _publisher_floor, _reader

WARMUP_BARS = 20


def measure(name: str, tmp: Path, port: int, env: dict[str, str], rounds: int) -> list[float]:
    received: list[tuple[str, int, float]] = []
    reader = _reader(port, received, env)
    try:
        load = os.getloadavg()[0]
        offered = asyncio.run(_publisher_floor(tmp, port, rounds + WARMUP_BARS, env))
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and sum(k == PROBE_SYMBOL for k, _, _ in received) < len(offered):
            time.sleep(0.05)
    finally:
        reader.shutdown()
    first = sorted(offered)[WARMUP_BARS:]
    arrived = {bar: at for key, bar, at in received if key == PROBE_SYMBOL}
    lat = [(arrived[b] - offered[b]) * 1000.0 for b in first if b in arrived]
    print(f"{name:<34} p50 {_pct(lat, .5):6.2f} ms   p99 {_pct(lat, .99):6.2f} ms   max {max(lat):6.2f} ms   "
          f"mean {statistics.fmean(lat):6.2f} ms   ({len(lat)} of {len(first)} bars; load average {load:.2f})")
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    from tests.hzcluster import JVM_OPTIONS_BENCH, RealCluster, real_cluster_unavailable

    print(f"machine: {machine()}")
    print(f"{PROBE_SYMBOL}'s shard document: 50 priority documents + the macro offered → received by a listener")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = _free_port()
        member = _member(tmp, port)
        try:
            embedded = measure("embedded member (dolphin.bus.member)", tmp, port, _env(port), args.rounds)
        finally:
            member.stop()
        reason = real_cluster_unavailable()
        if reason is not None:
            print(f"real Hazelcast member: not run ({reason})")
            return
        cluster = RealCluster(tmp / "hz", 1, fast_failure_detection=False, jvm_options=JVM_OPTIONS_BENCH).start()
        try:
            env = {**_env(0), "DOLPHIN_HZ_MEMBERS": cluster.members_env, "DOLPHIN_HZ_CLUSTER": cluster.cluster_name}
            real = measure("real Hazelcast member (1, JIT)", tmp, 0, env, args.rounds)
        finally:
            cluster.stop()
    print(f"p99 embedded / real: {_pct(embedded, .99) / _pct(real, .99):.2f}x")


if __name__ == "__main__":
    main()
