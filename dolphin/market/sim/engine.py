"""The emission loop: every wall tick, advance simulated time and publish what happened.

One task, one tick every ``tick_ms`` of wall time (100 ms by default). Each tick reads
the simulator clock once and, for the streams that have subscribers:

* **depth** (per update speed and level count): one frame per stream with the book at
  the latest bucket boundary reached — when ``--speed`` makes several buckets pass in one
  tick, the intermediate frames are skipped (a book is a snapshot; only the latest
  matters). All subscribed symbols' books are computed in one vectorised call.
* **kline**: every candle that closed since the last tick, in order, as a final
  ``"x": true`` message — closes are never skipped — then at most one update of the
  forming candle (no more often than every 250 ms of simulated time, Binance's pace).
* **aggTrade**: every trade printed since the last tick, in order (capped at
  ``max_trades_per_tick`` per stream: beyond that the oldest are dropped and counted,
  which only happens at extreme speeds).
* **markPrice**: one update per 1 s / 3 s boundary reached.

Then the exchange settles funding and fills resting orders at the same time. Payloads are
formatted once per stream from precompiled %-templates (numbers straight from numpy
rows) and handed to the hub, which encodes once and broadcasts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from dolphin.market.sim.books import BUCKET_MS
from dolphin.market.sim.exchange import Exchange
from dolphin.market.sim.source import Instrument
from dolphin.market.sim.tape import KlineRow
from dolphin.market.sim.ws_server import StreamHub, StreamSpec

log = logging.getLogger("dolphin.market.sim")

FORMING_KLINE_MS = 250


def depth_template(ins: Instrument, levels: int) -> str:
    """%-template of a depth payload: E, T, U, u, pu, then bid (price, qty)×levels, ask (price, qty)×levels."""
    level = f'["%.{ins.price_decimals}f","%.{max(0, ins.qty_decimals)}f"]'
    side = ",".join([level] * levels)
    return ('{"e":"depthUpdate","E":%d,"T":%d,"s":"' + ins.symbol + '","U":%d,"u":%d,"pu":%d,"b":[' + side
            + '],"a":[' + side + "]}")


def trade_template(ins: Instrument) -> str:
    """%-template of an aggTrade payload: E, a, price, qty, f, l, T, m."""
    return ('{"e":"aggTrade","E":%d,"s":"' + ins.symbol + f'","a":%d,"p":"%.{ins.price_decimals}f",'
            f'"q":"%.{ins.vol_decimals}f","f":%d,"l":%d,"T":%d,"m":%s}}')


def mark_template(ins: Instrument) -> str:
    """%-template of a markPriceUpdate payload: E, p, i, P, r, T."""
    return '{"e":"markPriceUpdate","E":%d,"s":"' + ins.symbol + '","p":"%.8f","i":"%.8f","P":"%.8f","r":"%.8f","T":%d}'


def kline_payload(ins: Instrument, interval: str, row: KlineRow, event_ms: int) -> str:
    d, vd = ins.price_decimals, ins.vol_decimals
    return (f'{{"e":"kline","E":{event_ms},"s":"{ins.symbol}","k":{{"t":{row.open_time},"T":{row.close_time},'
            f'"s":"{ins.symbol}","i":"{interval}","f":{row.first_trade_id},"L":{row.last_trade_id},'
            f'"o":"{row.open:.{d}f}","c":"{row.close:.{d}f}","h":"{row.high:.{d}f}","l":"{row.low:.{d}f}",'
            f'"v":"{row.volume:.{vd}f}","n":{row.trades},"x":{"true" if row.closed else "false"},'
            f'"q":"{row.quote_volume:.8f}","V":"{row.taker_buy_volume:.{vd}f}","Q":"{row.taker_buy_quote:.8f}",'
            '"B":"0"}}')


@dataclass(slots=True)
class _KlineState:
    last_closed_open: int
    last_forming: int = -(10**18)


@dataclass(slots=True)
class _Groups:
    """Active streams grouped the way the tick computes them."""

    depth: dict[tuple[int, int], list[StreamSpec]] = field(default_factory=dict)
    trades: list[StreamSpec] = field(default_factory=list)
    klines: list[StreamSpec] = field(default_factory=list)
    marks: dict[int, list[StreamSpec]] = field(default_factory=dict)


class StreamEngine:
    """Publishes market streams to a `StreamHub` as simulated time passes."""

    def __init__(self, exchange: Exchange, hub: StreamHub, tick_ms: int = 100, max_trades_per_tick: int = 64) -> None:
        self.exchange = exchange
        self.hub = hub
        self.source = exchange.source
        self.tick_s = tick_ms / 1000.0
        self.max_trades = max_trades_per_tick
        self._groups = _Groups()
        self._depth_last: dict[tuple[int, int], tuple[int, int]] = {}
        self._mark_last: dict[int, int] = {}
        self._trade_cursor: dict[int, int] = {}
        self._klines: dict[str, _KlineState] = {}
        self._templates: dict[tuple[str, int], str] = {}
        self._interval_names = {ms: name for name, ms in exchange.intervals.items()}
        self._prefetch_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dolphin-sim-prefetch")
        self._prefetched = -1
        self._ended_logged = False
        self.ticks = 0
        self.late_ticks = 0
        self.dropped_trades = 0
        self.kline_closes = 0
        self.errors = 0

    # -- loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Tick until cancelled.

        When simulated 100 ms buckets are slower than half a tick (speed ≤ 2 at the default
        100 ms tick), ticks are aligned just after each bucket boundary, so every depth@100ms
        stream gets exactly one frame per bucket; faster, the loop ticks every ``tick_ms``
        and skips intermediate books.
        """
        loop = asyncio.get_running_loop()
        clock = self.exchange.clock
        speed = clock.speed
        while True:
            started = loop.time()
            now = self.exchange.now()
            try:
                self.tick(now)
            except Exception:  # noqa: BLE001 - the market must keep running; the bug is logged
                self.errors += 1
                log.exception("stream engine tick failed")
            boundary = (now // BUCKET_MS + 1) * BUCKET_MS
            to_boundary = (boundary - now) / (1000.0 * speed) + 0.001
            if BUCKET_MS / (1000.0 * speed) >= self.tick_s / 2:
                delay = to_boundary - (loop.time() - started)
            else:
                delay = self.tick_s - (loop.time() - started)
            if delay < 0:
                self.late_ticks += 1
                delay = 0.0
            await asyncio.sleep(delay)

    def close(self) -> None:
        self._prefetch_pool.shutdown(wait=False, cancel_futures=True)

    def tick(self, now: int) -> None:
        """Emit everything due at simulated time ``now``, then let the exchange catch up."""
        self.ticks += 1
        if self.hub.changed.is_set():
            self.hub.changed.clear()
            self._regroup(now)
        g = self._groups
        for (speed, levels), specs in g.depth.items():
            self._depth(now, speed, levels, specs)
        if g.trades:
            self._trades(now, g.trades)
        for spec in g.klines:
            self._kline(now, spec)
        for speed, specs in g.marks.items():
            self._marks(now, speed, specs)
        self.exchange.on_tick(now)
        self._prefetch(now)

    def _regroup(self, now: int) -> None:
        g = _Groups()
        depth: dict[tuple[int, int], list[StreamSpec]] = defaultdict(list)
        marks: dict[int, list[StreamSpec]] = defaultdict(list)
        for spec in self.hub.active():
            if spec.kind == "depth":
                depth[(spec.speed_ms, spec.levels)].append(spec)
            elif spec.kind == "aggTrade":
                g.trades.append(spec)
                self._trade_cursor.setdefault(spec.column, now)
            elif spec.kind == "kline":
                g.klines.append(spec)
                if spec.name not in self._klines:
                    self._klines[spec.name] = _KlineState(now - now % spec.interval_ms - spec.interval_ms)
            else:
                marks[spec.speed_ms].append(spec)
        g.depth = {k: sorted(v, key=lambda s: s.column) for k, v in depth.items()}
        g.marks = dict(marks)
        active = {s.name for s in g.klines}
        for name in [n for n in self._klines if n not in active]:
            del self._klines[name]
        trade_cols = {s.column for s in g.trades}
        for col in [c for c in self._trade_cursor if c not in trade_cols]:
            del self._trade_cursor[col]
        self._groups = g

    def _template(self, kind: str, ins: Instrument, levels: int = 0) -> str:
        key = (kind + ins.symbol, levels)
        tpl = self._templates.get(key)
        if tpl is None:
            tpl = (depth_template(ins, levels) if kind == "depth" else trade_template(ins) if kind == "trade"
                   else mark_template(ins))
            self._templates[key] = tpl
        return tpl

    # -- stream kinds -----------------------------------------------------------------------

    def _depth(self, now: int, speed: int, levels: int, specs: list[StreamSpec]) -> None:
        bucket = now // speed
        last = self._depth_last.get((speed, levels))
        if last is not None and bucket <= last[0]:
            return
        t = bucket * speed
        cols = np.fromiter((s.column for s in specs), dtype=np.int64, count=len(specs))
        books = self.exchange.books.compute(cols, t, levels=levels)
        u = books.update_id
        pu = last[1] if last is not None else u - 1
        rows = np.concatenate([np.stack([books.bid_px, books.bid_qty], axis=2).reshape(len(specs), -1),
                               np.stack([books.ask_px, books.ask_qty], axis=2).reshape(len(specs), -1)],
                              axis=1).tolist()
        instruments = self.source.instruments
        publish = self.hub.publish
        head = (t, t, pu + 1, u, pu)
        for spec, row in zip(specs, rows):
            tpl = self._template("depth", instruments[spec.column], levels)
            publish(spec.name, tpl % (*head, *row))
        self._depth_last[(speed, levels)] = (bucket, u)

    def _trades(self, now: int, specs: list[StreamSpec]) -> None:
        src = self.source
        tape = self.exchange.tape
        cursor_min = min(self._trade_cursor[s.column] for s in specs)
        first_bar = max(0, src.bar_at(cursor_min + 1))
        last_bar = src.bar_at(now)
        if src.n_bars is not None:
            last_bar = min(last_bar, src.n_bars - 1)
        pending: dict[int, list[str]] = {s.column: [] for s in specs}
        for bar in range(first_bar, last_bar + 1):
            bt = tape.bar_trades(bar)
            times = bt.times.tolist()
            for spec in specs:
                col = spec.column
                cursor = self._trade_cursor[col]
                if times[-1] <= cursor:
                    continue
                ins = src.instruments[col]
                tpl = self._template("trade", ins)
                prices = bt.prices[:, col].tolist()
                qty = bt.qty[:, col].tolist()
                maker = bt.buyer_is_maker[:, col].tolist()
                ids = bt.ids.tolist()
                out = pending[col]
                for j, ts in enumerate(times):
                    if cursor < ts <= now and qty[j] > 0:
                        out.append(tpl % (ts, ids[j], prices[j], qty[j], ids[j], ids[j], ts,
                                          "true" if maker[j] else "false"))
        for spec in specs:
            frames = pending[spec.column]
            if len(frames) > self.max_trades:
                self.dropped_trades += len(frames) - self.max_trades
                frames = frames[-self.max_trades:]
            for frame in frames:
                self.hub.publish(spec.name, frame)
            self._trade_cursor[spec.column] = now

    def _kline(self, now: int, spec: StreamSpec) -> None:
        st = self._klines[spec.name]
        iv = spec.interval_ms
        ins = self.source.instruments[spec.column]
        name = self._interval_names[iv]
        tape = self.exchange.tape
        open_ms = st.last_closed_open + iv
        while open_ms + iv <= now:
            row = tape.kline_at(spec.column, iv, open_ms, now)
            if row is None:
                break
            self.hub.publish(spec.name, kline_payload(ins, name, row, open_ms + iv))
            self.kline_closes += 1
            st.last_closed_open = open_ms
            open_ms += iv
        if now - st.last_forming >= FORMING_KLINE_MS:
            row = tape.kline_at(spec.column, iv, now - now % iv, now)
            if row is not None:
                self.hub.publish(spec.name, kline_payload(ins, name, row, now))
            st.last_forming = now

    def _marks(self, now: int, speed: int, specs: list[StreamSpec]) -> None:
        bucket = now // speed
        if self._mark_last.get(speed, -1) >= bucket:
            return
        self._mark_last[speed] = bucket
        t = bucket * speed
        prices = self.source.price_at(t).tolist()
        rates = self.source.funding_rates(t).tolist()
        nxt = self.source.next_funding_ms(t)
        for spec in specs:
            ins = self.source.instruments[spec.column]
            p = prices[spec.column]
            self.hub.publish(spec.name, self._template("mark", ins) % (t, p, p, p, rates[spec.column], nxt))

    # -- housekeeping -------------------------------------------------------------------------

    def _prefetch(self, now: int) -> None:
        """Generate the next hour's bars off the loop before the clock gets there."""
        src = self.source
        bar = src.bar_at(now)
        block = bar // src.block_bars
        if src.end_ms is not None and now >= src.end_ms:
            if not self._ended_logged:
                self._ended_logged = True
                log.warning("replay data ends at %d: the market now holds its last prices", src.end_ms)
            return
        if bar - block * src.block_bars >= src.block_bars // 2 and self._prefetched < block + 1:
            self._prefetched = block + 1
            self._prefetch_pool.submit(src.prefetch, (block + 1) * src.block_bars)

    def stats(self) -> dict[str, int]:
        return {"ticks": self.ticks, "lateTicks": self.late_ticks, "droppedTrades": self.dropped_trades,
                "klineCloses": self.kline_closes, "engineErrors": self.errors}
