"""Price sources of the simulator: the seeded synthetic market, or a replay of real klines.

Both serve the same things to the exchange: per-symbol `Instrument` rules (tick, step,
spread and depth tiers), native bars by index (OHLCV for all symbols), the 1-second
path inside any bar (row 0 = open, last row = close, high and low both reached), funding
rates per 8 h period, and the baseline taker-buy share of a day.

* `SyntheticSource` wraps `dolphin.market.synthetic.SyntheticMarket` (its 1 s paths
  *are* the bars, so trades, kline updates and books always agree with the klines).
* `ReplaySource` reads a long-format klines file (Parquet/CSV: ts, symbol, OHLCV) and
  replays it bar for bar: closes at bar boundaries are the file's, exactly. Inside each
  bar it draws a deterministic 1 s path from open through the high and the low to the
  close, keyed by (seed, symbol, bar).

Generated bars are cached in hour blocks under a byte budget, because a backfill asks
for the same hours symbol after symbol and the generator produces all symbols at once.
"""

from __future__ import annotations

import logging
import math
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dolphin.market.errors import SimConfigError
from dolphin.market.sim import rand
from dolphin.market.sim.config import DAY_MS, SimConfig

PANIC_LEAD_MS = 3 * 60_000  # the default start leaves this long before the first panic signal
SIGNAL_GATE = -0.02         # the champion's vel_div threshold (bible §19.1)
from dolphin.market.symbols import MAX_UNIVERSE, symbol_index, universe

if TYPE_CHECKING:
    from dolphin.market.synthetic.regimes import Episode

log = logging.getLogger("dolphin.market.sim")

FUNDING_PERIOD_MS = 8 * 3_600_000
REPLAY_FUNDING_RATE = 0.0001
"""Funding per 8 h on replayed data (Binance's interest-rate-only baseline): files carry none."""

# Liquidity tiers for replayed symbols, by rank of traded USD: (rank bound, spread bps, USD in top 5 levels).
_REPLAY_TIERS: tuple[tuple[int, float, float], ...] = (
    (2, 0.2, 4_000_000.0), (10, 0.6, 800_000.0), (50, 1.5, 200_000.0), (200, 3.0, 60_000.0), (10**9, 6.0, 20_000.0))


@dataclass(frozen=True, slots=True)
class Instrument:
    """Trading rules and liquidity of one served symbol.

    ``column`` is its position in the source's arrays; ``key`` its stable identity for
    keyed randomness (universe position, so books are the same whatever subset is
    served). Prices are multiples of ``tick = 10**-price_decimals``; order quantities of
    ``step = 10**-qty_decimals``; bar volumes are published with ``vol_decimals``.
    ``vol_bps_5s`` is the typical 5 s move, the yardstick of the book's cascade detector.
    """

    symbol: str
    column: int
    key: int
    tick: float
    price_decimals: int
    step: float
    qty_decimals: int
    vol_decimals: int
    spread_bps: float
    depth_usd: float
    vol_bps_5s: float = 3.0

    @property
    def base_asset(self) -> str:
        return self.symbol[:-4] if self.symbol.endswith("USDT") else self.symbol


@dataclass(frozen=True, slots=True)
class BarBlock:
    """Native bars ``[start_bar, start_bar + n)``: ``ts`` (n,) open times, OHLCV (n, symbols)."""

    start_bar: int
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @property
    def n(self) -> int:
        return int(self.ts.shape[0])


def _step_decimals(price: float) -> int:
    """Quantity decimals for a price: step = 10**floor(log10(10 / p)) clipped to [1e-3, 1e3]."""
    return int(min(3, max(-3, -math.floor(math.log10(10.0 / price)))))


def _decimals_needed(values: np.ndarray, limit: int = 8) -> int:
    """Fewest decimals d ≤ limit such that every value is the nearest double to a d-decimal number."""
    v = values[np.isfinite(values)]
    for d in range(limit + 1):
        scale = float(10**d)
        if np.array_equal(np.rint(v * scale) / scale, v):
            return d
    return limit


