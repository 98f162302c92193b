"""`SyntheticMarket`: the public face of the generator, serving any bar range on demand.

Why ranges and not a stream: the backtester wants days, the simulator exchange streams
forever *and* serves kline history by time range. Randomness is keyed per hour (chunk),
so any hour is drawn without drawing the others; the only sequential state is each
chunk's starting price level, which the market computes once (generating the earlier
chunks) and remembers. Every chunk is computed by the same code from the same inputs
whatever range was asked for, so ``generate(0, N)`` followed by ``generate(N, K)``
equals ``generate(0, N + K)`` bit for bit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from .config import SECONDS_PER_DAY, SyntheticConfig
from .factors import FUNDING_PERIOD_MS, ExternalFactors, external_factors, funding_rates
from .generator import Chunk, Workspace, complete, simulate_chunk
from .instruments import SpecArrays, SymbolSpec, symbol_specs
from .regimes import Episode, RegimeSchedule

KLINE_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("symbol", pa.string()), ("open", pa.float64()), ("high", pa.float64()),
    ("low", pa.float64()), ("close", pa.float64()), ("volume", pa.float64()),
])
"""Long-format klines, the input of ``dolphin scan build`` (ts = bar open time, ms UTC)."""


@dataclass(frozen=True, slots=True, eq=False)
class Bars:
    """Bars ``[start_bar, start_bar + n_bars)`` of every symbol.

    ``ts_ms`` (int64, n_bars) is each bar's open time in ms UTC; ``open`` … ``volume``
    are float64 (n_bars, n_symbols), columns in ``symbols`` (universe) order. Prices are
    on each symbol's tick grid, volumes (base asset) on its step grid, and each bar's
    open is the previous bar's close.
    """

    start_bar: int
    symbols: tuple[str, ...]
    ts_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @property
    def n_bars(self) -> int:
        """Number of bars (rows)."""
        return int(self.ts_ms.size)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class SyntheticMarket:
    """A deterministic, seeded synthetic USD-M perpetuals market (see ``docs/synthetic_market.md``).

    Thread-safe: the chunk cache is guarded by a lock, results are fresh arrays.
    ``cache_chunks`` bounds how many generated hours are kept (each is about
    ``5 × bars_per_chunk × n_symbols`` floats, ~1.4 MB at 50 symbols, and its 1 s path
    once asked for, ``(3600 + bar) × n_symbols`` floats more).
    """

    def __init__(self, config: SyntheticConfig | None = None, *, cache_chunks: int = 8) -> None:
        self._cfg = config if config is not None else SyntheticConfig()
        if not isinstance(self._cfg, SyntheticConfig):
            raise ValueError(f"config must be a SyntheticConfig, got {type(config).__name__}")
        self._cache_size = _check_int("cache_chunks", cache_chunks, 1)
        self._specs = symbol_specs(self._cfg.seed, self._cfg.n_symbols)
        self._arrays = SpecArrays.from_specs(self._specs)
        self._by_symbol = {s.symbol: s for s in self._specs}
        self._schedule = RegimeSchedule(self._cfg)
        self._chunks: OrderedDict[int, Chunk] = OrderedDict()
        self._carries: list[np.ndarray] = [self._arrays.base_price.copy()]
        self._workspace = Workspace(self._cfg.bars_per_chunk, self._cfg.n_symbols)
        self._lock = threading.RLock()

    # -- identity and static properties -------------------------------------------------

    @property
    def config(self) -> SyntheticConfig:
        """The configuration this market was built from."""
        return self._cfg

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols in column order (the first ``n_symbols`` of the universe)."""
        return tuple(s.symbol for s in self._specs)

    @property
    def specs(self) -> tuple[SymbolSpec, ...]:
        """Static properties of every symbol, in column order."""
        return self._specs

    def spec(self, symbol: str) -> SymbolSpec:
        """Static properties of ``symbol``."""
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise ValueError(f"{symbol!r} is not one of this market's {len(self._specs)} symbols") from None

    @property
    def bars_per_day(self) -> int:
        """Bars per day (17,280 at 5 s)."""
        return self._cfg.bars_per_day

    # -- time -----------------------------------------------------------------------------

    def bar_open_ms(self, bar: int) -> int:
        """Open time (ms UTC) of bar ``bar``."""
        return self._cfg.start_ms + _check_int("bar", bar, 0) * self._cfg.bar_ms

    def bar_at(self, ts_ms: int) -> int:
        """Index of the bar containing time ``ts_ms`` (ms UTC, not before the start)."""
        ts = _check_int("ts_ms", ts_ms, self._cfg.start_ms)
        return (ts - self._cfg.start_ms) // self._cfg.bar_ms

    def day_of(self, bar: int) -> int:
        """Day index (0 = the start day) of bar ``bar``."""
        return _check_int("bar", bar, 0) // self._cfg.bars_per_day

    # -- bars -----------------------------------------------------------------------------

    def bars(self, n_bars: int) -> Bars:
        """The first ``n_bars`` bars."""
        return self.generate(0, n_bars)

    def day(self, day: int, n_days: int = 1) -> Bars:
        """Whole days ``[day, day + n_days)``."""
        day = _check_int("day", day, 0)
        n_days = _check_int("n_days", n_days, 1)
        return self.generate(day * self.bars_per_day, n_days * self.bars_per_day)

    def generate(self, start_bar: int, n_bars: int) -> Bars:
        """Bars ``[start_bar, start_bar + n_bars)``: identical whichever way a range is split."""
        start = _check_int("start_bar", start_bar, 0)
        count = _check_int("n_bars", n_bars, 0)
        n_sym = self._cfg.n_symbols
        s_len = self._cfg.bar_seconds
        out = {k: np.empty((count, n_sym)) for k in ("open", "high", "low", "close", "volume")}
        for index, lo, hi, rows in self._spans(start, count):
            chunk, path, volume = self._chunk_with_path(index)
            body = path[lo * s_len: hi * s_len].reshape(hi - lo, s_len, n_sym)
            close = chunk.close[lo:hi]
            out["open"][rows] = body[:, 0]
            out["close"][rows] = close
            out["high"][rows] = np.maximum(body.max(axis=1), close)
            out["low"][rows] = np.minimum(body.min(axis=1), close)
            out["volume"][rows] = volume[lo:hi]
        ts = self._cfg.start_ms + np.arange(start, start + count, dtype=np.int64) * self._cfg.bar_ms
        return Bars(start, self.symbols, ts, **out)

    def closes(self, start_bar: int, n_bars: int) -> np.ndarray:
        """Close prices of bars ``[start_bar, start_bar + n_bars)``: (n_bars, n_symbols), = ``generate(…).close``.

        The backtester's fast path: closes need no 1 s path, so none is drawn.
        """
        start = _check_int("start_bar", start_bar, 0)
        count = _check_int("n_bars", n_bars, 0)
        out = np.empty((count, self._cfg.n_symbols))
        for index, lo, hi, rows in self._spans(start, count):
            out[rows] = self._chunk(index).close[lo:hi]
        return out

    def _spans(self, start: int, count: int) -> Iterator[tuple[int, int, int, slice]]:
        """(chunk index, first and stop bar within the chunk, output rows) covering a bar range."""
        per_chunk = self._cfg.bars_per_chunk
        bar = start
        while bar < start + count:
            index = bar // per_chunk
            lo = bar - index * per_chunk
            hi = min(per_chunk, start + count - index * per_chunk)
            yield index, lo, hi, slice(bar - start, bar - start + hi - lo)
            bar += hi - lo

    def intrabar_path(self, bar: int) -> np.ndarray:
        """1 s prices inside bar ``bar``: (bar_seconds + 1, n_symbols).

        Row 0 is the bar's open (its open time), row ``k`` the price ``k`` seconds in, the
        last row its close; every row lies within [low, high] and both are reached.
        """
        return self.intrabar_paths(bar, 1)[0]

    def intrabar_paths(self, start_bar: int, n_bars: int) -> np.ndarray:
        """1 s paths of bars ``[start_bar, start_bar + n_bars)``: (n_bars, bar_seconds + 1, n_symbols)."""
        start = _check_int("start_bar", start_bar, 0)
        count = _check_int("n_bars", n_bars, 0)
        s_len = self._cfg.bar_seconds
        out = np.empty((count, s_len + 1, self._cfg.n_symbols))
        for index, lo, hi, rows in self._spans(start, count):
            _, path, _ = self._chunk_with_path(index)
            for k in range(s_len + 1):
                out[rows, k] = path[lo * s_len + k: hi * s_len + k: s_len]
        return out

    def mark_prices(self, bar: int) -> np.ndarray:
        """Mark price of every symbol at the end of bar ``bar`` (the bar's close)."""
        bar = _check_int("bar", bar, 0)
        chunk_index, offset = divmod(bar, self._cfg.bars_per_chunk)
        return self._chunk(chunk_index).close[offset].copy()

    def klines_table(self, days: float | None = None, *, n_bars: int | None = None,
                     start_bar: int = 0) -> pa.Table:
        """Long-format klines (``KLINE_SCHEMA``) sorted by ts then symbol.

        Give exactly one of ``days`` (rounded to whole bars) or ``n_bars``; the range
        starts at ``start_bar``.
        """
        if (days is None) == (n_bars is None):
            raise ValueError("give exactly one of days or n_bars")
        if days is not None:
            if isinstance(days, bool) or not isinstance(days, (int, float)) or not days > 0:
                raise ValueError(f"days must be a positive number, got {days!r}")
            n_bars = max(1, int(round(days * self.bars_per_day)))
        bars = self.generate(start_bar, n_bars)  # type: ignore[arg-type]
        names = np.array(self.symbols)
        order = np.argsort(names, kind="stable")
        n_sym = names.size
        dictionary = pa.array(names[order].tolist(), type=pa.string())
        indices = pa.array(np.tile(np.arange(n_sym, dtype=np.int32), bars.n_bars))
        symbol = pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string())
        columns = [pa.array(np.repeat(bars.ts_ms, n_sym)), symbol]
        for name in ("open", "high", "low", "close", "volume"):
            columns.append(pa.array(getattr(bars, name)[:, order].ravel()))
        return pa.Table.from_arrays(columns, schema=KLINE_SCHEMA)

    # -- regime, external factors, funding ----------------------------------------------

    def episodes(self, day: int) -> tuple[Episode, ...]:
        """The instability episodes whose onset falls on ``day`` (the ground truth)."""
        day = _check_int("day", day, 0)
        with self._lock:
            return self._schedule.episodes(day)

    def instability(self, day: int) -> float:
        """Latent instability of ``day`` in [0, 1], which drives its episodes and factors."""
        day = _check_int("day", day, 0)
        with self._lock:
            return self._schedule.instability(day)

    def external_factors(self, day: int) -> ExternalFactors:
        """ACB external factors of ``day`` (bible §10.2), coherent with its instability."""
        day = _check_int("day", day, 0)
        return external_factors(self._cfg.seed, day, self.instability(day))

    def funding_rates(self, ts_ms: int) -> np.ndarray:
        """Per-symbol funding rate (per 8 h) of the funding period containing ``ts_ms``.

        Periods are 8 h long counted from the market's start (00:00/08:00/16:00 UTC for
        a start at midnight, the default).
        """
        elapsed = _check_int("ts_ms", ts_ms, self._cfg.start_ms) - self._cfg.start_ms
        day, within = divmod(elapsed, SECONDS_PER_DAY * 1000)
        multipliers = np.array([s.funding_multiplier for s in self._specs])
        return funding_rates(self._cfg.seed, day, within // FUNDING_PERIOD_MS,
                             self.external_factors(day).funding_btc, multipliers)

    def next_funding_ms(self, ts_ms: int) -> int:
        """Time of the first funding settlement strictly after ``ts_ms``."""
        elapsed = _check_int("ts_ms", ts_ms, self._cfg.start_ms) - self._cfg.start_ms
        return self._cfg.start_ms + (elapsed // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS

    def rebased(self, start_ms: int) -> SyntheticMarket:
        """The same market with bar 0 at ``start_ms``: keeps everything generated so far.

        The content of a synthetic market is a function of bar and day indices, never of
        dates, so moving it in time changes only timestamps; the generated hours (and the
        price levels carried between them) stay valid and are handed over, not redone.
        """
        other = SyntheticMarket(replace(self._cfg, start_ms=start_ms), cache_chunks=self._cache_size)
        with self._lock:
            other._chunks = OrderedDict(self._chunks)
            other._carries = list(self._carries)
        return other

    # -- chunks ---------------------------------------------------------------------------

    def _chunk(self, index: int) -> Chunk:
        with self._lock:
            cached = self._chunks.get(index)
            if cached is not None:
                self._chunks.move_to_end(index)
                return cached
            while len(self._carries) <= index:  # price levels come only from earlier chunks
                self._build(len(self._carries) - 1)
            return self._build(index)

    def _chunk_with_path(self, index: int) -> tuple[Chunk, np.ndarray, np.ndarray]:
        """A chunk, its 1 s path and its volumes (made on first use: closes alone never need them)."""
        with self._lock:
            chunk = self._chunk(index)
            complete(self._cfg, self._arrays, chunk)
            assert chunk.path is not None and chunk.volume is not None
            return chunk, chunk.path, chunk.volume

    def _build(self, index: int) -> Chunk:
        cfg = self._cfg
        regime = self._schedule.regime(index * cfg.bars_per_chunk, cfg.bars_per_chunk, cfg.n_symbols)
        chunk = simulate_chunk(cfg, self._arrays, regime, index, self._carries[index], self._workspace)
        if len(self._carries) == index + 1:
            self._carries.append(chunk.carry)
        self._chunks[index] = chunk
        self._chunks.move_to_end(index)
        while len(self._chunks) > self._cache_size:
            self._chunks.popitem(last=False)
        return chunk
