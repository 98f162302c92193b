"""Tickers and trade history: ``ticker/24hr``, ``ticker/price``, ``ticker/bookTicker``, ``aggTrades``,
``trades``, ``historicalTrades`` — and the rolling 24 h statistics the ticker streams share.

Everything derives from the tape (`dolphin.market.sim.tape`) and the books, so a ticker
agrees with the klines and trades a client can fetch: the 24 h window is every native bar
opening in the last 24 hours plus the forming bar up to now; its volume is the klines'
volume, its trade ids the aggTrades' ids (``count`` = ``lastId − firstId + 1``: the
simulator's trade ids are contiguous, and a trade of zero quantity is never printed).

Per-hour partial sums are cached once an hour is over, so a 24 h ticker costs two partial
hours of arithmetic, whatever the number of symbols.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dolphin.market.sim.source import Instrument
from dolphin.market.sim.wire import Params, err, fnum, int_param, limit_param

if TYPE_CHECKING:
    from dolphin.market.sim.exchange import Exchange

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class DayStats:
    """Rolling 24 h statistics of every served symbol at ``t_ms`` (arrays in column order)."""

    t_ms: int
    open_time: int
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote: np.ndarray
    last_qty: np.ndarray
    first_id: int
    last_id: int


@dataclass(frozen=True, slots=True)
class _Partial:
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote: np.ndarray


class TickerStats:
    """Computes `DayStats` from the source's bars, caching finished hours."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.source = ex.source
        self._blocks: OrderedDict[int, _Partial] = OrderedDict()
        self._lock = threading.Lock()

    def _range(self, b0: int, b1: int) -> _Partial | None:
        """Aggregate of closed bars [b0, b1) (None if empty)."""
        if b1 <= b0:
            return None
        block = self.source.bars(b0, b1 - b0)
        if block.n == 0:
            return None
        avg = (block.open + block.high + block.low + block.close) / 4.0
        return _Partial(block.open[0].copy(), block.high.max(axis=0), block.low.min(axis=0), block.close[-1].copy(),
                        block.volume.sum(axis=0), (block.volume * avg).sum(axis=0))

    def _block(self, index: int) -> _Partial | None:
        with self._lock:
            found = self._blocks.get(index)
        if found is not None:
            return found
        per = self.source.block_bars
        part = self._range(index * per, (index + 1) * per)
        if part is not None:
            with self._lock:
                self._blocks[index] = part
                while len(self._blocks) > 256:
                    self._blocks.popitem(last=False)
        return part

    def ready(self, now: int) -> bool:
        """Whether `stats` at ``now`` needs no bar generation (the emission loop must never wait)."""
        first, current, _ = self._bars(now)
        per = self.source.block_bars
        with self._lock:
            missing = any(b not in self._blocks for b in range(-(-first // per), current // per))
        return not missing and self.source.has_block(first // per) and self.source.has_block(current // per)

    def warm(self, now: int) -> None:
        """Compute what `stats` at ``now`` needs (off the event loop)."""
        first, current, _ = self._bars(now)
        per = self.source.block_bars
        for b in range(-(-first // per), current // per):
            self._block(b)
        self.source.prefetch(first)
        self.source.prefetch(current)

    def _bars(self, now: int) -> tuple[int, int, bool]:
        """(first bar of the window, the forming bar, whether the forming bar is still forming)."""
        src = self.source
        first = max(0, src.bar_at(now - DAY_MS) + 1)
        current = src.bar_at(now)
        forming = True
        if src.n_bars is not None and current >= src.n_bars:
            current, forming = src.n_bars, False
        return first, max(first, current), forming

    def stats(self, now: int) -> DayStats:
        src = self.source
        first, current, forming = self._bars(now)
        per = src.block_bars
        parts: list[_Partial | None] = []
        head_end = min(current, -(-first // per) * per)
        parts.append(self._range(first, head_end))
        b = head_end
        while b + per <= current:
            parts.append(self._block(b // per))
            b += per
        parts.append(self._range(b, current))
        tape = self.ex.tape
        last_id = current * tape.s1 - 1
        k_last = np.zeros(len(src.instruments))
        if forming and current >= 0:
            k = src.trade_index(now - src.bar_open_ms(current))
            path = src.path(current)[: k + 1]
            trades = tape.bar_trades(current)
            vol = trades.qty[: k + 1].sum(axis=0)
            bar = src.bars(current, 1)
            avg = ((bar.open + bar.high + bar.low + bar.close) / 4.0)[0] if bar.n else path[-1]
            parts.append(_Partial(path[0].copy(), path.max(axis=0), path.min(axis=0), path[-1].copy(), vol,
                                  vol * avg))
            last_id = current * tape.s1 + k
            k_last = trades.qty[k]
        elif current > 0:
            k_last = tape.bar_trades(current - 1).qty[-1]
        live = [p for p in parts if p is not None]
        if not live:
            price = src.price_at(now)
            zero = np.zeros_like(price)
            return DayStats(now, now - DAY_MS, price, price, price, price, zero, zero, zero, first * tape.s1, last_id)
        return DayStats(now, src.bar_open_ms(first), live[0].open, np.max([p.high for p in live], axis=0),
                        np.min([p.low for p in live], axis=0), live[-1].close, np.sum([p.volume for p in live], axis=0),
                        np.sum([p.quote for p in live], axis=0), np.asarray(k_last, dtype=float), first * tape.s1,
                        last_id)


class MarketData:
    """Ticker and trade-history endpoints over an `Exchange`."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.tickers = TickerStats(ex)

    def _symbols(self, params: Params) -> tuple[Instrument | None, list[Instrument]]:
        ins = self.ex.instrument(params, required=False)
        return ins, [ins] if ins is not None else list(self.ex.source.instruments)

    def ticker_24hr(self, params: Params) -> dict[str, Any] | list[dict[str, Any]]:
        ins, insts = self._symbols(params)
        st = self.tickers.stats(self.ex.now())
        rows = [ticker_row(i, st) for i in insts]
        return rows[0] if ins is not None else rows

    def ticker_price(self, params: Params) -> dict[str, Any] | list[dict[str, Any]]:
        ins, insts = self._symbols(params)
        now = self.ex.now()
        prices = self.ex.source.price_at(now)
        rows = [{"symbol": i.symbol, "price": fnum(float(prices[i.column]), i.price_decimals), "time": now}
                for i in insts]
        return rows[0] if ins is not None else rows

    def book_ticker(self, params: Params) -> dict[str, Any] | list[dict[str, Any]]:
        ins, insts = self._symbols(params)
        now = self.ex.now()
        book = self.ex.books.compute(np.array([i.column for i in insts]), now, levels=1)
        rows = []
        for n, i in enumerate(insts):
            qd = max(0, i.qty_decimals)
            rows.append({"symbol": i.symbol, "bidPrice": fnum(float(book.bid_px[n, 0]), i.price_decimals),
                         "bidQty": fnum(float(book.bid_qty[n, 0]), qd),
                         "askPrice": fnum(float(book.ask_px[n, 0]), i.price_decimals),
                         "askQty": fnum(float(book.ask_qty[n, 0]), qd), "time": book.t_ms,
                         "lastUpdateId": book.update_id})
        return rows[0] if ins is not None else rows

    # -- trades --------------------------------------------------------------------------

    def _trades(self, ins: Instrument, first_bar: int, forward: bool, now: int) -> Iterator[tuple[int, int, float,
                                                                                                   float, bool]]:
        """(id, time, price, qty, buyer is maker) of printed trades, from ``first_bar`` on or back."""
        src = self.ex.source
        tape = self.ex.tape
        last_bar = src.bar_at(now)
        if src.n_bars is not None:
            last_bar = min(last_bar, src.n_bars - 1)
        bar = min(first_bar, last_bar)
        col = ins.column
        while 0 <= bar <= last_bar:
            bt = tape.bar_trades(bar)
            order = range(tape.s1) if forward else range(tape.s1 - 1, -1, -1)
            times, ids = bt.times.tolist(), bt.ids.tolist()
            for j in order:
                q = float(bt.qty[j, col])
                if q > 0 and times[j] <= now:
                    yield ids[j], times[j], float(bt.prices[j, col]), q, bool(bt.buyer_is_maker[j, col])
            bar += 1 if forward else -1

    def agg_trades(self, params: Params) -> list[dict[str, Any]]:
        ex = self.ex
        ins = ex.require_instrument(params)
        limit = limit_param(params, 500, 1000)
        from_id = int_param(params, "fromId")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        now = ex.now()
        if start is not None and end is not None and (start > end or end - start > 3_600_000):
            raise err(-1127, "More than 1 hours between startTime and endTime.") if start <= end else err(
                -1023, "Start time is greater than end time.")
        rows: list[tuple[int, int, float, float, bool]] = []
        s1 = ex.tape.s1
        if from_id is not None:
            for row in self._trades(ins, from_id // s1, True, now):
                if row[0] >= from_id:
                    rows.append(row)
                    if len(rows) >= limit:
                        break
        elif start is not None or end is not None:
            lo = start if start is not None else (end or now) - 3_600_000
            hi = min(now, end if end is not None else lo + 3_600_000)
            for row in self._trades(ins, ex.source.bar_at(lo), True, now):
                if row[1] > hi:
                    break
                if row[1] >= lo:
                    rows.append(row)
                    if len(rows) >= limit:
                        break
        else:
            for row in self._trades(ins, ex.source.bar_at(now), False, now):
                rows.append(row)
                if len(rows) >= limit:
                    break
            rows.reverse()
        d, vd = ins.price_decimals, ins.vol_decimals
        return [{"a": i, "p": fnum(p, d), "q": fnum(q, vd), "f": i, "l": i, "T": t, "m": m} for i, t, p, q, m in rows]

    def trades(self, params: Params, historical: bool = False) -> list[dict[str, Any]]:
        """``/fapi/v1/trades`` (the latest) and ``/fapi/v1/historicalTrades`` (from ``fromId``)."""
        ex = self.ex
        ins = ex.require_instrument(params)
        limit = limit_param(params, 100 if historical else 500, 500 if historical else 1000)
        now = ex.now()
        from_id = int_param(params, "fromId") if historical else None
        rows: list[tuple[int, int, float, float, bool]] = []
        if from_id is not None:
            for row in self._trades(ins, from_id // ex.tape.s1, True, now):
                if row[0] >= from_id:
                    rows.append(row)
                    if len(rows) >= limit:
                        break
        else:
            for row in self._trades(ins, ex.source.bar_at(now), False, now):
                rows.append(row)
                if len(rows) >= limit:
                    break
            rows.reverse()
        d, vd = ins.price_decimals, ins.vol_decimals
        return [{"id": i, "price": fnum(p, d), "qty": fnum(q, vd), "quoteQty": fnum(p * q, 8), "time": t,
                 "isBuyerMaker": m} for i, t, p, q, m in rows]


def ticker_row(ins: Instrument, st: DayStats) -> dict[str, Any]:
    """One ``ticker/24hr`` object."""
    c = ins.column
    d, vd = ins.price_decimals, ins.vol_decimals
    o, last = float(st.open[c]), float(st.close[c])
    vol, quote = float(st.volume[c]), float(st.quote[c])
    change = last - o
    return {"symbol": ins.symbol, "priceChange": fnum(change, d),
            "priceChangePercent": f"{(change / o * 100 if o else 0.0):.3f}",
            "weightedAvgPrice": fnum(quote / vol if vol else last, d), "lastPrice": fnum(last, d),
            "lastQty": fnum(float(st.last_qty[c]), vd), "openPrice": fnum(o, d), "highPrice": fnum(float(st.high[c]), d),
            "lowPrice": fnum(float(st.low[c]), d), "volume": fnum(vol, vd), "quoteVolume": fnum(quote, 2),
            "openTime": st.open_time, "closeTime": st.t_ms, "firstId": st.first_id, "lastId": st.last_id,
            "count": max(0, st.last_id - st.first_id + 1)}
