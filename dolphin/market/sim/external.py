"""The simulated market's external factors: a Deribit DVOL and a Fear & Greed index, from its own prices.

ACB v6 reads four external factors (bible §10.2). Two of them are Binance data the
simulator already serves from its own market (funding in ``premiumIndex`` /
``fundingRate``, the taker ratio in ``takerlongshortRatio``). The other two come from
other venues, so the simulator serves them on the same port in those venues' shapes:

* ``GET /api/v2/public/get_volatility_index_data`` — Deribit's DVOL candles
  (``[timestamp, open, high, low, close]``, JSON-RPC envelope, Deribit's errors);
* ``GET /fng/`` — alternative.me's Fear & Greed JSON (``value`` as a string,
  ``value_classification``, ``timestamp`` in seconds, ``time_until_update``).

Both are functions of the simulated prices, so they are deterministic per seed and
consistent with the market they describe:

* **DVOL** at a bar close = the day's level × (1 + 0.2 × max(0, RV₁ₕ / RV₂₄ₕ − 1)), where
  RV is the annualised realised volatility of the reference perpetual (BTCUSDT, else the
  first symbol) over the last hour and the last day of bars. It rises with realised
  volatility and jumps in a panic (an hour at 2× the day's volatility adds 20 %: a few
  points in the synthetic market's panics, under the watchdog's 10-point spike; a scripted
  shock makes the big spikes). The day's level is the synthetic market's daily ``dvol_btc`` (the same factor the
  synthetic backtest's ACB reads), interpolated between day midpoints so it never steps at
  midnight; a replay of real klines has no such level and uses RV₂₄ₕ itself.
* **Fear & Greed**, published on the hour (the real index publishes daily; hourly lets it
  react within a session) = the day's level − 400 × the drawdown of the reference perpetual
  from its trailing 24 h high, clipped to 0–100: 5 % off the high costs 20 points. The
  day's level is the synthetic market's daily ``fng`` (a replay: 50, neutral).

A scripted panic (the loopback admin endpoint ``/sim/v1/shocks``) adds points to either
index from a given market time, decaying linearly to nothing over its duration, so tests
can spike DVOL deterministically. Shocks move these two indices only, never prices.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from dolphin.market.sim.config import DAY_MS
from dolphin.market.sim.source import MarketSource, SyntheticSource
from dolphin.market.sim.wire import Params

HOUR_MS = 3_600_000
DVOL_RV_WEIGHT = 0.2               # share of the short-term volatility excess that reaches DVOL
FNG_DRAWDOWN_POINTS = 400.0        # F&G points per unit of drawdown from the trailing 24 h high
FNG_REPLAY_LEVEL = 50.0
DVOL_BOUNDS = (5.0, 300.0)
MIN_RV_BARS = 12                   # fewer returns than this: no volatility estimate (the day's level alone)
HISTORY_MS = 2 * DAY_MS            # how far back the indices are served (the market's own history is short)
MAX_CANDLES = 1000                 # Deribit's page size; older candles through `continuation`
DERIBIT_RESOLUTIONS: dict[str, int] = {"1": 1_000, "60": 60_000, "3600": HOUR_MS, "43200": 43_200_000,
                                       "1D": DAY_MS}
DVOL_CURRENCIES = {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}
FNG_MAX_LIMIT = 48                 # hourly values kept (two days)


class ForeignApiError(Exception):
    """A request another venue would refuse: its HTTP status and its own error body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def fng_classification(value: int) -> str:
    """alternative.me's bands."""
    if value <= 24:
        return "Extreme Fear"
    if value <= 46:
        return "Fear"
    if value <= 54:
        return "Neutral"
    if value <= 75:
        return "Greed"
    return "Extreme Greed"


class Shock(msgspec.Struct, frozen=True, kw_only=True):
    """A scripted panic: `dvol` and `fng` points added at `start_ms`, fading linearly over `decay_ms`."""

    id: int
    start_ms: int
    dvol: float = 0.0
    fng: float = 0.0
    decay_ms: int = HOUR_MS

    def offset(self, t_ms: np.ndarray, points: float) -> np.ndarray:
        elapsed = t_ms.astype(np.float64) - self.start_ms
        weight = np.where(elapsed < 0, 0.0, np.clip(1.0 - elapsed / max(1, self.decay_ms), 0.0, 1.0))
        return points * weight


