"""TUI speed: event-to-screen latency, idle CPU, and the load the TUI puts on what it watches.

1. Latency — the real app (`DolphinTui` + `BusFeed`, headless at 160×50) against a member
   in its own process. A writer thread puts an NG8 scan (50 prices) and waits until the
   Scan panel's `render()` has produced that scan number (the app's render hook), then
   waits 5–25 ms and puts the next: pure latency, no queueing. Split per event:
   put → `TuiState.deliver` (bus + decode + validate, on the feed's thread) and
   deliver → render (UI). Baseline on the same puts: a bare entry listener on a second,
   threaded client in this process (no decode, no UI).

2. Idle cost — `dolphin tui` as a real process on a pseudo-terminal (160×50), against an
   in-process member and a real supervisord (two programs), while a feeder publishes what
   a running family does at normal speed: a scan every 5 s, three service heartbeats every
   5 s, MHS and posture every 10 s. CPU from /proc/<pid>/stat (utime+stime) over the
   window, and the bytes the TUI wrote to its terminal. Baselines side by side: two
   processes holding the TUI's listeners with no UI, one with the asyncio client (what
   the TUI uses) and one with the threaded client. Origin load: every request the member
   receives, counted per client name and message type over the window.

    /work/venv/bin/python -m benchmarks.tui_latency            # --events 1000 --idle-s 60
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import fcntl
import json
import os
import pty
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from benchmarks.machine import machine
from dolphin.bus import (  # noqa: E402
    BusEvent,
    BusSettings,
    EigenScan,
    EmbeddedMember,
    LatestState,
    connect,
    default_codec,
    iso_utc,
    schema,
    subscribe,
)
from tests.tui import support as S  # noqa: E402

WARMUP = 50
TICKS = os.sysconf("SC_CLK_TCK")
MESSAGE_NAMES = {0x000B00: "ping", 0x000400: "create proxy", 0x011800: "add key listener",
                 0x011900: "add map listener", 0x010200: "get", 0x012300: "get_all", 0x012200: "key_set",
                 0x012500: "entry_set", 0x000100: "authenticate", 0x000300: "cluster view listener",
                 0x000F00: "backup listener", 0x010F00: "set", 0x010100: "put", 0x000C00: "statistics"}


def scan_json(number: int) -> str:
    now = time.time()
    prices = {f"A{i:02d}USDT": 100.0 + i for i in range(50)}
    scan = EigenScan(scan_number=number, timestamp_ns=int(now * 1e9), vel_div=-0.0312, w50_velocity=-0.011,
                     w150_velocity=0.002, w300_velocity=0.004, w750_velocity=0.0202, instability_50=0.31,
                     asset_prices=prices, timestamp=iso_utc(now), bridge_ts=now)
    return default_codec.encode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, scan)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(name: str, values_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {"what": name, "n": len(ms), "p50_ms": round(pct(ms, 50), 3), "p99_ms": round(pct(ms, 99), 3),
            "max_ms": round(max(ms), 3), "mean_ms": round(statistics.fmean(ms), 3)}


# ------------------------------------------------------------------------ 1. latency
def start_member_process(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = tmp / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "dolphin.bus.member", "--port", "0", "--ready-file", str(ready)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the member did not start")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return proc, f"{info['host']}:{info['port']}"


async def measure_latency(events: int, address: str, tmp: Path) -> list[dict[str, Any]]:
    from dolphin.engine.params import StrategyConfig
    from tui.app import DolphinTui
    from tui.feeds import BusFeed
    from tui.state import StrategyView, TuiState

    delivered: dict[int, float] = {}
    rendered: dict[int, float] = {}
    bare: dict[int, float] = {}
    want = [-1]
    got = threading.Event()

    class TimedState(TuiState):
        def deliver(self, event: BusEvent) -> None:
            if event.key == schema.LATEST_EIGEN_SCAN and event.payload is not None:
                delivered.setdefault(event.payload.scan_number, time.perf_counter())
            super().deliver(event)

    def hook(panel: str, mark: Any) -> None:
        if panel == "scan" and mark == want[0]:
            rendered[mark] = time.perf_counter()
            got.set()

    settings = BusSettings(members=(address,), connect_timeout_s=20)
    state = TimedState()
    app = DolphinTui(state=state, feeds=[BusFeed(state, settings)], results_path=tmp / "none.json",
                     render_hook=hook, strategy=StrategyView(config=StrategyConfig(), source="benchmark"))
    payloads = {n: scan_json(n) for n in range(1, events + WARMUP + 1)}
    puts: dict[int, float] = {}

    def writer() -> None:
        writer_client = connect(settings, client_name="bench-writer")
        listener_client = connect(settings, client_name="bench-bare-listener")
        lmap = listener_client.get_map(schema.FEATURES).blocking()

        def on_event(event: Any) -> None:
            # the floor: the raw callback, no decode (scan number parsed cheaply for matching)
            bare.setdefault(want[0], time.perf_counter())

        lmap.add_entry_listener(include_value=True, key=schema.LATEST_EIGEN_SCAN, added_func=on_event,
                                updated_func=on_event)
        m = writer_client.get_map(schema.FEATURES).blocking()
        rnd = random.Random(7)
        for n, payload in payloads.items():
            want[0] = n
            got.clear()
            puts[n] = time.perf_counter()
            m.set(schema.LATEST_EIGEN_SCAN, payload)
            if not got.wait(5):
                print(f"scan {n} not rendered within 5 s", file=sys.stderr)
            time.sleep(rnd.uniform(0.005, 0.025))
        writer_client.shutdown()
        listener_client.shutdown()

    async with app.run_test(size=(160, 50)) as pilot:
        while state.bus.state != "connected":
            await pilot.pause(0.05)
        await asyncio.to_thread(writer)
    measured = [n for n in payloads if n > WARMUP and n in rendered]
    return [
        summary("put → bare listener callback (baseline, no decode, no UI)",
                [bare[n] - puts[n] for n in measured if n in bare]),
        summary("put → TuiState.deliver (bus + decode + validate)", [delivered[n] - puts[n] for n in measured]),
        summary("deliver → Scan panel rendered (UI)", [rendered[n] - delivered[n] for n in measured]),
        summary("put → Scan panel rendered (event-to-screen)", [rendered[n] - puts[n] for n in measured]),
    ]


# ------------------------------------------------------------------------ 2. idle cost
def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15 of stat)


class Feeder(threading.Thread):
    """What a running family publishes at normal speed."""

    def __init__(self, settings: BusSettings) -> None:
        super().__init__(daemon=True, name="feeder")
        self.settings = settings
        self.stop = threading.Event()
        self.puts = 0

    def run(self) -> None:
        from dolphin.bus import Bus

        client = connect(self.settings, client_name="bench-feeder")
        bus = Bus(client)
        n = 1
        while not self.stop.is_set():
            now = time.time()
            bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(n, now, vel_div=-0.03 + 0.001 * (n % 20)))
            self.puts += 1
            for service in ("scanner", "mhs", "trader"):
                bus.put(schema.HEARTBEAT, schema.heartbeat_key(service), S.heartbeat(service, now))
                self.puts += 1
            if n % 2 == 0:
                bus.put(schema.META_HEALTH, schema.LATEST, S.meta_health(now))
                bus.put(schema.SAFETY, schema.LATEST, S.safety(now))
                self.puts += 2
            n += 1
            self.stop.wait(5.0)
        client.shutdown()


def run_on_pty(cmd: list[str], env: dict[str, str], cols: int = 160, rows: int = 50) -> tuple[Any, int, list[int]]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True)
    os.close(slave)
    written = [0]

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            written[0] += len(data)

    threading.Thread(target=drain, daemon=True).start()
    return proc, master, written


def measure_idle(seconds: float, warmup: float, tmp: Path) -> dict[str, Any]:
    member = EmbeddedMember().start()
    counts: collections.Counter[tuple[str, int]] = collections.Counter()
    real_dispatch = member.member.dispatch  # type: ignore[union-attr]

    def counting_dispatch(conn: Any, req: Any) -> None:
        counts[(conn.client_name or "?", req.message_type)] += 1
        real_dispatch(conn, req)

    member.member.dispatch = counting_dispatch  # type: ignore[union-attr,method-assign]
    member.member.transport._dispatch = counting_dispatch  # type: ignore[union-attr]
    sup = S.MiniSupervisor(tmp / "family").start()
    settings = BusSettings(members=(member.address,), connect_timeout_s=20)
    feeder = Feeder(settings)
    feeder.start()
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", COLORTERM="truecolor", DOLPHIN_HZ_PORT=str(member.port),
               DOLPHIN_HOME=str(tmp / "home"), PYTHONPATH=str(ROOT))
    results: dict[str, Any] = {}
    try:
        tui, master, written = run_on_pty([sys.executable, "-m", "commands", "tui", "--socket", str(sup.socket)], env)
        bare = {kind: subprocess.Popen([sys.executable, "-m", "benchmarks.tui_latency", "--bare-listener", kind],
                                       cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for kind in ("asyncio", "threaded")}
        procs = (tui, *bare.values())
        time.sleep(warmup)
        before = dict(counts)
        bytes0 = written[0]
        t0 = {p.pid: cpu_ticks(p.pid) for p in procs}
        wall0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - wall0
        t1 = {p.pid: cpu_ticks(p.pid) for p in procs}
        window = collections.Counter({k: v - before.get(k, 0) for k, v in counts.items() if v - before.get(k, 0)})

        def share(pid: int) -> float:
            return (t1[pid] - t0[pid]) / TICKS / elapsed * 100

        def requests(name: str) -> dict[str, int]:
            return {MESSAGE_NAMES.get(t, f"0x{t:06x}"): n for (who, t), n in sorted(window.items()) if who == name}

        results = {
            "window_s": round(elapsed, 1),
            "tui_cpu_pct_of_core": round(share(tui.pid), 2),
            "baseline_asyncio_client_listeners_cpu_pct": round(share(bare["asyncio"].pid), 2),
            "baseline_threaded_client_listeners_cpu_pct": round(share(bare["threaded"].pid), 2),
            "tui_terminal_bytes_per_s": round((written[0] - bytes0) / elapsed),
            "tui_requests_to_member": requests("dolphin-tui"),
            "baseline_asyncio_requests_to_member": requests("bench-bare-asyncio"),
            "feeder_requests_to_member": requests("bench-feeder"),
            "supervisord_polls_expected": round(elapsed / 3.0),
        }
        os.write(master, b"q")
        try:
            tui.wait(20)
        except subprocess.TimeoutExpired:
            tui.kill()
        for p in bare.values():
            p.terminate()
            p.wait(10)
        os.close(master)
    finally:
        feeder.stop.set()
        sup.stop()
        member.stop()
    return results


def bare_listener(kind: str) -> None:
    """Baseline process: the TUI's listeners and client, without any UI."""
    from dolphin.bus import connect_async, subscribe_async
    from tui.feeds import SUBSCRIPTIONS

    if kind == "threaded":
        client = connect(BusSettings.from_env(), client_name="bench-bare-threaded")
        state = LatestState()
        for map_name, key in SUBSCRIPTIONS:
            subscribe(client, map_name, state, key=key)
        while True:
            time.sleep(3600)

    async def run() -> None:
        aclient = await connect_async(BusSettings.from_env(), client_name="bench-bare-asyncio")
        astate = LatestState()
        for map_name, key in SUBSCRIPTIONS:
            await subscribe_async(aclient, map_name, astate, key=key)
        await asyncio.Event().wait()

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=10.0)
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--bare-listener", choices=("threaded", "asyncio"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_listener:
        bare_listener(args.bare_listener)
        return
    print(machine("textual", "hazelcast-python-client"))
    with tempfile.TemporaryDirectory(prefix="tui-bench-") as name:
        tmp = Path(name)
        os.environ["DOLPHIN_HOME"] = str(tmp / "home")
        if not args.skip_latency:
            proc, address = start_member_process(tmp)
            try:
                rows = asyncio.run(measure_latency(args.events, address, tmp))
            finally:
                proc.terminate()
                proc.wait(20)
            print(f"\nevent-to-screen latency, {args.events} events after {WARMUP} warm-up (goal p99 ≤ 100 ms):")
            for row in rows:
                print(f"  {row['what']:<58} p50 {row['p50_ms']:8.3f} ms  p99 {row['p99_ms']:8.3f} ms  "
                      f"max {row['max_ms']:8.3f} ms  (n={row['n']})")
        if not args.skip_idle:
            idle = measure_idle(args.idle_s, args.warmup_s, tmp)
            print(f"\nidle cost over {idle['window_s']} s while a feeder publishes at normal speed (goal ≤ 3 %):")
            print(json.dumps(idle, indent=2))


if __name__ == "__main__":
    main()
