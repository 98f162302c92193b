"""The emission loop: every wall tick, advance simulated time and publish what happened.

One task, one tick every ``tick_ms`` of wall time (100 ms by default). Each tick reads
the simulator clock once and, for the streams that have subscribers:

* **depth** (partial book, per update speed and level count): one frame per stream with
  the book at the latest bucket boundary reached — when ``--speed`` makes several buckets
  pass in one tick, the intermediate frames are skipped (a book is a snapshot; only the
  latest matters). All subscribed symbols' books are computed in one vectorised call.
* **diff depth** (``@depth``): per update speed, one ``depthUpdate`` per symbol carrying
  every price level that changed in any 100 ms bucket since the last event, with its
  quantity now (0 = removed). ``U``/``u`` are the first/last bucket covered and ``pu``
  the previous event's ``u``, so a local book kept from the stream equals the REST
  snapshot (``lastUpdateId`` = bucket) — Binance's documented procedure works unchanged.
  Long windows (a first event, a starved loop, high ``--speed``) carry every price seen
  in the window at its quantity now; only a window of minutes breaks the chain.
* **kline / continuousKline**: every candle that closed since the last tick, in order, as
  a final ``"x": true`` message — closes are never skipped — then at most one update of
  the forming candle (no more often than every 250 ms of simulated time).
* **aggTrade / trade**: every trade printed since the last tick, in order (capped at
  ``max_trades_per_tick`` per stream: beyond that the oldest are dropped and counted,
  which only happens at extreme speeds).
* **bookTicker**: each 100 ms bucket whose best bid/ask (price or size) changed.
* **ticker / miniTicker**: rolling 24 h statistics every 500 ms (arrays every 1 s).
* **markPrice**: one update per 1 s / 3 s boundary reached (``!markPrice@arr``: all symbols).
* **forceOrder**: per symbol and second at most one liquidation: the market's own during
  cascades (the steeper the cascade, the likelier), and our account's.

Then the exchange settles funding, fills, triggers and liquidations at the same time.
Payloads are formatted once per stream from precompiled %-templates (numbers straight
from numpy rows) and handed to the hub, which encodes once and broadcasts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from dolphin.market.sim import rand
from dolphin.market.sim.books import BUCKET_MS, MAX_LEVELS
from dolphin.market.sim.exchange import Exchange
from dolphin.market.sim.market_data import DayStats
from dolphin.market.sim.source import Instrument
from dolphin.market.sim.tape import KlineRow
from dolphin.market.sim.ws_server import StreamHub, StreamSpec

log = logging.getLogger("dolphin.market.sim")

FORMING_KLINE_MS = 250
MAX_DIFF_BUCKETS = 20
MAX_WINDOW_BUCKETS = 3000


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


def raw_trade_template(ins: Instrument) -> str:
    """%-template of a trade payload: E, T, t, price, qty, m."""
    return ('{"e":"trade","E":%d,"T":%d,"s":"' + ins.symbol + f'","t":%d,"p":"%.{ins.price_decimals}f",'
            f'"q":"%.{ins.vol_decimals}f","X":"MARKET","m":%s}}')


def mark_template(ins: Instrument) -> str:
    """%-template of a markPriceUpdate payload: E, p, i, P, r, T."""
    return '{"e":"markPriceUpdate","E":%d,"s":"' + ins.symbol + '","p":"%.8f","i":"%.8f","P":"%.8f","r":"%.8f","T":%d}'


def book_ticker_template(ins: Instrument) -> str:
    """%-template of a bookTicker payload: u, E, T, b, B, a, A."""
    d, qd = ins.price_decimals, max(0, ins.qty_decimals)
    return ('{"e":"bookTicker","u":%d,"E":%d,"T":%d,"s":"' + ins.symbol
            + f'","b":"%.{d}f","B":"%.{qd}f","a":"%.{d}f","A":"%.{qd}f"}}')


def kline_payload(ins: Instrument, interval: str, row: KlineRow, event_ms: int) -> str:
    d, vd = ins.price_decimals, ins.vol_decimals
    return (f'{{"e":"kline","E":{event_ms},"s":"{ins.symbol}","k":{{"t":{row.open_time},"T":{row.close_time},'
            f'"s":"{ins.symbol}","i":"{interval}","f":{row.first_trade_id},"L":{row.last_trade_id},'
            f'"o":"{row.open:.{d}f}","c":"{row.close:.{d}f}","h":"{row.high:.{d}f}","l":"{row.low:.{d}f}",'
            f'"v":"{row.volume:.{vd}f}","n":{row.trades},"x":{"true" if row.closed else "false"},'
            f'"q":"{row.quote_volume:.8f}","V":"{row.taker_buy_volume:.{vd}f}","Q":"{row.taker_buy_quote:.8f}",'
            '"B":"0"}}')


def continuous_kline_payload(ins: Instrument, interval: str, row: KlineRow, event_ms: int) -> str:
    d, vd = ins.price_decimals, ins.vol_decimals
    return (f'{{"e":"continuous_kline","E":{event_ms},"ps":"{ins.symbol}","ct":"PERPETUAL","k":{{'
            f'"t":{row.open_time},"T":{row.close_time},"i":"{interval}","f":{row.first_trade_id},'
            f'"L":{row.last_trade_id},"o":"{row.open:.{d}f}","c":"{row.close:.{d}f}","h":"{row.high:.{d}f}",'
            f'"l":"{row.low:.{d}f}","v":"{row.volume:.{vd}f}","n":{row.trades},'
            f'"x":{"true" if row.closed else "false"},"q":"{row.quote_volume:.8f}",'
            f'"V":"{row.taker_buy_volume:.{vd}f}","Q":"{row.taker_buy_quote:.8f}","B":"0"}}}}')


def ticker_payload(ins: Instrument, st: DayStats, mini: bool) -> str:
    c = ins.column
    d, vd = ins.price_decimals, ins.vol_decimals
    o, last = float(st.open[c]), float(st.close[c])
    vol, quote = float(st.volume[c]), float(st.quote[c])
    head = f'"E":{st.t_ms},"s":"{ins.symbol}"'
    prices = (f'"o":"{o:.{d}f}","h":"{float(st.high[c]):.{d}f}","l":"{float(st.low[c]):.{d}f}",'
              f'"v":"{vol:.{vd}f}","q":"{quote:.2f}"')
    if mini:
        return f'{{"e":"24hrMiniTicker",{head},"c":"{last:.{d}f}",{prices}}}'
    change = last - o
    return (f'{{"e":"24hrTicker",{head},"p":"{change:.{d}f}","P":"{(change / o * 100 if o else 0.0):.3f}",'
            f'"w":"{(quote / vol if vol else last):.{d}f}","c":"{last:.{d}f}",'
            f'"Q":"{float(st.last_qty[c]):.{vd}f}",{prices},"O":{st.open_time},"C":{st.t_ms},'
            f'"F":{st.first_id},"L":{st.last_id},"n":{max(0, st.last_id - st.first_id + 1)}}}')


def force_order_payload(ins: Instrument, side: str, qty: float, price: float, avg: float, t: int) -> str:
    d, qd = ins.price_decimals, max(0, ins.qty_decimals)
    return (f'{{"e":"forceOrder","E":{t},"o":{{"s":"{ins.symbol}","S":"{side}","o":"LIMIT","f":"IOC",'
            f'"q":"{qty:.{qd}f}","p":"{price:.{d}f}","ap":"{avg:.{d}f}","X":"FILLED","l":"{qty:.{qd}f}",'
            f'"z":"{qty:.{qd}f}","T":{t}}}}}')


@dataclass(slots=True)
class _KlineState:
    last_closed_open: int
    last_forming: int = -(10**18)


@dataclass(slots=True)
class _Groups:
    """Active streams grouped the way the tick computes them."""

    depth: dict[tuple[int, int], list[StreamSpec]] = field(default_factory=dict)
    diff: dict[int, list[StreamSpec]] = field(default_factory=dict)
    trades: list[StreamSpec] = field(default_factory=list)
    raw_trades: list[StreamSpec] = field(default_factory=list)
    klines: list[StreamSpec] = field(default_factory=list)
    marks: dict[int, list[StreamSpec]] = field(default_factory=dict)
    mark_arrays: dict[int, list[StreamSpec]] = field(default_factory=dict)
    book_tickers: list[StreamSpec] = field(default_factory=list)
    book_all: list[StreamSpec] = field(default_factory=list)
    tickers: list[StreamSpec] = field(default_factory=list)
    ticker_arrays: list[StreamSpec] = field(default_factory=list)
    force: list[StreamSpec] = field(default_factory=list)
    force_all: list[StreamSpec] = field(default_factory=list)


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
        self._diff_sym_last: dict[tuple[int, int], int] = {}
        self._diff_period: dict[int, int] = {}
        self._diff_books: dict[tuple[int, int], tuple[_Side, _Side]] = {}
        self._mark_last: dict[tuple[str, int], int] = {}
        self._trade_cursor: dict[tuple[str, int], int] = {}
        self._klines: dict[str, _KlineState] = {}
        self._templates: dict[tuple[str, int], str] = {}
        self._book_last: dict[int, tuple[float, ...]] = {}
        self._book_bucket = -1
        self._ticker_last: dict[tuple[str, int], int] = {}
        self._force_second = -1
        self._interval_names = {ms: name for name, ms in exchange.intervals.items()}
        self._prefetch_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dolphin-sim-prefetch")
        self._prefetched = -1
        self._ticker_warming = False
        self._ended_logged = False
        self._last_drop = time.monotonic()
        self.ticks = 0
        self.late_ticks = 0
        self.dropped_trades = 0
        self.kline_closes = 0
        self.diff_gaps = 0
        self.liquidations = 0
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
        for speed, specs in g.diff.items():
            self._diff_depth(now, speed, specs)
        if g.book_tickers or g.book_all:
            self._book_tickers(now)
        if g.trades:
            self._trades(now, g.trades, "aggTrade")
        if g.raw_trades:
            self._trades(now, g.raw_trades, "trade")
        for spec in g.klines:
            self._kline(now, spec)
        for speed, specs in g.marks.items():
            self._marks(now, speed, specs)
        for speed, specs in g.mark_arrays.items():
            self._mark_array(now, speed, specs)
        if g.tickers or g.ticker_arrays:
            self._tickers(now)
        self.exchange.on_tick(now)
        if g.force or g.force_all or self.exchange.liquidations:
            self._force_orders(now)
        self._ws_drop_fault()
        self._prefetch(now)

    def _regroup(self, now: int) -> None:
        g = _Groups()
        depth: dict[tuple[int, int], list[StreamSpec]] = defaultdict(list)
        diff: dict[int, list[StreamSpec]] = defaultdict(list)
        marks: dict[int, list[StreamSpec]] = defaultdict(list)
        mark_arrays: dict[int, list[StreamSpec]] = defaultdict(list)
        simple = {"aggTrade": g.trades, "trade": g.raw_trades, "kline": g.klines, "continuousKline": g.klines,
                  "bookTicker": g.book_tickers, "bookTickerAll": g.book_all, "ticker": g.tickers,
                  "miniTicker": g.tickers, "tickerArr": g.ticker_arrays, "miniTickerArr": g.ticker_arrays,
                  "forceOrder": g.force, "forceOrderAll": g.force_all}
        for spec in self.hub.active():
            if spec.kind == "depth":
                depth[(spec.speed_ms, spec.levels)].append(spec)
            elif spec.kind == "diffDepth":
                diff[spec.speed_ms].append(spec)
            elif spec.kind == "markPrice":
                marks[spec.speed_ms].append(spec)
            elif spec.kind == "markPriceArr":
                mark_arrays[spec.speed_ms].append(spec)
            else:
                simple[spec.kind].append(spec)
            if spec.kind in ("aggTrade", "trade"):
                self._trade_cursor.setdefault((spec.kind, spec.column), now)
            if spec.kind in ("kline", "continuousKline") and spec.name not in self._klines:
                self._klines[spec.name] = _KlineState(now - now % spec.interval_ms - spec.interval_ms)
        g.depth = {k: sorted(v, key=lambda s: s.column) for k, v in depth.items()}
        g.diff = {k: sorted(v, key=lambda s: s.column) for k, v in diff.items()}
        g.marks = dict(marks)
        g.mark_arrays = dict(mark_arrays)
        active = {s.name for s in g.klines}
        for name in [n for n in self._klines if n not in active]:
            del self._klines[name]
        wanted = {(s.kind, s.column) for s in g.trades + g.raw_trades}
        for key in [k for k in self._trade_cursor if k not in wanted]:
            del self._trade_cursor[key]
        live_diff = {(s.speed_ms, s.column) for specs in g.diff.values() for s in specs}
        for book_key in [k for k in self._diff_books if k not in live_diff]:
            del self._diff_books[book_key]
        for book_key in [k for k in self._diff_sym_last if k not in live_diff]:
            del self._diff_sym_last[book_key]
        for speed in [sp for sp in self._diff_period if sp not in g.diff]:
            del self._diff_period[speed]
        self._groups = g

    def _template(self, kind: str, ins: Instrument, levels: int = 0) -> str:
        key = (kind + ins.symbol, levels)
        tpl = self._templates.get(key)
        if tpl is None:
            make = {"depth": lambda: depth_template(ins, levels), "aggTrade": lambda: trade_template(ins),
                    "trade": lambda: raw_trade_template(ins), "mark": lambda: mark_template(ins),
                    "bookTicker": lambda: book_ticker_template(ins)}[kind]
            tpl = make()
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

    def _diff_depth(self, now: int, speed: int, specs: list[StreamSpec]) -> None:
        """One diff event per symbol: every level that changed in the buckets since its last event.

        A short window (≤ 20 buckets, the steady state up to speed ~20) is diffed bucket by
        bucket: the event holds exactly the levels that changed. A longer one — a symbol's
        first event, which reaches `_fresh_buckets` back so that a REST snapshot a client
        took just before it is still bracketed (``U ≤ lastUpdateId ≤ u``), or a catch-up
        after the loop was starved — sets every price any book in the window had (cheap:
        prices only) to its quantity now. Either way the chain never breaks and a local
        book equals the snapshot at every update id, as on the live venue. Only a window
        longer than `MAX_WINDOW_BUCKETS` (minutes of stall) breaks the chain.
        """
        period = now // speed
        if self._diff_period.get(speed, -1) >= period:
            return
        self._diff_period[speed] = period
        bucket = now // BUCKET_MS
        books = self.exchange.books
        groups: dict[tuple[int, bool], list[int]] = defaultdict(list)
        for i, spec in enumerate(specs):
            last = self._diff_sym_last.get((speed, spec.column))
            if last is not None and last >= bucket:
                continue
            if last is None or bucket - last > MAX_WINDOW_BUCKETS:
                if last is not None:
                    self.diff_gaps += 1
                groups[(bucket - self._fresh_buckets() + 1, False)].append(i)
            else:
                groups[(last + 1, bucket - last <= MAX_DIFF_BUCKETS)].append(i)
        t = bucket * BUCKET_MS
        for (start, exact), members in groups.items():
            cols = np.array([specs[i].column for i in members], dtype=np.int64)
            chained = [(speed, int(c)) in self._diff_books and start == self._diff_sym_last[(speed, int(c))] + 1
                       for c in cols]
            final = books.compute(cols, t, levels=MAX_LEVELS)
            now_sides = [(_side(final.bid_ticks[n], final.bid_qty[n]), _side(final.ask_ticks[n], final.ask_qty[n]))
                         for n in range(len(cols))]
            per_symbol: list[list[list[np.ndarray]]] = [[[], []] for _ in cols]
            if exact and all(chained):
                previous = [self._diff_books[(speed, int(c))] for c in cols]
                for b in range(start, bucket + 1):
                    book = final if b == bucket else books.compute(cols, b * BUCKET_MS, levels=MAX_LEVELS)
                    for n in range(len(cols)):
                        cur = (_side(book.bid_ticks[n], book.bid_qty[n]), _side(book.ask_ticks[n], book.ask_qty[n]))
                        for side in (0, 1):
                            per_symbol[n][side].append(_changed(previous[n][side], cur[side]))
                        previous[n] = cur
            else:
                for b in range(start - 1, bucket + 1):
                    bids, asks = books.prices(cols, b * BUCKET_MS)
                    for n in range(len(cols)):
                        per_symbol[n][0].append(bids[n][bids[n] > 0])
                        per_symbol[n][1].append(asks[n])
                for n, c in enumerate(cols):
                    if chained[n]:
                        state = self._diff_books[(speed, int(c))]
                        per_symbol[n][0].append(state[0][0])
                        per_symbol[n][1].append(state[1][0])
            instruments = self.source.instruments
            for n, i in enumerate(members):
                spec = specs[i]
                ins = instruments[spec.column]
                scale = 10.0 ** ins.price_decimals
                d, qd = ins.price_decimals, max(0, ins.qty_decimals)
                text = []
                for side in (0, 1):
                    parts = per_symbol[n][side]
                    ticks = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
                    qty = _qty_at(now_sides[n][side], ticks)
                    order = slice(None, None, -1) if side == 0 else slice(None)
                    text.append(",".join(f'["{k / scale:.{d}f}","{q:.{qd}f}"]'
                                         for k, q in zip(ticks[order].tolist(), qty[order].tolist())))
                pu = start - 1  # = the previous u when chained; past it when the chain broke (resync)
                self.hub.publish(spec.name, f'{{"e":"depthUpdate","E":{t},"T":{t},"s":"{ins.symbol}","U":{start},'
                                            f'"u":{bucket},"pu":{pu},"b":[{text[0]}],"a":[{text[1]}]}}')
                self._diff_books[(speed, spec.column)] = now_sides[n]
                self._diff_sym_last[(speed, spec.column)] = bucket

    def _fresh_buckets(self) -> int:
        """How far back a symbol's first diff event reaches: ~3 s of wall time, 10 s to 5 min of market time."""
        return int(min(MAX_WINDOW_BUCKETS, max(100, 30 * self.exchange.clock.speed)))

    def _book_tickers(self, now: int) -> None:
        bucket = now // BUCKET_MS
        if bucket <= self._book_bucket:
            return
        self._book_bucket = bucket
        g = self._groups
        src = self.source
        everyone = bool(g.book_all)
        cols = (np.arange(len(src.instruments)) if everyone
                else np.fromiter(sorted({s.column for s in g.book_tickers}), dtype=np.int64))
        book = self.exchange.books.compute(cols, bucket * BUCKET_MS, levels=1)
        rows = np.stack([book.bid_px[:, 0], book.bid_qty[:, 0], book.ask_px[:, 0], book.ask_qty[:, 0]], axis=1)
        t = bucket * BUCKET_MS
        names = defaultdict(list)
        for spec in g.book_tickers:
            names[spec.column].append(spec.name)
        all_names = [s.name for s in g.book_all]
        for col, row in zip(cols.tolist(), rows.tolist()):
            key = tuple(row)
            if self._book_last.get(col) == key:
                continue
            self._book_last[col] = key
            payload = self._template("bookTicker", src.instruments[col]) % (bucket, t, t, *row)
            for name in names.get(col, ()):
                self.hub.publish(name, payload)
            for name in all_names:
                self.hub.publish(name, payload)

    def _trades(self, now: int, specs: list[StreamSpec], kind: str) -> None:
        src = self.source
        tape = self.exchange.tape
        cursor_min = min(self._trade_cursor[(kind, s.column)] for s in specs)
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
                cursor = self._trade_cursor[(kind, col)]
                if times[-1] <= cursor:
                    continue
                ins = src.instruments[col]
                tpl = self._template(kind, ins)
                prices = bt.prices[:, col].tolist()
                qty = bt.qty[:, col].tolist()
                maker = bt.buyer_is_maker[:, col].tolist()
                ids = bt.ids.tolist()
                out = pending[col]
                for j, ts in enumerate(times):
                    if cursor < ts <= now and qty[j] > 0:
                        flag = "true" if maker[j] else "false"
                        if kind == "aggTrade":
                            out.append(tpl % (ts, ids[j], prices[j], qty[j], ids[j], ids[j], ts, flag))
                        else:
                            out.append(tpl % (ts, ts, ids[j], prices[j], qty[j], flag))
        for spec in specs:
            frames = pending[spec.column]
            if len(frames) > self.max_trades:
                self.dropped_trades += len(frames) - self.max_trades
                frames = frames[-self.max_trades:]
            for frame in frames:
                self.hub.publish(spec.name, frame)
            self._trade_cursor[(kind, spec.column)] = now

    def _kline(self, now: int, spec: StreamSpec) -> None:
        st = self._klines[spec.name]
        iv = spec.interval_ms
        ins = self.source.instruments[spec.column]
        name = self._interval_names[iv]
        make = continuous_kline_payload if spec.kind == "continuousKline" else kline_payload
        tape = self.exchange.tape
        open_ms = st.last_closed_open + iv
        while open_ms + iv <= now:
            row = tape.kline_at(spec.column, iv, open_ms, now)
            if row is None:
                break
            self.hub.publish(spec.name, make(ins, name, row, open_ms + iv))
            self.kline_closes += 1
            st.last_closed_open = open_ms
            open_ms += iv
        if now - st.last_forming >= FORMING_KLINE_MS:
            row = tape.kline_at(spec.column, iv, now - now % iv, now)
            if row is not None:
                self.hub.publish(spec.name, make(ins, name, row, now))
            st.last_forming = now

    def _due(self, key: tuple[str, int], now: int, period: int) -> int | None:
        """The period boundary reached at ``now`` if it is new for ``key``, else None."""
        bucket = now // period
        if self._mark_last.get(key, -1) >= bucket:
            return None
        self._mark_last[key] = bucket
        return bucket * period

    def _marks(self, now: int, speed: int, specs: list[StreamSpec]) -> None:
        t = self._due(("mark", speed), now, speed)
        if t is None:
            return
        prices = self.source.price_at(t).tolist()
        rates = self.source.funding_rates(t).tolist()
        nxt = self.source.next_funding_ms(t)
        for spec in specs:
            ins = self.source.instruments[spec.column]
            p = prices[spec.column]
            self.hub.publish(spec.name, self._template("mark", ins) % (t, p, p, p, rates[spec.column], nxt))

    def _mark_array(self, now: int, speed: int, specs: list[StreamSpec]) -> None:
        t = self._due(("markArr", speed), now, speed)
        if t is None:
            return
        prices = self.source.price_at(t).tolist()
        rates = self.source.funding_rates(t).tolist()
        nxt = self.source.next_funding_ms(t)
        payload = "[" + ",".join(self._template("mark", ins) % (t, prices[ins.column], prices[ins.column],
                                                                 prices[ins.column], rates[ins.column], nxt)
                                 for ins in self.source.instruments) + "]"
        for spec in specs:
            self.hub.publish(spec.name, payload)

    def _tickers(self, now: int) -> None:
        g = self._groups
        stats = self.exchange.market_data.tickers
        due_single = self._due(("ticker", 500), now, 500) if g.tickers else None
        due_array = self._due(("tickerArr", 1000), now, 1000) if g.ticker_arrays else None
        if due_single is None and due_array is None:
            return
        if not stats.ready(now):
            if not self._ticker_warming:
                self._ticker_warming = True
                future = self._prefetch_pool.submit(stats.warm, now)
                future.add_done_callback(lambda _: setattr(self, "_ticker_warming", False))
            return
        st = stats.stats(now)
        instruments = self.source.instruments
        if due_single is not None:
            for spec in g.tickers:
                self.hub.publish(spec.name, ticker_payload(instruments[spec.column], st, spec.kind == "miniTicker"))
        if due_array is not None:
            for spec in g.ticker_arrays:
                mini = spec.kind == "miniTickerArr"
                self.hub.publish(spec.name, "[" + ",".join(ticker_payload(i, st, mini) for i in instruments) + "]")

    def _force_orders(self, now: int) -> None:
        """At most one liquidation per symbol per second: the market's in cascades, and our account's."""
        second = now // 1000
        ex = self.exchange
        g = self._groups
        own: dict[int, str] = {}
        while ex.liquidations:
            ins, side, qty, avg, t = ex.liquidations.popleft()
            own[ins.column] = force_order_payload(ins, side, qty, avg, avg, t)
        if second <= self._force_second and not own:
            return
        payloads = dict(own)
        if second > self._force_second:
            self._force_second = second
            src = self.source
            cols = (np.arange(len(src.instruments)) if g.force_all
                    else np.fromiter(sorted({s.column for s in g.force}), dtype=np.int64))
            if cols.size:
                cascade = ex.books.cascade(cols, second * 1000)
                hot = np.flatnonzero(np.abs(cascade) > 0.2)
                if hot.size:
                    keys = ex.books.keys[cols[hot]]
                    u = rand.uniform(ex.config.seed, rand.LIQUIDATION, keys[:, None], second, np.arange(2)[None, :])
                    prices = src.price_at(second * 1000)
                    for n, idx in enumerate(hot.tolist()):
                        col = int(cols[idx])
                        if col in payloads or u[n, 0] >= abs(float(cascade[idx])):
                            continue
                        ins = src.instruments[col]
                        price = float(prices[col])
                        side = "SELL" if cascade[idx] < 0 else "BUY"
                        qty = max(ins.step, round((ins.depth_usd * 0.02 * (0.2 + float(u[n, 1])) / price)
                                                  / ins.step) * ins.step)
                        worst = price * (0.995 if side == "SELL" else 1.005)
                        payloads[col] = force_order_payload(ins, side, qty, worst, price, second * 1000)
                        self.liquidations += 1
        names = defaultdict(list)
        for spec in g.force:
            names[spec.column].append(spec.name)
        for col, payload in payloads.items():
            for name in names.get(col, ()):
                self.hub.publish(name, payload)
            for spec in g.force_all:
                self.hub.publish(spec.name, payload)

    # -- housekeeping -------------------------------------------------------------------------

    def _ws_drop_fault(self) -> None:
        every = self.exchange.faults.setting("ws_drop", "every_ms")
        if not every:
            return
        mono = time.monotonic()
        if (mono - self._last_drop) * 1000 >= every:
            self._last_drop = mono
            rule = self.exchange.faults.standing("ws_drop")
            dropped = self.hub.kill(None, rule.target if rule is not None else "all")
            self.exchange.faults.note("ws_drop")
            log.info("fault: dropped %d WebSocket connection(s)", dropped)

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
                "klineCloses": self.kline_closes, "diffDepthGaps": self.diff_gaps,
                "marketLiquidations": self.liquidations, "engineErrors": self.errors}


_Side = tuple[np.ndarray, np.ndarray]
"""One side of a book: price ticks (ascending) and their quantities, levels of zero quantity left out."""


def _side(ticks: np.ndarray, qty: np.ndarray) -> _Side:
    keep = qty > 0
    order = np.argsort(ticks[keep], kind="stable")
    return ticks[keep][order], qty[keep][order]


def _changed(old: _Side, new: _Side) -> np.ndarray:
    """Prices whose quantity differs between two sides (appeared, vanished or changed)."""
    prices = np.union1d(old[0], new[0])
    before = np.zeros(prices.size)
    after = np.zeros(prices.size)
    before[np.searchsorted(prices, old[0])] = old[1]
    after[np.searchsorted(prices, new[0])] = new[1]
    return prices[before != after]


def _qty_at(side: _Side, ticks: np.ndarray) -> np.ndarray:
    """Quantity of ``side`` at each price of ``ticks`` (0 where it has no level)."""
    if side[0].size == 0 or ticks.size == 0:
        return np.zeros(ticks.size)
    idx = np.minimum(np.searchsorted(side[0], ticks), side[0].size - 1)
    return np.where(side[0][idx] == ticks, side[1][idx], 0.0)