class Shocks:
    """The scripted panics of a simulator run (thread-safe: REST handlers and the admin share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Shock] = []
        self._next = 1

    def add(self, start_ms: int, dvol: float, fng: float, decay_ms: int) -> Shock:
        if not (math.isfinite(dvol) and math.isfinite(fng)) or decay_ms <= 0:
            raise ValueError("shock points must be finite and its duration positive")
        with self._lock:
            shock = Shock(id=self._next, start_ms=int(start_ms), dvol=float(dvol), fng=float(fng),
                          decay_ms=int(decay_ms))
            self._next += 1
            self._items.append(shock)
        return shock

    def clear(self) -> int:
        with self._lock:
            n = len(self._items)
            self._items.clear()
        return n

    def items(self) -> list[Shock]:
        with self._lock:
            return list(self._items)

    def offsets(self, t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dvol = np.zeros(t_ms.shape)
        fng = np.zeros(t_ms.shape)
        for s in self.items():
            if s.dvol:
                dvol += s.offset(t_ms, s.dvol)
            if s.fng:
                fng += s.offset(t_ms, s.fng)
        return dvol, fng


class ExternalModel:
    """DVOL and Fear & Greed of a simulated market (see the module docstring)."""

    def __init__(self, source: MarketSource, now_ms: Callable[[], int], shocks: Shocks | None = None) -> None:
        self.source = source
        self.now_ms = now_ms
        self.shocks = shocks if shocks is not None else Shocks()
        self.hour_bars = max(1, HOUR_MS // source.bar_ms)
        self.day_bars = max(1, DAY_MS // source.bar_ms)
        self.annualise = math.sqrt(365.0 * DAY_MS / source.bar_ms) * 100.0
        self._levels: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the model
    def _column(self, symbol: str) -> int:
        ins = self.source.by_symbol.get(symbol)
        return ins.column if ins is not None else 0

    def _day_levels(self, day: int) -> tuple[float, float]:
        """(DVOL, F&G) level of a synthetic day (cached: the factors are a pure function of the day)."""
        src = self.source
        assert isinstance(src, SyntheticSource)
        with self._lock:
            cached = self._levels.get(day)
        if cached is None:
            f = src.market.external_factors(max(0, day))
            cached = (float(f.dvol_btc), float(f.fng))
            with self._lock:
                self._levels[day] = cached
        return cached

    def _levels_at(self, t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Day levels interpolated linearly between day midpoints (no step at midnight); None for a replay."""
        if not isinstance(self.source, SyntheticSource):
            return None
        pos = (t_ms.astype(np.float64) - self.source.first_ms - DAY_MS / 2) / DAY_MS
        lo = np.floor(pos).astype(np.int64)
        frac = pos - lo
        table = {int(d): self._day_levels(int(d)) for d in np.unique(np.concatenate([lo, lo + 1]))}
        dvol = np.array([[table[int(d)][0], table[int(d) + 1][0]] for d in lo]).reshape(-1, 2)
        fng = np.array([[table[int(d)][1], table[int(d) + 1][1]] for d in lo]).reshape(-1, 2)
        return dvol[:, 0] + (dvol[:, 1] - dvol[:, 0]) * frac, fng[:, 0] + (fng[:, 1] - fng[:, 0]) * frac

    def realised_vol(self, first_bar: int, last_bar: int, symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(close time ms, RV over the last hour, RV over the last day) at each bar close in [first, last].

        Annualised, in percent, from the squared log returns of the bars; NaN where fewer than
        `MIN_RV_BARS` returns exist (the market's first minute).
        """
        src = self.source
        start = max(0, first_bar - self.day_bars)
        closes = src.closes(start, last_bar - start + 1, self._column(symbol)).astype(np.float64)
        n = closes.shape[0]
        r2 = np.zeros(n)
        if n > 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.diff(np.log(closes))
            r2[1:] = np.where(np.isfinite(r), r * r, 0.0)
        csum = np.concatenate([[0.0], np.cumsum(r2)])
        idx = np.arange(min(first_bar - start, n), n)

        def rv(width: int) -> np.ndarray:
            lo = np.maximum(1, idx - width + 1)
            count = idx - lo + 1
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.sqrt((csum[idx + 1] - csum[lo]) / np.maximum(count, 1)) * self.annualise
            return np.where(count >= MIN_RV_BARS, out, np.nan)

        close_ms = src.first_ms + (start + idx + 1).astype(np.int64) * src.bar_ms
        return close_ms, rv(self.hour_bars), rv(self.day_bars)

    def dvol_series(self, first_bar: int, last_bar: int, symbol: str = "BTCUSDT") -> tuple[np.ndarray, np.ndarray]:
        """(close time ms, DVOL) at every bar close in [first_bar, last_bar]."""
        close_ms, rv_hour, rv_day = self.realised_vol(first_bar, last_bar, symbol)
        levels = self._levels_at(close_ms)
        if levels is None:   # a replay: the day's own realised volatility is the level
            fallback = float(np.nanmedian(rv_day)) if np.isfinite(rv_day).any() else 50.0
            base = np.where(np.isfinite(rv_day), rv_day, fallback)
        else:
            base = levels[0]
        ok = np.isfinite(rv_hour) & np.isfinite(rv_day) & (np.nan_to_num(rv_day) > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = np.where(ok, np.maximum(0.0, rv_hour / np.where(ok, rv_day, 1.0) - 1.0), 0.0)
        dvol = base * (1.0 + DVOL_RV_WEIGHT * excess) + self.shocks.offsets(close_ms)[0]
        return close_ms, np.round(np.clip(dvol, *DVOL_BOUNDS), 2)

    def drawdown(self, bar: int, symbol: str = "BTCUSDT") -> float:
        """How far the close of `bar` is below the highest close of the day of bars up to it."""
        start = max(0, bar - self.day_bars + 1)
        closes = self.source.closes(start, bar - start + 1, self._column(symbol))
        if closes.size == 0:
            return 0.0
        high = float(np.max(closes))
        return 0.0 if high <= 0 else min(1.0, max(0.0, 1.0 - float(closes[-1]) / high))

    def fng_at(self, hours_ms: np.ndarray, symbol: str = "BTCUSDT") -> np.ndarray:
        """Fear & Greed published at each of ``hours_ms``, from the last bar closed by then."""
        src = self.source
        levels = self._levels_at(hours_ms)
        out = np.empty(hours_ms.shape[0])
        for j, t in enumerate(hours_ms):
            base = FNG_REPLAY_LEVEL if levels is None else float(levels[1][j])
            out[j] = base - FNG_DRAWDOWN_POINTS * self.drawdown(max(0, src.bar_at(int(t)) - 1), symbol)
        out += self.shocks.offsets(hours_ms.astype(np.int64))[1]
        return np.clip(np.round(out), 0, 100)

    # ------------------------------------------------------------------ Deribit
    def volatility_index(self, params: Params) -> dict[str, Any]:
        """``public/get_volatility_index_data``: candles of the index, newest page first (`continuation`)."""
        us_in = int(time.time() * 1e6)
        currency = (params.get("currency") or "").upper()
        for name in ("currency", "start_timestamp", "end_timestamp", "resolution"):
            if not params.get(name):
                raise _deribit_invalid(name, "missing param", us_in)
        if currency not in DVOL_CURRENCIES:
            raise _deribit_invalid("currency", "must be one of " + ", ".join(DVOL_CURRENCIES), us_in)
        res_ms = DERIBIT_RESOLUTIONS.get(params["resolution"])
        if res_ms is None:
            raise _deribit_invalid("resolution", "must be one of " + ", ".join(DERIBIT_RESOLUTIONS), us_in)
        try:
            start, end = int(params["start_timestamp"]), int(params["end_timestamp"])
        except ValueError:
            raise _deribit_invalid("start_timestamp", "must be an integer (ms)", us_in) from None
        src = self.source
        now = int(self.now_ms())
        end = min(end, now)
        start = max(start, now - HISTORY_MS, src.first_ms + src.bar_ms)
        data: list[list[float | int]] = []
        continuation: int | None = None
        if start <= end:
            first_candle = start - start % res_ms
            last_candle = end - end % res_ms
            if (last_candle - first_candle) // res_ms + 1 > MAX_CANDLES:
                first_candle = last_candle - (MAX_CANDLES - 1) * res_ms
                continuation = first_candle - 1
            data = self._candles(max(first_candle, start), first_candle, last_candle, res_ms, end,
                                 DVOL_CURRENCIES[currency])
        us_out = int(time.time() * 1e6)
        return {"jsonrpc": "2.0", "result": {"data": data, "continuation": continuation}, "usIn": us_in,
                "usOut": us_out, "usDiff": us_out - us_in, "testnet": False}

    def _candles(self, start: int, first_candle: int, last_candle: int, res_ms: int, end: int,
                 symbol: str) -> list[list[float | int]]:
        """OHLC per candle: the index at the candle's start (the last bar closed by then) and at each bar
        close inside it, up to `end`. Long candles sample every k-th bar (about a dozen points each)."""
        src = self.source
        last_bar = src.bar_at(end) - 1                       # the last bar closed by `end`
        first_bar = max(0, src.bar_at(start) - 1)
        if last_bar < first_bar:
            return []
        close_ms, values = self.dvol_series(first_bar, last_bar, symbol)
        step = max(1, res_ms // src.bar_ms // 12)
        if step > 1:
            keep = np.zeros(close_ms.shape[0], dtype=bool)
            keep[::step] = True
            keep[-1] = True
            close_ms, values = close_ms[keep], values[keep]
        grid = np.arange(first_candle, last_candle + 1, res_ms, dtype=np.int64)
        opens = np.searchsorted(close_ms, grid, side="right") - 1
        firsts = np.searchsorted(close_ms, grid, side="left")
        stops = np.searchsorted(close_ms, grid + res_ms, side="left")
        out: list[list[float | int]] = []
        for t, o, f, e in zip(grid, opens, firsts, stops, strict=True):
            chunk = values[(o if o >= 0 else f):e]
            if chunk.size:
                out.append([int(t), float(chunk[0]), float(chunk.max()), float(chunk.min()), float(chunk[-1])])
        return out

    # ------------------------------------------------------------------ alternative.me
    def fear_and_greed(self, params: Params) -> dict[str, Any]:
        """``/fng/?limit=N``: the hourly values, newest first (``limit=0``: all the simulator keeps)."""
        fmt = (params.get("format") or "json").lower()
        if fmt != "json":
            raise ForeignApiError(400, {"name": "Fear and Greed Index", "data": [],
                                        "metadata": {"error": "only format=json is served by the simulator"}})
        try:
            limit = int(params.get("limit") or 1)
        except ValueError:
            raise ForeignApiError(400, {"name": "Fear and Greed Index", "data": [],
                                        "metadata": {"error": "limit must be an integer"}}) from None
        if limit <= 0 or limit > FNG_MAX_LIMIT:
            limit = FNG_MAX_LIMIT
        now = int(self.now_ms())
        src = self.source
        hour0 = now - now % HOUR_MS            # published on the UTC hour
        hours = np.array([hour0 - k * HOUR_MS for k in range(limit) if hour0 - k * HOUR_MS >= src.first_ms],
                         dtype=np.int64)
        values = self.fng_at(hours) if hours.size else np.empty(0)
        data = []
        for k, (t, v) in enumerate(zip(hours, values, strict=True)):
            row = {"value": str(int(v)), "value_classification": fng_classification(int(v)),
                   "timestamp": str(int(t) // 1000)}
            if k == 0:
                row["time_until_update"] = str(max(0, (int(t) + HOUR_MS - now) // 1000))
            data.append(row)
        return {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}}

    # ------------------------------------------------------------------ admin
    def add_shock(self, params: Params) -> dict[str, Any]:
        """``POST /sim/v1/shocks?dvol=40&fng=-30&duration=30m``: a scripted panic from now (market time)."""
        from dolphin.market.sim.faults import parse_duration

        try:
            dvol = float(params.get("dvol") or 0.0)
            fng = float(params.get("fng") or 0.0)
            decay = parse_duration(params.get("duration") or "60m")
        except ValueError as exc:
            raise ValueError(f"bad shock: {exc}") from None
        shock = self.shocks.add(int(self.now_ms()), dvol, fng, decay)
        return {"shock": msgspec.to_builtins(shock)}

    def describe_shocks(self) -> dict[str, Any]:
        return {"shocks": [msgspec.to_builtins(s) for s in self.shocks.items()]}


def _deribit_invalid(param: str, reason: str, us_in: int) -> ForeignApiError:
    us_out = int(time.time() * 1e6)
    return ForeignApiError(400, {"jsonrpc": "2.0", "error": {"message": "Invalid params", "code": -32602,
                                                             "data": {"reason": reason, "param": param}},
                                 "usIn": us_in, "usOut": us_out, "usDiff": us_out - us_in, "testnet": False})


def foreign_error_body(path: str, status: int, msg: str) -> dict[str, Any]:
    """An injected failure in the shape of the venue that owns `path` (Deribit or alternative.me)."""
    if path.startswith("/api/v2/"):
        return {"jsonrpc": "2.0", "error": {"message": msg or f"HTTP {status}", "code": 11000 + status},
                "testnet": False}
    return {"name": "Fear and Greed Index", "data": [], "metadata": {"error": msg or f"HTTP {status}"}}
