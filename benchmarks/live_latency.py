"""Scan received → order at the venue: the live executor against a real `dolphin sim` process, beside paper.

    python -m benchmarks.live_latency [--scans 2000] [--home /dev/shm]

Issue 17's speed target: "scan received → order on the wire, measured at the simulator:
p50/p99 over ≥ 1,000 orders (goal p99 ≤ 5 ms), beside the paper executor in the same run".

What is measured, per order (both clocks are this host's ``time.time()``):

* **t0** — the trader service hands the scan to its core: the entry of
  ``TraderService._offer`` (after the bus listener and the service's queue, before the
  trust gate, the engine step, the pre-trade checks and the journal's intent record).
* **t1, live** — the simulator's HTTP handler for ``POST /fapi/v1/order`` is entered
  (headers parsed, before the body is read): the stamp the simulator itself keeps
  (``GET /sim/v1/orders/received``). The simulator is a real ``dolphin sim`` process on
  loopback; the order goes through the production ``BinanceRest`` client (signing, the
  client's rate limiter, aiohttp).
  For the split, the live run also stamps the production client's ``new_order`` being
  called (after the pre-trade checks, before signing and the HTTP write).
* **t1, paper (baseline)** — the paper executor's ``submit`` is entered: the same path up
  to the executor, with no wire.

Each order is attributed to the latest scan offered before it arrived. A scan that exits
and re-enters sends two orders; the second one's figure includes the first's round trip.
Scans are fed in lockstep (the next once the previous step returned), so the figures are
latency, not queueing. The live feed is also paced to an average of ``--orders-per-s``
(17): Binance allows 1,200 orders a minute and 300 per 10 s, the production client's
limiter keeps 10 % of that back and holds an order that would break it — unpaced, this
feed sends ~40 orders/s and those holds (seconds, at each 10 s window) were the tail.
So the default run takes ~90 s: 1,000 orders cannot go out in under a minute. The bus member runs as its own process, as under supervisord.

The strategy is the blue champion made to trade on almost every bar (entry threshold at
its ceiling, a one-bar hold; the test harness's configs otherwise, tests/integration/live),
so a couple of thousand scans send over a thousand orders. The scans are hours of market
history fed in seconds, so the core's market clock follows the feed (each scan is a second
past its bar's close when offered, as a live scan is); the venue's clock starts after the
last scan, so the engine's and the venue's prices differ and the price band is widened. The live order throttle is
raised to 200/s and the simulator's request-weight limits are off: both would otherwise
add deliberate waits to a benchmark sending an order every other bar.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from benchmarks.machine import machine
from benchmarks.trader_latency import percentile, start_member
from dolphin.bus import Bus, schema
from dolphin.bus.client import connect
from dolphin.bus.scan_codec import payload_from_record
from dolphin.execution.executor import Executor, PaperExecutor
from dolphin.execution.orders import Fill, OrderIntent
from dolphin.scan.record import ScanRecord
from dolphin.store.arrow_scans import write_scan
from tests.integration.live.support import API_KEY, API_SECRET, WARM_UNTIL, synthetic_records, write_configs

BENCH_LIVE = {"max_orders_per_s": 200, "order_burst": 200, "price_band_pct": 50.0, "latency_spike_ms": 60_000,
              "reconcile_every_s": 15.0}   # the shipped cadence (the test harness reconciles every second)
BAR_MS = 5000
BENCH_CHAMPION = {"vel_div_threshold": -1e-6, "vel_div_extreme": -0.03, "max_hold_bars": 1, "dc_skip_contradicts": False,
                  "min_irp_alignment": 0.0}


def start_sim(tmp: Path, start_ms: int) -> tuple[subprocess.Popen[bytes], str, str]:
    """`dolphin sim` as its own process on a free loopback port; returns it and its REST and WebSocket URLs."""
    ready = tmp / "sim.json"
    log = open(tmp / "sim.log", "ab")
    env = {**os.environ, "DOLPHIN_SIM_API_KEY": API_KEY, "DOLPHIN_SIM_API_SECRET": API_SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "commands", "sim", "--port", "0", "--symbols", "50", "--seed", "7",
                             "--start", str(start_ms), "--no-rate-limits", "--log-level", "WARNING",
                             "--ready-file", str(ready)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the simulator did not start (see {tmp / 'sim.log'})")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return proc, str(info["rest_url"]), str(info["ws_url"])


def received_at_sim(rest_url: str) -> list[tuple[str, str, float]]:
    """(client order id, symbol, wall time) of every new order the simulator's handler took, in arrival order."""
    with urllib.request.urlopen(f"{rest_url}/sim/v1/orders/received", timeout=30) as resp:
        rows = json.loads(resp.read())
    return [(r["client_order_id"], r["symbol"], float(r["received_s"])) for r in rows if r["path"] == "/fapi/v1/order"]


