"""The tape: aggTrades inside each bar, and klines of any interval built from them.

Each native bar prints S + 1 trades for a bar of S seconds: one at the open (the 1 s
path's first point), one at every whole second, and one a millisecond before the close
(the bar's close). Their quantities split the bar's volume exactly (seeded weights on the
volume grid), so a bar rebuilt from aggTrades — what DOLPHIN does on real Binance —
equals the kline: same open, high, low, close and volume.

The taker side of each trade is drawn with probability φ of being a taker buy, where φ
is the day's baseline taker-buy share (the synthetic market's ACB ``taker`` factor,
T/(1+T); 0.5 on replays) tilted by the bar's direction. The same flags sum into the
klines' taker-buy volume and ``/futures/data/takerlongshortRatio``, so every view of the
order flow agrees. Quote volumes use the bar's OHLC mean as its average price.

Everything is a pure function of (seed, symbol, bar): history and live streams agree.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from dolphin.market.sim import rand
from dolphin.market.sim.config import DAY_MS
from dolphin.market.sim.source import MarketSource

_MAX_SPLIT_ELEMENTS = 2_000_000


@dataclass(frozen=True, slots=True)
class KlineRow:
    """One candle as the exchange serves it (REST row or stream payload)."""

    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    taker_buy_volume: float
    taker_buy_quote: float
    first_trade_id: int
    last_trade_id: int
    closed: bool


@dataclass(frozen=True, slots=True)
class BarTrades:
    """The trades of one bar for every symbol: (S+1,) times and ids, (S+1, k) prices/qty/flags."""

    bar: int
    times: np.ndarray
    ids: np.ndarray
    prices: np.ndarray
    qty: np.ndarray
    buyer_is_maker: np.ndarray


class Tape:
    """Trades and klines of a `MarketSource`."""

    def __init__(self, seed: int, source: MarketSource) -> None:
        self.seed = int(seed)
        self.source = source
        self.s1 = source.bar_seconds + 1
        self.keys = np.array([i.key for i in source.instruments], dtype=np.int64)
        self.vol_scale = np.array([float(10**i.vol_decimals) for i in source.instruments])
        self._bars: OrderedDict[int, BarTrades] = OrderedDict()
        self._lock = threading.Lock()

    # -- the split of a bar's volume into trades ---------------------------------------

    def _split(self, cols: np.ndarray, bars: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
               v: np.ndarray, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Trade quantities (n, S+1, m) in volume units and taker-buy flags for bars × symbols."""
        j = np.arange(self.s1)[None, :, None]
        keys = self.keys[cols][None, None, :]
        b = bars[:, None, None]
        w = 0.5 + rand.uniform(self.seed, rand.TRADE, keys, b, j)
        units = np.rint(v * self.vol_scale[cols][None, :]).astype(np.int64)
        parts = np.floor(units[:, None, :] * (w / w.sum(axis=1, keepdims=True))).astype(np.int64)
        parts[:, -1, :] += units - parts.sum(axis=1)
        rng = np.where(h > lo, (c - o) / np.where(h > lo, h - lo, 1.0), 0.0)
        phi = np.clip(share[:, None] + 0.25 * rng, 0.05, 0.95)
        buy = rand.uniform(self.seed, rand.TRADE, keys, b, j + 1000) < phi[:, None, :]
        return parts, buy

    def _shares(self, bars: np.ndarray) -> np.ndarray:
        """The day's baseline taker-buy share for each bar."""
        src = self.source
        days = (bars * src.bar_ms) // DAY_MS
        unique, inverse = np.unique(days, return_inverse=True)
        per_day = np.array([src.taker_buy_share(src.first_ms + int(d) * DAY_MS) for d in unique.tolist()])
        return per_day[inverse]

    def bar_trades(self, bar: int) -> BarTrades:
        """All symbols' trades of native bar ``bar`` (cached: the live tape asks repeatedly)."""
        with self._lock:
            found = self._bars.get(bar)
            if found is not None:
                return found
        src = self.source
        block = src.bars(bar, 1)
        cols = np.arange(len(src.instruments))
        if block.n == 0:
            raise ValueError(f"bar {bar} is outside the source's data")
        share = self._shares(np.array([bar], dtype=np.int64))
        parts, buy = self._split(cols, np.array([bar]), block.open, block.high, block.low, block.close,
                                 block.volume, share)
        trades = BarTrades(bar, src.trade_times(bar), bar * self.s1 + np.arange(self.s1, dtype=np.int64),
                           src.path(bar), parts[0] / self.vol_scale[None, :], ~buy[0])
        with self._lock:
            self._bars[bar] = trades
            while len(self._bars) > 8:
                self._bars.popitem(last=False)
        return trades

    # -- klines --------------------------------------------------------------------------

    def klines(self, column: int, interval_ms: int, start_ms: int | None, end_ms: int | None, limit: int,
               now_ms: int) -> list[KlineRow]:
        """Binance's ``/klines`` semantics over simulated history, up to ``now_ms``.

        With ``start_ms`` the first ``limit`` candles opening at or after it; otherwise the
        last ``limit`` candles opening at or before ``end_ms`` (default: now). Candles open
        no later than ``now_ms``; the last may be forming (``closed`` False).
        """
        src = self.source
        iv = int(interval_ms)
        first_open = src.first_ms - src.first_ms % iv  # the first may be partial, like a new listing's
        last_open = now_ms - now_ms % iv
        if src.end_ms is not None:
            last_open = min(last_open, src.end_ms - iv)
        hi = last_open if end_ms is None else min(last_open, end_ms - end_ms % iv)
        if start_ms is not None:
            lo = max(first_open, -(-int(start_ms) // iv) * iv)
            opens = range(lo, min(hi, lo + (limit - 1) * iv) + 1, iv)
        else:
            lo = max(first_open, hi - (limit - 1) * iv)
            opens = range(lo, hi + 1, iv)
        if len(opens) == 0:
            return []
        return self._aggregate(column, iv, opens.start, len(opens), now_ms)

    def _aggregate(self, column: int, iv: int, first_open: int, count: int, now_ms: int) -> list[KlineRow]:
        src = self.source
        per = iv // src.bar_ms
        b0 = src.bar_at(first_open)
        skip = max(0, -b0)  # bars of the first interval before the data starts
        n_bars = per * count
        block = src.bars(b0, n_bars)
        col = np.array([column])
        o, h, lo, c, v = (getattr(block, f)[:, column] for f in ("open", "high", "low", "close", "volume"))
        n = block.n
        bars = max(0, b0) + np.arange(n, dtype=np.int64)
        units = np.empty((n, self.s1), dtype=np.int64)
        buys = np.empty((n, self.s1), dtype=bool)
        chunk = max(1, _MAX_SPLIT_ELEMENTS // self.s1)
        share = self._shares(bars)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            p, bflag = self._split(col, bars[s:e], o[s:e, None], h[s:e, None], lo[s:e, None], c[s:e, None],
                                   v[s:e, None], share[s:e])
            units[s:e] = p[:, :, 0]
            buys[s:e] = bflag[:, :, 0]
        scale = self.vol_scale[column]
        avg = (o + h + lo + c) / 4.0
        # The forming native bar (if any): only its trades printed so far count.
        cur = src.bar_at(now_ms)
        partial_close = None
        if max(0, b0) <= cur < max(0, b0) + n:
            i = cur - max(0, b0)
            k = src.trade_index(now_ms - src.bar_open_ms(cur))
            path = src.path(cur)[:, column]
            units[i, k + 1:] = 0
            partial_close = (i, float(path[0]), float(path[: k + 1].max()), float(path[: k + 1].min()),
                             float(path[k]), k)
        vol_units = units.sum(axis=1)
        buy_units = np.where(buys, units, 0).sum(axis=1)
        n_trades = (units > 0).sum(axis=1)
        rows: list[KlineRow] = []
        for g in range(count):
            lo_i, hi_i = max(0, g * per - skip), min((g + 1) * per - skip, n)
            if lo_i >= n:
                break
            if hi_i <= lo_i:
                continue
            last_i = hi_i - 1
            closed = True
            gh, gl = float(h[lo_i:hi_i].max()), float(lo[lo_i:hi_i].min())
            gc = float(c[last_i])
            if partial_close is not None and lo_i <= partial_close[0] <= last_i:
                pi, _, ph, pl, pc, k = partial_close
                last_i = pi
                closed = False
                gh = max(float(h[lo_i:pi].max()), ph) if pi > lo_i else ph
                gl = min(float(lo[lo_i:pi].min()), pl) if pi > lo_i else pl
                gc = pc
                last_id = int(bars[pi]) * self.s1 + k
            else:
                last_id = int(bars[last_i]) * self.s1 + self.s1 - 1
            sel = slice(lo_i, last_i + 1)
            vol = int(vol_units[sel].sum()) / scale
            buy = int(buy_units[sel].sum()) / scale
            quote = float((vol_units[sel] / scale * avg[sel]).sum())
            buy_quote = float((buy_units[sel] / scale * avg[sel]).sum())
            open_t = first_open + g * iv
            rows.append(KlineRow(open_t, open_t + iv - 1, float(o[lo_i]), gh, gl, gc, vol, quote,
                                 int(n_trades[sel].sum()), buy, buy_quote, int(bars[lo_i]) * self.s1, last_id,
                                 closed and open_t + iv <= now_ms))
        return rows

    def kline_at(self, column: int, interval_ms: int, open_ms: int, now_ms: int) -> KlineRow | None:
        """The candle opening at ``open_ms`` as of ``now_ms`` (forming if not yet closed)."""
        rows = self._aggregate(column, int(interval_ms), int(open_ms), 1, now_ms)
        return rows[0] if rows else None

    def taker_volumes(self, column: int, period_ms: int, start_ms: int, count: int,
                      now_ms: int) -> list[tuple[int, float, float]]:
        """(period start, taker buy volume, taker sell volume) of ``count`` closed periods."""
        rows = self._aggregate(column, period_ms, start_ms, count, now_ms)
        return [(r.open_time, r.taker_buy_volume, r.volume - r.taker_buy_volume) for r in rows if r.closed]