class MarketSource(ABC):
    """What the exchange needs from a market (see the module docstring)."""

    def __init__(self, instruments: tuple[Instrument, ...], bar_seconds: int, first_ms: int, end_ms: int | None,
                 cache_bytes: int) -> None:
        self.instruments = instruments
        self.symbols = tuple(i.symbol for i in instruments)
        self.by_symbol = {i.symbol: i for i in instruments}
        self.bar_seconds = int(bar_seconds)
        self.bar_ms = self.bar_seconds * 1000
        self.first_ms = int(first_ms)
        self.end_ms = end_ms
        self.block_bars = max(1, 3600 // self.bar_seconds)
        self._cache_bytes = cache_bytes
        self._blocks: OrderedDict[int, BarBlock] = OrderedDict()
        self._paths: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.RLock()
        self.tick = np.array([i.tick for i in instruments])
        self.price_scale = np.array([float(10**i.price_decimals) for i in instruments])

    # -- time ---------------------------------------------------------------------------

    def default_start_ms(self) -> int:
        """Where simulated time starts when no --start is given: one day in (a day of history)."""
        return self.first_ms + DAY_MS

    @property
    def n_bars(self) -> int | None:
        """Number of bars the source has (None: unbounded)."""
        return None if self.end_ms is None else (self.end_ms - self.first_ms) // self.bar_ms

    def bar_at(self, ts_ms: int) -> int:
        """Index of the bar containing ``ts_ms`` (negative before the first bar)."""
        return (int(ts_ms) - self.first_ms) // self.bar_ms

    def bar_open_ms(self, bar: int) -> int:
        return self.first_ms + int(bar) * self.bar_ms

    def clamp_bar(self, bar: int) -> int:
        """``bar`` limited to the data (the last bar of a finished replay holds the market)."""
        n = self.n_bars
        return bar if n is None else min(bar, n - 1)

    # -- bars and paths -----------------------------------------------------------------

    def bars(self, start_bar: int, n: int) -> BarBlock:
        """Bars ``[start_bar, start_bar + n)`` of every served symbol (clipped to the data)."""
        start = max(0, int(start_bar))
        stop = int(start_bar) + int(n)
        if self.n_bars is not None:
            stop = min(stop, self.n_bars)
        if stop <= start:
            empty = np.empty((0, len(self.instruments)))
            return BarBlock(start, np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty)
        parts: list[BarBlock] = []
        bar = start
        while bar < stop:
            block_index = bar // self.block_bars
            block = self._block(block_index)
            lo = bar - block.start_bar
            hi = min(block.n, stop - block.start_bar)
            parts.append(BarBlock(bar, block.ts[lo:hi], block.open[lo:hi], block.high[lo:hi], block.low[lo:hi],
                                  block.close[lo:hi], block.volume[lo:hi]))
            bar = block.start_bar + hi
        if len(parts) == 1:
            return parts[0]
        return BarBlock(start, *(np.concatenate([getattr(p, f) for p in parts])
                                 for f in ("ts", "open", "high", "low", "close", "volume")))

    def _block(self, index: int) -> BarBlock:
        with self._lock:
            block = self._blocks.get(index)
            if block is not None:
                self._blocks.move_to_end(index)
                return block
        block = self._make_block(index)
        with self._lock:
            self._blocks[index] = block
            size = sum(b.open.nbytes * 5 for b in self._blocks.values())
            while size > self._cache_bytes and len(self._blocks) > 1:
                _, old = self._blocks.popitem(last=False)
                size -= old.open.nbytes * 5
        return block

    def has_block(self, index: int) -> bool:
        """Whether hour block ``index`` is cached (serving it costs no generation)."""
        with self._lock:
            return index in self._blocks

    def path(self, bar: int) -> np.ndarray:
        """1 s prices of bar ``bar``: (bar_seconds + 1, symbols), row 0 = open, last = close."""
        with self._lock:
            cached = self._paths.get(bar)
            if cached is not None:
                return cached
        path = self._make_path(bar)
        path.flags.writeable = False
        with self._lock:
            self._paths[bar] = path
            while len(self._paths) > 16:
                self._paths.popitem(last=False)
        return path

    def prefetch(self, bar: int) -> None:
        """Warm the caches for ``bar`` (run off the event loop ahead of need)."""
        if self.n_bars is None or bar < self.n_bars:
            self._block(max(0, bar) // self.block_bars)
            self.path(max(0, bar))

    def price_at(self, ts_ms: int) -> np.ndarray:
        """Last traded price of every symbol at ``ts_ms``: the 1 s path point of the current second."""
        bar = self.bar_at(ts_ms)
        if bar < 0:
            return self.path(0)[0]
        last = self.clamp_bar(bar)
        if last != bar:
            return self.path(last)[-1]
        return self.path(bar)[self.trade_index(int(ts_ms) - self.bar_open_ms(bar))]

    def trade_index(self, elapsed_ms: int) -> int:
        """Index of the last 1 s path point traded ``elapsed_ms`` into a bar.

        A bar's trades print at its open (point 0), at each whole second (points 1 … S−1)
        and one millisecond before its close (point S, the close).
        """
        s = self.bar_seconds
        return s if elapsed_ms >= s * 1000 - 1 else max(0, min(s - 1, elapsed_ms // 1000))

    def trade_times(self, bar: int) -> np.ndarray:
        """Print times of a bar's S + 1 trades (see `trade_index`)."""
        t0 = self.bar_open_ms(bar)
        times = t0 + np.arange(self.bar_seconds + 1, dtype=np.int64) * 1000
        times[-1] = t0 + self.bar_ms - 1
        return times

    @abstractmethod
    def _make_block(self, index: int) -> BarBlock: ...

    @abstractmethod
    def _make_path(self, bar: int) -> np.ndarray: ...

    # -- funding and order flow ---------------------------------------------------------

    @abstractmethod
    def funding_rates(self, ts_ms: int) -> np.ndarray:
        """Funding rate (per 8 h) of the period containing ``ts_ms``, per symbol."""

    def funding_times(self, after_ms: int, until_ms: int) -> list[int]:
        """Funding settlement times in ``(after_ms, until_ms]``."""
        first = (int(after_ms) // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS
        return list(range(first, int(until_ms) + 1, FUNDING_PERIOD_MS))

    def next_funding_ms(self, ts_ms: int) -> int:
        return (int(ts_ms) // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS

    def taker_buy_share(self, ts_ms: int) -> float:
        """Baseline share of volume bought by takers on the day of ``ts_ms`` (0.5 = balanced)."""
        return 0.5

    def instability_episodes(self, ts_ms: int) -> tuple[Episode, ...]:
        """The scheduled instability episodes that may touch ``ts_ms`` (bars absolute; none for a replay)."""
        return ()

    def describe(self) -> str:
        return type(self).__name__


class SyntheticSource(MarketSource):
    """The seeded synthetic market (`dolphin.market.synthetic`), any subset of its universe."""

    def __init__(self, config: SimConfig) -> None:
        from dolphin.market.synthetic import SyntheticConfig, SyntheticMarket

        wanted = config.symbols if config.symbols is not None else MAX_UNIVERSE
        if isinstance(wanted, int):
            names = universe(wanted)
        else:
            names = list(wanted)
        try:
            keys = [symbol_index(n) for n in names]
        except ValueError as exc:
            raise SimConfigError(f"--symbols: {exc}") from None
        try:
            self.market = SyntheticMarket(SyntheticConfig(seed=config.seed, n_symbols=max(keys) + 1,
                                                          bar_seconds=config.bar_seconds), cache_chunks=4)
        except ValueError as exc:
            raise SimConfigError(f"synthetic market: {exc}") from None
        self._cols = np.array(keys, dtype=np.int64)
        instruments = []
        for column, key in enumerate(keys):
            s = self.market.specs[key]
            instruments.append(Instrument(symbol=s.symbol, column=column, key=key, tick=s.tick_size,
                                          price_decimals=s.price_decimals, step=s.step_size,
                                          qty_decimals=s.qty_decimals, vol_decimals=max(0, s.qty_decimals),
                                          spread_bps=s.spread_bps, depth_usd=s.depth_usd,
                                          vol_bps_5s=math.sqrt(s.idio_vol_bps**2
                                                               + (s.beta * self.market.config.market_vol_bps)**2)))
        bytes_per_bar = 5 * 8 * len(keys)
        super().__init__(tuple(instruments), config.bar_seconds, self.market.config.start_ms, None,
                         max(config.history_cache_mb * 2**20, bytes_per_bar * 4000))
        self._factor_days: dict[int, float] = {}
        self._start_offset_ms: int | None = None

    def default_start_ms(self) -> int:
        """A few minutes before the first signal of a downward panic on day 1 (day 1's start if none).

        A newcomer's `dolphin up` should see the loop trade within minutes, not after the
        hour a random start waits on average for an instability episode. The start is
        chosen from the simulator's own schedule: the first bar of day 1 that lies inside
        a scheduled downward panic and where the scan of the priority universe shows
        vel_div below the champion's −0.02 gate with the volatility gate open. The
        engine's parameters stay untouched; day 0 remains history.
        """
        if self._start_offset_ms is None:
            day1 = self.first_ms + DAY_MS
            signal_ms = self._first_panic_signal_ms()
            if signal_ms is None:
                start = day1
            else:
                start = signal_ms - PANIC_LEAD_MS
                start = max(day1, start - (start - self.first_ms) % self.bar_ms)
            self._start_offset_ms = start - self.first_ms  # relative: survives a rebase
        return self.first_ms + self._start_offset_ms

    def rebase(self, origin_ms: int) -> None:
        """Place the same market elsewhere in time: bar 0 opens at ``origin_ms`` (on the bar grid).

        The synthetic market's content is a function of bar and day indices, not of dates,
        so a rebased market is the same market, shifted: this is how the default start
        puts the wall clock a few minutes before day 1's first panic. Caches holding
        timestamps are dropped; call before serving anything.
        """
        if origin_ms % self.bar_ms or origin_ms % 1000:
            raise SimConfigError(f"a market origin must be on the {self.bar_seconds} s bar grid, got {origin_ms}")
        self.market = self.market.rebased(int(origin_ms))
        self.first_ms = int(origin_ms)
        with self._lock:
            self._blocks.clear()
            self._paths.clear()

    def _first_panic_signal_ms(self) -> int | None:
        from dolphin.market.symbols import PRIORITY_SYMBOLS
        from dolphin.scan import build_scan_features, vol_regime_ok

        per_day = DAY_MS // self.bar_ms
        width = min(len(PRIORITY_SYMBOLS), self.market.config.n_symbols)
        bars = self.market.generate(0, 2 * per_day)
        close = np.ascontiguousarray(bars.close[:, :width])
        vel_div = build_scan_features(close).vel_div
        _, vol_ok = vol_regime_ok(close[:, 0])
        panic = np.zeros(2 * per_day, dtype=bool)
        for e in self.market.episodes(1):
            if e.kind == "panic" and e.direction < 0:
                end = e.onset_bar + e.fracture_bars + e.panic_bars
                panic[max(0, e.onset_bar):min(2 * per_day, end)] = True
        hits = np.flatnonzero(panic[per_day:] & (vel_div[per_day:] < SIGNAL_GATE) & vol_ok[per_day:])
        return None if hits.size == 0 else int(bars.ts_ms[per_day + hits[0]])

    def _make_block(self, index: int) -> BarBlock:
        b = self.market.generate(index * self.block_bars, self.block_bars)
        cols = self._cols
        return BarBlock(index * self.block_bars, b.ts_ms, b.open[:, cols], b.high[:, cols], b.low[:, cols],
                        b.close[:, cols], b.volume[:, cols])

    def _make_path(self, bar: int) -> np.ndarray:
        return np.ascontiguousarray(self.market.intrabar_path(max(0, bar))[:, self._cols])

    def funding_rates(self, ts_ms: int) -> np.ndarray:
        return self.market.funding_rates(max(int(ts_ms), self.first_ms))[self._cols]

    def taker_buy_share(self, ts_ms: int) -> float:
        day = max(0, (int(ts_ms) - self.first_ms) // DAY_MS)
        with self._lock:
            share = self._factor_days.get(day)
        if share is None:
            taker = self.market.external_factors(day).taker
            share = taker / (1.0 + taker)
            with self._lock:
                self._factor_days[day] = share
        return share

    def instability_episodes(self, ts_ms: int) -> tuple[Episode, ...]:
        """Episodes of the day of ``ts_ms`` and of the day before (a late episode runs past midnight)."""
        day = (int(ts_ms) - self.first_ms) // DAY_MS
        if day < 0:
            return ()
        return (self.market.episodes(day - 1) if day > 0 else ()) + self.market.episodes(day)

    def describe(self) -> str:
        return f"synthetic seed {self.market.config.seed}, {len(self.instruments)} symbols, {self.bar_seconds} s bars"


class ReplaySource(MarketSource):
    """Real klines replayed bar for bar from a long-format Parquet/CSV file."""

    def __init__(self, config: SimConfig) -> None:
        from dolphin.errors import DataError
        from dolphin.store.klines import read_klines

        path = Path(config.source).expanduser()
        try:
            table = read_klines(path)
        except DataError as exc:
            raise SimConfigError(str(exc)) from None
        ts = table.column("ts").to_numpy()
        steps = np.diff(np.sort(ts))
        steps = steps[steps > 0]
        if steps.shape[0] == 0:
            raise SimConfigError(f"{path}: need at least two distinct timestamps to replay")
        values, counts = np.unique(steps, return_counts=True)
        interval = int(values[np.argmax(counts)])
        if interval % 1000 or 3_600_000 % interval:
            raise SimConfigError(f"{path}: kline interval {interval} ms must be whole seconds dividing an hour")
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(table.column("symbol")).combine_chunks()
        dict_names = [str(x) for x in encoded.dictionary.to_pylist()]
        dict_index = encoded.indices.to_numpy()
        file_symbols = sorted(set(dict_names))
        order = {s: i for i, s in enumerate(universe(MAX_UNIVERSE))}
        ranked = sorted(file_symbols, key=lambda s: (order.get(s, MAX_UNIVERSE), s))
        wanted = config.symbols
        if wanted is None:
            names = ranked
        elif isinstance(wanted, int):
            names = ranked[:wanted]
        else:
            missing = [s for s in wanted if s not in file_symbols]
            if missing:
                raise SimConfigError(f"{path}: no klines for {', '.join(missing)}")
            names = list(wanted)
        t0 = int(ts.min())
        t0 -= t0 % interval
        n_bars = int((int(ts.max()) - t0) // interval) + 1
        col_of = {s: i for i, s in enumerate(names)}
        sel = np.array([col_of.get(s, -1) for s in dict_names], dtype=np.int64)[dict_index]
        keep = sel >= 0
        offsets = ts[keep] - t0
        if (offsets % interval != 0).any():
            raise SimConfigError(f"{path}: some timestamps are off the {interval} ms grid starting at {t0}")
        rows = (offsets // interval).astype(np.int64)
        cols = sel[keep]
        k = len(names)
        if (np.bincount(rows * k + cols, minlength=n_bars * k) > 1).any():
            raise SimConfigError(f"{path}: duplicate candles (same symbol and timestamp)")
        arrays = {}
        for name in ("open", "high", "low", "close", "volume"):
            grid = np.full((n_bars, k), np.nan)
            grid[rows, cols] = table.column(name).to_numpy()[keep]
            arrays[name] = grid
        self._fill_gaps(arrays)
        self._arrays = arrays
        self._ts = t0 + np.arange(n_bars, dtype=np.int64) * interval
        usd = np.nansum(arrays["volume"] * arrays["close"], axis=0)
        rank = np.empty(k, dtype=np.int64)
        rank[np.argsort(-usd, kind="stable")] = np.arange(k)
        instruments = []
        for c, sym in enumerate(names):
            prices = np.concatenate([arrays[f][:, c] for f in ("open", "high", "low", "close")])
            d = _decimals_needed(prices)
            qd = _step_decimals(float(np.median(arrays["close"][:, c])))
            vd = _decimals_needed(arrays["volume"][:, c])
            spread, depth = next((sp, dp) for bound, sp, dp in _REPLAY_TIERS if rank[c] < bound)
            tick = 1.0 / 10**d
            spread = max(spread, 1e4 * tick / float(np.median(arrays["close"][:, c])))
            closes = arrays["close"][:, c]
            rets = np.diff(closes) / closes[:-1]
            vol5 = float(np.std(rets[np.isfinite(rets)])) * 1e4 * math.sqrt(5.0 / (interval / 1000.0)) if k else 3.0
            instruments.append(Instrument(symbol=sym, column=c, key=order.get(sym, MAX_UNIVERSE + c), tick=tick,
                                          price_decimals=d, step=(1.0 / 10**qd) if qd >= 0 else float(10 ** -qd),
                                          qty_decimals=qd, vol_decimals=vd, spread_bps=math.ceil(spread * 1e4) / 1e4,
                                          depth_usd=depth, vol_bps_5s=max(0.5, vol5)))
        self.path_file = path
        self._seed = config.seed
        super().__init__(tuple(instruments), interval // 1000, t0, t0 + n_bars * interval,
                         config.history_cache_mb * 2**20)
        log.info("replaying %s: %d symbols, %d bars of %d s from %d", path, k, n_bars, interval // 1000, t0)

    @staticmethod
    def _fill_gaps(arrays: dict[str, np.ndarray]) -> None:
        """Bars without a candle repeat the previous close with zero volume (first ones: the next open)."""
        close = arrays["close"]
        missing = np.isnan(close)
        if not missing.any():
            return
        idx = np.where(~missing, np.arange(close.shape[0])[:, None], -1)
        np.maximum.accumulate(idx, axis=0, out=idx)
        prev = np.where(idx >= 0, close[np.maximum(idx, 0), np.arange(close.shape[1])], np.nan)
        first_open = np.array([arrays["open"][np.argmax(~np.isnan(arrays["open"][:, c])), c]
                               for c in range(close.shape[1])])
        prev = np.where(np.isnan(prev), first_open[None, :], prev)
        for name in ("open", "high", "low", "close"):
            arrays[name] = np.where(missing, prev, arrays[name])
        arrays["volume"] = np.where(missing, 0.0, arrays["volume"])

    def _make_block(self, index: int) -> BarBlock:
        lo = index * self.block_bars
        hi = min(lo + self.block_bars, self._ts.shape[0])
        a = self._arrays
        return BarBlock(lo, self._ts[lo:hi], a["open"][lo:hi], a["high"][lo:hi], a["low"][lo:hi],
                        a["close"][lo:hi], a["volume"][lo:hi])

    def _make_path(self, bar: int) -> np.ndarray:
        bar = min(max(0, bar), self._ts.shape[0] - 1)
        a = self._arrays
        o, h, lo, c = (a[f][bar] for f in ("open", "high", "low", "close"))
        return replay_path(self._seed, np.array([i.key for i in self.instruments]), bar, o, h, lo, c,
                           self.bar_seconds, self.price_scale)

    def funding_rates(self, ts_ms: int) -> np.ndarray:
        return np.full(len(self.instruments), REPLAY_FUNDING_RATE)

    def describe(self) -> str:
        return f"replay of {self.path_file.name}, {len(self.instruments)} symbols, {self.bar_seconds} s bars"


def replay_path(seed: int, keys: np.ndarray, bar: int, o: np.ndarray, h: np.ndarray, lo: np.ndarray,
                c: np.ndarray, seconds: int, price_scale: np.ndarray) -> np.ndarray:
    """A deterministic 1 s path through a bar's open, high, low and close (all symbols at once).

    The extremes come in the order that makes the bar's body natural (low then high on an
    up bar, high then low on a down bar) at seeded seconds; between anchors the price moves
    linearly plus seeded noise, clipped to [low, high] and rounded to the tick. Row 0 is the
    open and the last row the close, exactly.
    """
    s = int(seconds)
    out = np.empty((s + 1, o.shape[0]))
    out[0] = o
    out[s] = c
    if s == 1:
        return out
    if s == 2:
        out[1] = np.where(c >= o, h, lo)
        return out
    u = rand.uniform(seed, rand.PATH, keys[:, None], bar, np.arange(s + 3)[None, :])  # (k, s + 3)
    a = 1 + np.floor(u[:, 0] * (s - 2)).astype(np.int64)                      # first extreme, [1, s-2]
    b = a + 1 + np.floor(u[:, 1] * (s - 1 - a)).astype(np.int64)              # second extreme, [a+1, s-1]
    up = c >= o
    first = np.where(up, lo, h)
    second = np.where(up, h, lo)
    t = np.arange(s + 1)[:, None].astype(np.float64)
    af, bf = a[None, :].astype(np.float64), b[None, :].astype(np.float64)
    seg1 = o + (first - o) * (t / af)
    seg2 = first + (second - first) * ((t - af) / (bf - af))
    seg3 = second + (c - second) * ((t - bf) / (s - bf))
    line = np.where(t <= af, seg1, np.where(t <= bf, seg2, seg3))
    noise = (u[:, 2:].T - 0.5) * 0.5 * (h - lo)
    x = np.clip(line + noise[: s + 1], lo, h)
    x = np.rint(x * price_scale) / price_scale
    x = np.clip(x, lo, h)
    out[1:s] = x[1:s]
    cols = np.arange(o.shape[0])
    out[a, cols] = first
    out[b, cols] = second
    out[0] = o
    out[s] = c
    return out


def make_source(config: SimConfig) -> MarketSource:
    """The source a configuration asks for."""
    return ReplaySource(config) if config.is_replay else SyntheticSource(config)
