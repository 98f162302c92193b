"""Market throughput: the simulator serving 540 × depth5@100ms + 50 kline + 50 aggTrade, the adapter ingesting it.

The simulator and the adapter run as separate processes so each one's CPU is measured
alone (``/proc/<pid>/stat`` for the simulator, ``getrusage`` inside the adapter), over
the same wall-clock window after a warm-up. The adapter runs twice, side by side with the
same simulator: once as shipped (msgspec typed decode, `dolphin.market.streams`) and
once as a baseline whose only change is the frame parser (``json.loads`` into dicts,
then the same edge checks in Python). A third, in-process measurement compares the
simulator's encode-once broadcast with formatting and encoding per subscriber.

    /work/venv/bin/python -m benchmarks.market_throughput            # --duration 20 --symbols 540
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

GOAL_DEPTH_MSGS = 5400
GOAL_ADAPTER_CPU = 50.0
_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _status(rest_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{rest_url}/sim/v1/status", timeout=10) as resp:
        return json.loads(resp.read())


def _streams(n_depth: int, n_other: int) -> list[str]:
    from dolphin.market.symbols import universe

    names = universe(max(n_depth, n_other))
    out = [f"{s.lower()}@depth5@100ms" for s in names[:n_depth]]
    out += [f"{s.lower()}@kline_5s" for s in names[:n_other]]
    out += [f"{s.lower()}@aggTrade" for s in names[:n_other]]
    return out


# --------------------------------------------------------------------------- adapter role


def _json_streams_class() -> type:
    """`MarketStreams` whose parser is json.loads into dicts (the baseline): same checks, same counters."""
    from dolphin.market.streams import MarketStreams

    class JsonStreams(MarketStreams):
        def _accept(self, conn: Any, raw: str | bytes) -> Any:  # noqa: ANN401
            try:
                env = json.loads(raw)
                if "stream" not in env and ("result" in env or "code" in env):
                    return None  # a SUBSCRIBE reply, not data
                stream = env["stream"]
                data = env["data"]
                event_time = int(data["E"])
                symbol = data["s"]
            except (ValueError, KeyError, TypeError):
                conn.dropped_malformed += 1
                return None
            expected = conn.streams.get(stream)
            if expected is None:
                conn.dropped_unknown += 1
                return None
            if symbol != expected[0]:
                conn.dropped_malformed += 1
                return None
            last = conn.last_event.get(stream)
            if last is not None and event_time < last:
                conn.dropped_out_of_order += 1
                return None
            if data.get("e") == "depthUpdate":
                bids = [(float(p), float(q)) for p, q in data["b"]]
                asks = [(float(p), float(q)) for p, q in data["a"]]
                if not bids or not asks or asks[0][0] <= bids[0][0]:
                    conn.dropped_crossed += 1
                    return None
                data["b"], data["a"] = bids, asks
            elif data.get("e") == "aggTrade":
                data["p"], data["q"] = float(data["p"]), float(data["q"])
            elif data.get("e") == "kline":
                k = data["k"]
                for f in ("o", "h", "l", "c", "v", "q", "V", "Q"):
                    k[f] = float(k[f])
            conn.last_event[stream] = event_time
            conn.messages += 1
            conn.last_rx = time.monotonic()
            return data

    return JsonStreams


async def _adapter(ws_url: str, mode: str, streams: list[str], start_at: float, end_at: float) -> dict[str, Any]:
    from dolphin.market.streams import MarketStreams

    cls = MarketStreams if mode == "typed" else _json_streams_class()
    counted = [0]

    def on_message(_msg: Any) -> None:
        counted[0] += 1

    client = cls(ws_url, streams, on_message=on_message, stall_timeout_s=30.0)
    await client.start()
    await client.wait_connected(60)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    s0 = client.stats()
    t0 = time.time()
    await asyncio.sleep(max(0.0, end_at - time.time()))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    s1 = client.stats()
    t1 = time.time()
    await client.close()
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    msgs = s1.messages - s0.messages
    return {"mode": mode, "seconds": t1 - t0, "messages": msgs, "cpu_s": cpu, "dropped": s1.dropped,
            "reconnects": s1.reconnects, "connections": len(s1.connections)}


# --------------------------------------------------------------------------- encode-once vs per subscriber


def _broadcast_ratio(symbols: int, subscribers: int, rounds: int) -> dict[str, float]:
    """Seconds to deliver ``rounds`` ticks of depth5 frames to N subscribers per stream, both ways."""
    import numpy as np

    from dolphin.market.sim.books import BookModel
    from dolphin.market.sim.config import SimConfig
    from dolphin.market.sim.engine import depth_template
    from dolphin.market.sim.source import make_source

    src = make_source(SimConfig(symbols=symbols))
    books = BookModel(7, src)
    cols = np.arange(symbols)
    t = src.first_ms + 86_400_000
    templates = [depth_template(i, 5) for i in src.instruments]
    names = [f"{i.symbol.lower()}@depth5@100ms" for i in src.instruments]
    sinks: list[list[bytes]] = [[] for _ in range(subscribers)]

    def rows(k: int) -> list[list[float]]:
        b = books.compute(cols, t + 100 * k)
        return np.concatenate([np.stack([b.bid_px, b.bid_qty], axis=2).reshape(symbols, -1),
                               np.stack([b.ask_px, b.ask_qty], axis=2).reshape(symbols, -1)], axis=1).tolist()

    data = [rows(k) for k in range(rounds)]
    start = time.perf_counter()
    for k in range(rounds):
        for tpl, name, row in zip(templates, names, data[k]):
            payload = tpl % (t, t, k, k + 1, k, *row)
            frame = f'{{"stream":"{name}","data":{payload}}}'.encode()
            for sink in sinks:
                sink.append(frame)
    once = time.perf_counter() - start
    for sink in sinks:
        sink.clear()
    start = time.perf_counter()
    for k in range(rounds):
        for tpl, name, row in zip(templates, names, data[k]):
            for sink in sinks:
                payload = tpl % (t, t, k, k + 1, k, *row)
                sink.append(f'{{"stream":"{name}","data":{payload}}}'.encode())
    each = time.perf_counter() - start
    frames = rounds * symbols * subscribers
    return {"once_s": once, "each_s": each, "frames": frames, "ratio": each / once}


# --------------------------------------------------------------------------- parse cost alone


def _decode_ratio(frames_n: int = 54_000) -> dict[str, float]:
    """Seconds to parse depth5 combined frames: msgspec typed (shipped) vs json.loads + conversions (baseline)."""
    import numpy as np

    from dolphin.market import payloads as P
    from dolphin.market.sim.books import BookModel
    from dolphin.market.sim.config import SimConfig
    from dolphin.market.sim.engine import depth_template
    from dolphin.market.sim.source import make_source

    src = make_source(SimConfig(symbols=540))
    books = BookModel(7, src).compute(np.arange(540), src.first_ms + 600_000)
    rows = np.concatenate([np.stack([books.bid_px, books.bid_qty], axis=2).reshape(540, -1),
                           np.stack([books.ask_px, books.ask_qty], axis=2).reshape(540, -1)], axis=1).tolist()
    frames = [f'{{"stream":"{i.symbol.lower()}@depth5@100ms","data":'
              + depth_template(i, 5) % (1, 1, 1, 2, 1, *row) + "}" for i, row in zip(src.instruments, rows)]
    frames = (frames * (frames_n // len(frames) + 1))[:frames_n]
    start = time.perf_counter()
    for f in frames:
        env = P.ENVELOPE_DECODER.decode(f)
        env.data.is_crossed()
    typed = time.perf_counter() - start
    start = time.perf_counter()
    for f in frames:
        d = json.loads(f)["data"]
        bids = [(float(p), float(q)) for p, q in d["b"]]
        asks = [(float(p), float(q)) for p, q in d["a"]]
        _ = not bids or not asks or asks[0][0] <= bids[0][0]
    baseline = time.perf_counter() - start
    return {"typed_us": 1e6 * typed / frames_n, "json_us": 1e6 * baseline / frames_n, "ratio": baseline / typed}


# --------------------------------------------------------------------------- orchestration


def _run_adapter_process(ws_url: str, mode: str, n_depth: int, n_other: int, start_at: float,
                         end_at: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.market_throughput", "--role", "adapter", "--ws", ws_url,
                             "--mode", mode, "--symbols", str(n_depth), "--other", str(n_other),
                             "--start-at", repr(start_at), "--end-at", repr(end_at)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})


def _measure(sim_pid: int, rest_url: str, ws_url: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    start_at = time.time() + args.warmup + 8.0
    end_at = start_at + args.duration
    proc = _run_adapter_process(ws_url, mode, args.symbols, args.other, start_at, end_at)
    time.sleep(max(0.0, start_at - time.time()))
    cpu0, st0, w0 = _proc_cpu_s(sim_pid), _status(rest_url), time.time()
    time.sleep(max(0.0, end_at - time.time()))
    cpu1, st1, w1 = _proc_cpu_s(sim_pid), _status(rest_url), time.time()
    out, _ = proc.communicate(timeout=120)
    adapter = json.loads(out.strip().splitlines()[-1])
    span = w1 - w0
    return {"mode": mode, "sim_cpu_pct": 100.0 * (cpu1 - cpu0) / span,
            "kline_closes_per_s": (st1["klineCloses"] - st0["klineCloses"]) / span,
            "dropped_trades": st1["droppedTrades"] - st0["droppedTrades"],
            "sim_frames_per_s": (st1["framesSent"] - st0["framesSent"]) / span,
            "sim_late_ticks": st1["lateTicks"] - st0["lateTicks"], "adapter": adapter,
            "adapter_cpu_pct": 100.0 * adapter["cpu_s"] / adapter["seconds"],
            "adapter_msgs_per_s": adapter["messages"] / adapter["seconds"],
            "adapter_us_per_msg": 1e6 * adapter["cpu_s"] / max(1, adapter["messages"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", choices=("main", "adapter"), default="main")
    p.add_argument("--ws", default="")
    p.add_argument("--mode", choices=("typed", "json"), default="typed")
    p.add_argument("--symbols", type=int, default=540, help="depth5@100ms streams (default 540)")
    p.add_argument("--other", type=int, default=50, help="kline_5s and aggTrade streams each (default 50)")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per adapter run")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--speed", type=float, default=1.0, help="simulator speed (default 1; try 60)")
    p.add_argument("--start-at", type=float, default=0.0)
    p.add_argument("--end-at", type=float, default=0.0)
    args = p.parse_args(argv)
    streams = _streams(args.symbols, args.other)
    if args.role == "adapter":
        result = asyncio.run(_adapter(args.ws, args.mode, streams, args.start_at, args.end_at))
        print(json.dumps(result), flush=True)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        sim = subprocess.Popen([sys.executable, "-m", "dolphin.market.sim", "--port", "0", "--symbols",
                                str(max(args.symbols, args.other)), "--speed", str(args.speed),
                                "--ready-file", str(ready), "--log-level",
                                "WARNING", "--no-rate-limits"], env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        try:
            deadline = time.time() + 120
            while not ready.exists():
                if time.time() > deadline or sim.poll() is not None:
                    raise SystemExit("simulator did not start")
                time.sleep(0.2)
            info = json.loads(ready.read_text())
            results = [_measure(sim.pid, info["rest_url"], info["ws_url"], mode, args) for mode in ("typed", "json")]
        finally:
            sim.terminate()
            sim.wait(30)
    fanout = _broadcast_ratio(min(args.symbols, 540), 3, 20)
    decode = _decode_ratio()

    print(f"streams: {args.symbols} × depth5@100ms + {args.other} × kline_5s + {args.other} × aggTrade; "
          f"speed {args.speed:g}×; {args.duration:.0f} s measured per run; machine: {os.cpu_count()} CPUs visible")
    print(f"{'adapter parser':<16}{'sim CPU %':>10}{'sim frames/s':>14}{'late ticks':>11}"
          f"{'adapter CPU %':>15}{'adapter msg/s':>15}{'µs/msg':>9}{'dropped':>9}")
    for r in results:
        a = r["adapter"]
        print(f"{r['mode']:<16}{r['sim_cpu_pct']:>10.1f}{r['sim_frames_per_s']:>14,.0f}{r['sim_late_ticks']:>11}"
              f"{r['adapter_cpu_pct']:>15.1f}{r['adapter_msgs_per_s']:>15,.0f}{r['adapter_us_per_msg']:>9.1f}"
              f"{a['dropped']:>9}")
    typed, base = results
    print(f"kline closes/s sent by the simulator: {typed['kline_closes_per_s']:,.1f} "
          f"(trades dropped by catch-up: {typed['dropped_trades']})")
    print(f"adapter CPU per message, json.loads baseline / msgspec typed: "
          f"{base['adapter_us_per_msg'] / typed['adapter_us_per_msg']:.2f}×")
    print(f"depth5 frame parse alone: msgspec typed {decode['typed_us']:.2f} µs, json.loads + floats "
          f"{decode['json_us']:.2f} µs: {decode['ratio']:.2f}×")
    print(f"simulator fan-out to 3 subscribers/stream, per-subscriber encode / encode-once: {fanout['ratio']:.2f}× "
          f"({fanout['frames']:,} frames: {fanout['once_s']:.3f} s vs {fanout['each_s']:.3f} s)")
    ok_sim = typed["sim_frames_per_s"] >= GOAL_DEPTH_MSGS * 0.95 and typed["sim_cpu_pct"] <= 100.0
    ok_adapter = typed["adapter_cpu_pct"] <= GOAL_ADAPTER_CPU
    print(f"goal simulator ≥ {GOAL_DEPTH_MSGS:,} depth msgs/s on ≤ 1 core: {'met' if ok_sim else 'NOT met'}; "
          f"goal adapter ≤ {GOAL_ADAPTER_CPU:.0f} % of a core: {'met' if ok_adapter else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