class Run:
    """One trader session (live or paper) fed in lockstep; records t0 per scan and t1 per paper order."""

    def __init__(self, mode: str, tmp: Path, records: list[ScanRecord], port: int, rest_url: str,
                 ws_url: str, orders_per_s: float) -> None:
        self.mode, self.records, self.orders_per_s = mode, records, orders_per_s
        self.home = tmp / mode
        self.home.mkdir(parents=True)
        configs = write_configs(tmp / f"{mode}-configs", BENCH_LIVE)
        blue = yaml.safe_load((configs / "blue.yml").read_text())
        blue["champion"].update(BENCH_CHAMPION)
        (configs / "blue.yml").write_text(yaml.safe_dump(blue))
        os.environ.update({"DOLPHIN_HOME": str(self.home), "DOLPHIN_CONFIG_DIR": str(configs),
                           "DOLPHIN_HZ_PORT": str(port), "DOLPHIN_HZ_MEMBERS": "", "DOLPHIN_MARKET": "sim",
                           "DOLPHIN_MARKET_REST_URL": rest_url, "DOLPHIN_MARKET_WS_URL": ws_url,
                           "DOLPHIN_LIVE_REST_URL": rest_url, "DOLPHIN_LIVE_WS_URL": ws_url,
                           "DOLPHIN_BINANCE_API_KEY": API_KEY, "DOLPHIN_BINANCE_API_SECRET": API_SECRET,
                           "DOLPHIN_TRADER_STALE_AFTER_S": "3600", "DOLPHIN_TRADER_VENUE": "paper"})
        for rec in records[:WARM_UNTIL - 1]:
            write_scan(self.home, rec)
        self.offered: list[float] = []           # t0 of each fed scan, in order
        # (client order id, symbol, t1): paper's submit entered; live's client `new_order` called
        self.submitted: list[tuple[str, str, float]] = []
        self.feed_s = 0.0
        self.market_ms = 0
        self.stepped = threading.Event()

    def service_class(self) -> type:
        from dolphin.services.live.service import LiveTraderService
        from dolphin.services.trader.service import TraderService

        run = self
        base: Any = LiveTraderService if self.mode == "live" else TraderService

        class TimedPaper(PaperExecutor):
            async def submit(self, intent: OrderIntent) -> Fill:
                run.submitted.append((intent.client_order_id, intent.symbol, time.time()))
                return await super().submit(intent)

        class Timed(base):
            async def start(self) -> Any:
                core = await super().start()
                core.market_now = lambda: run.market_ms
                if run.mode == "live":
                    rest = self.executor.rest
                    send = rest.new_order

                    async def new_order(symbol: str, *args: Any, **kwargs: Any) -> Any:
                        run.submitted.append((kwargs.get("new_client_order_id") or "", symbol, time.time()))
                        return await send(symbol, *args, **kwargs)
                    rest.new_order = new_order
                return core

            async def _offer(self, core: Any, payload: Any) -> Any:
                run.offered.append(time.time())
                run.market_ms = payload.timestamp_ns // 1_000_000 + BAR_MS + 1000
                try:
                    return await super()._offer(core, payload)
                finally:
                    run.stepped.set()

            def make_executor(self) -> Executor:
                return super().make_executor() if run.mode == "live" else TimedPaper()

        return Timed

    def go(self) -> None:
        """Run the session to the last scan (``feed_s``: the wall seconds from the first scan put to the last step)."""
        from dolphin.config.services import load_services_config
        from dolphin.services.runtime import ServiceContext, configure_logging

        log = configure_logging("trader", log_file=self.home / "trader.log")
        feed = self.records[WARM_UNTIL - 1:]

        def feeder(ctx: ServiceContext, loop: asyncio.AbstractEventLoop) -> None:
            client = connect(cluster_connect_timeout=10.0)
            bus = Bus(client)
            try:
                deadline = time.monotonic() + 120
                while bus.get(schema.STATE_BLUE, schema.LATEST) is None:   # published once started
                    if time.monotonic() > deadline or ctx.stop.is_set():
                        return
                    time.sleep(0.05)
                t_start = time.monotonic()
                for rec in feed:
                    if self.mode == "live":    # under the venue's order limits: the client's limiter never waits
                        ahead = len(self.submitted) / self.orders_per_s - (time.monotonic() - t_start)
                        if ahead > 0:
                            time.sleep(ahead)
                    self.stepped.clear()
                    bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload_from_record(rec, bridge_ts=time.time()))
                    if not self.stepped.wait(60):
                        print(f"{self.mode}: no step for scan {rec.scan_number} within 60 s", file=sys.stderr)
                        return
                self.feed_s = time.monotonic() - t_start
            finally:
                client.shutdown()
                loop.call_soon_threadsafe(ctx.stop.set)

        async def main() -> None:
            ctx = ServiceContext(name="trader", log=log)
            service = self.service_class()(ctx, load_services_config())
            try:
                if await ctx.connect_bus() is None:
                    raise SystemExit("the trader could not reach the bus")
                await service.start()
                ctx.phase = "running"
                threading.Thread(target=feeder, args=(ctx, asyncio.get_running_loop()), daemon=True).start()
                await service.loop()
            finally:
                await service.close()
                await ctx.close()

        asyncio.run(main())

    def latencies(self, arrivals: list[tuple[str, str, float]]) -> tuple[list[float], list[float]]:
        """ms from the offer of the latest scan before each order to that order's arrival (first arrival per id):
        every order, and every order but each symbol's first (live sets the symbol's leverage before it)."""
        seen: set[str] = set()
        symbols: set[str] = set()
        every: list[float] = []
        later: list[float] = []
        for cid, symbol, t1 in arrivals:
            if cid in seen or not cid.startswith("dol"):
                continue
            seen.add(cid)
            i = bisect.bisect_right(self.offered, t1) - 1
            if i < 0:
                continue
            every.append((t1 - self.offered[i]) * 1000)
            if symbol in symbols:
                later.append(every[-1])
            symbols.add(symbol)
        return every, later


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=4600, help="scans in all (the first 759 are archived history)")
    ap.add_argument("--orders-per-s", type=float, default=17.0,
                    help="live feed pace: average orders/s (Binance allows 1,200/min, the client keeps 10 %% back)")
    ap.add_argument("--home", default=None, help="where the journals live (e.g. /dev/shm: fsync-free)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="live-bench-", dir=args.home))
    records = synthetic_records(args.scans)
    start_ms = records[-1].timestamp_ns // 1_000_000 + 60_000
    loads: list[float] = [os.getloadavg()[0]]       # the 1-minute load average, sampled through the run
    sampling = threading.Event()

    def sample_load() -> None:
        while not sampling.wait(5.0):
            loads.append(os.getloadavg()[0])
    threading.Thread(target=sample_load, daemon=True).start()
    member, port = start_member(tmp)
    sim, rest_url, ws_url = start_sim(tmp, start_ms)
    figures: dict[str, tuple[list[float], list[float], float, int]] = {}
    client: tuple[list[float], list[float]] = ([], [])
    try:
        reader = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{port}"])
        bus = Bus(reader)
        for mode in ("paper", "live"):
            bus.delete(schema.STATE_BLUE, schema.LATEST)
            run = Run(mode, tmp, records, port, rest_url, ws_url, args.orders_per_s)
            run.go()
            arrivals = received_at_sim(rest_url) if mode == "live" else run.submitted
            figures[mode] = (*run.latencies(arrivals), run.feed_s, len(run.offered))
            if mode == "live":
                client = run.latencies(run.submitted)
        reader.shutdown()
    finally:
        for proc in (sim, member):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    sampling.set()
    print(f"machine: {machine('aiohttp', 'hazelcast-python-client')}; load average (1 min) during the run "
          f"{min(loads):.2f}–{max(loads):.2f}, at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"journals under {tmp} (fsynced as the trader does)")
    print(f"{'scan received → order (ms)':58s} {'p50':>8s} {'p99':>8s} {'max':>8s} {'orders':>7s} {'scans':>6s} "
          f"{'feed s':>7s}")
    for mode, name in (("live", "live: order handler entered at `dolphin sim`"),
                       ("paper", "baseline: paper executor submit entered")):
        every, later, feed_s, n_scans = figures[mode]
        rows = [(name, every), (f"  {mode}, each symbol's first order left out", later)]
        if mode == "live":
            rows.append(("  live, the client's `new_order` called (before signing)", client[0]))
        for label, values in rows:
            print(f"{label:58s} {percentile(values, 50):8.3f} {percentile(values, 99):8.3f} "
                  f"{max(values) if values else float('nan'):8.3f} {len(values):7d} {n_scans:6d} {feed_s:7.1f}")
    for label, (live, paper) in (("ratio live / paper, every order", (figures["live"][0], figures["paper"][0])),
                                 ("ratio live / paper, symbol's first left out",
                                  (figures["live"][1], figures["paper"][1]))):
        if live and paper:
            print(f"{label:58s} {percentile(live, 50) / percentile(paper, 50):7.1f}× "
                  f"{percentile(live, 99) / percentile(paper, 99):7.1f}×")
    print("goal: live p99 ≤ 5 ms over ≥ 1,000 orders")


if __name__ == "__main__":
    main()
