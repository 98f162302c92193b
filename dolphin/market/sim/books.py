"""Synthetic order books: depth5 (or deeper) snapshots around the price, all symbols at once.

A book is a pure function of (seed, symbol, 100 ms time bucket) and the price path, so
the same seed and start give the same books at the same simulated time, whatever was
subscribed or skipped. Per symbol and bucket:

* **spread**: the symbol's tier spread × noise, floored at one tick (prices move, a tier
  spread can fall below a tick); the last trade price sits inside [bid, ask);
* **levels**: the top 20 per side are redrawn every bucket, 1+ ticks apart, quantities
  from the symbol's depth tier (USD in the top five levels), growing with distance,
  rounded to the step. Each level's draws are keyed by its index, so a book of any depth
  starts with the book of any smaller depth (depth5 is the top of depth1000);
* **deep levels** (21st to 1,000th) sit on a fixed absolute price grid below/above the
  top 20 (a symbol's grid step is half its typical spread), and each one's quantity is
  redrawn once every 10 s at its own phase: deep liquidity is stable, as on a real book,
  so the diff-depth stream carries the top of the book plus a trickle of deep changes.
  Deep quantities follow liquidity withdrawals (quantised) but not the per-second lean;
* **imbalance**: a slowly varying (per second) random lean plus a weak tilt towards the
  next few seconds of the price path — real books lean where price goes, weakly; the OBF
  imbalance features need something real to see;
* **liquidity withdrawal** episodes: seeded per 10-minute window (≈1 in 3 windows) on one
  symbol, a group (~15 %) or the whole market, depth falls to 8–38 % and the spread
  widens 2–5× for 30–180 s, ramping in and out;
* **panic withdrawals** (the synthetic market's instability episodes): market makers see
  a panic coming and leave before it. Through an episode's precursor every symbol's book
  leaks up to 30 % of the episode's severity; at the fracture (the correlation break
  that precedes the panic) the makers pull the rest within `PULL_MS`; the book stays thin
  through the panic and refills over the first 30 % of the recovery. Severity grows with
  the episode's move (40–75 % of the depth; half that for a false alarm), each symbol
  takes part with its own share (60–100 %), and spreads widen with it;
* **cascades**: where the 1 s path has moved more than 2.5 typical 30 s moves within the
  last 30 s (in the synthetic market: each instability episode's panic), the side being
  hit thins by up to 85 %, the other side by up to 40 % (makers pull both), and the
  spread widens — thinning with price acceleration, as in a liquidation cascade.

Together they make the OBF features move where the strategy trades: depth quality
falls before a panic, withdrawal velocity turns sharply negative at its fracture and
cascades appear across assets in it, so the OB regime (docs/obf.md) leaves CALM there.

Our own fills do not change later books (no market impact): the market stays
deterministic and the same for every client.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from dolphin.market.sim import rand
from dolphin.market.sim.source import MarketSource
from dolphin.market.symbols import MAX_UNIVERSE, PRIORITY_SYMBOLS

BUCKET_MS = 100
WINDOW_MS = 600_000
MAX_LEVELS = 1000
"""Depth of the simulated book per side (REST ``/fapi/v1/depth`` serves up to this limit)."""
SHALLOW_LEVELS = 20
DEEP_REFRESH_MS = 10_000
_DEEP_SHARE = 0.05
_LEVEL_SHARE = np.array([0.12, 0.16, 0.20, 0.24, 0.28])
_LOOKAHEAD_MS = 5_000
_LOOKBACK_MS = 30_000
PULL_MS = 10_000
"""How fast makers pull their books at a fracture (market time)."""
_LEAK_SHARE = 0.3            # of an episode's severity, leaked through its precursor
_REFILL_SHARE = 0.3          # of the recovery phase, over which books refill
_HIT_SIDE_THIN = 0.85        # cascade: the side being hit thins by up to this
_OTHER_SIDE_THIN = 0.40      # … and the other side by up to this


@dataclass(frozen=True, slots=True)
class Books:
    """Books of ``symbols`` (columns) at ``t_ms``: prices and quantities (m, levels) per side.

    Prices are on each symbol's tick grid (``*_ticks`` are the integer tick counts),
    quantities on its step grid, best level first. ``update_id`` is the bucket number.
    """

    t_ms: int
    update_id: int
    columns: np.ndarray
    bid_ticks: np.ndarray
    ask_ticks: np.ndarray
    bid_px: np.ndarray
    ask_px: np.ndarray
    bid_qty: np.ndarray
    ask_qty: np.ndarray
    withdrawal: np.ndarray
    cascade: np.ndarray

    def row(self, i: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """(bids, asks) of the i-th symbol as (price, qty) lists."""
        bids = list(zip(self.bid_px[i].tolist(), self.bid_qty[i].tolist(), strict=True))
        asks = list(zip(self.ask_px[i].tolist(), self.ask_qty[i].tolist(), strict=True))
        return bids, asks


@dataclass(frozen=True, slots=True)
class _Top:
    bucket: int
    t: int
    keys: np.ndarray
    scale: np.ndarray
    mid: np.ndarray
    u: np.ndarray
    withdraw: np.ndarray
    cascade: np.ndarray
    falling: np.ndarray
    bid_ticks: np.ndarray
    ask_ticks: np.ndarray


@dataclass(frozen=True, slots=True)
class _Panic:
    """Market times of one instability episode, as the book model uses them."""

    onset_bar: int
    start_ms: int
    onset_ms: int
    panic_end_ms: int
    refilled_ms: int
    severity: float


@dataclass(frozen=True, slots=True)
class _Episode:
    start_ms: int
    end_ms: int
    depth_factor: float
    spread_factor: float
    scope: str
    symbol_key: int


class BookModel:
    """Computes `Books` for any subset of a source's symbols at any time (vectorised)."""

    def __init__(self, seed: int, source: MarketSource, *, panic_withdrawals: bool = True) -> None:
        self.seed = int(seed)
        self.source = source
        # off: the books before makers pulled around panics — no pull ahead of a panic, a cascade
        # thins only the side being hit (the baseline of benchmarks/ob_regimes.py)
        self.panic_withdrawals = panic_withdrawals
        ins = source.instruments
        self.keys = np.array([i.key for i in ins], dtype=np.int64)
        self.scale = np.array([float(10**i.price_decimals) for i in ins])
        self.step = np.array([i.step for i in ins])
        self.spread_bps = np.array([i.spread_bps for i in ins])
        self.depth_usd = np.array([i.depth_usd for i in ins])
        self.vol30_bps = np.array([i.vol_bps_5s for i in ins]) * np.sqrt(6.0)
        self.qty_scale = np.array([float(10 ** max(0, i.qty_decimals)) for i in ins])
        ref = np.asarray(source.price_at(source.first_ms), dtype=float)
        self.grid = np.maximum(1, np.rint(self.spread_bps * ref * self.scale / 2e4)).astype(np.int64)
        self._episodes: dict[int, tuple[_Episode, ...]] = {}
        self._panics: dict[int, tuple[_Panic, ...]] = {}
        self._lock = threading.Lock()

    # -- episodes -----------------------------------------------------------------------

    def episodes(self, window: int) -> tuple[_Episode, ...]:
        """Liquidity-withdrawal episodes starting in 10-minute window ``window`` (seeded)."""
        with self._lock:
            found = self._episodes.get(window)
            if found is not None:
                return found
        u = rand.uniform(self.seed, rand.WITHDRAWAL, window, np.arange(8)).tolist()
        episodes: tuple[_Episode, ...] = ()
        if u[0] < 0.35:
            scope = "symbol" if u[1] < 0.5 else ("group" if u[1] < 0.8 else "market")
            start = window * WINDOW_MS + int(u[2] * (WINDOW_MS - 60_000))
            duration = 30_000 + int(u[3] * 150_000)
            key = (int(u[6] * len(PRIORITY_SYMBOLS)) if u[7] < 0.5 else int(u[6] * MAX_UNIVERSE))
            episodes = (_Episode(start, start + duration, 0.08 + 0.3 * u[4], 2.0 + 3.0 * u[5], scope, key),)
        with self._lock:
            self._episodes[window] = episodes
            if len(self._episodes) > 64:
                self._episodes.pop(next(iter(self._episodes)))
        return episodes

    def panics(self, t_ms: int) -> tuple[_Panic, ...]:
        """The source's instability episodes around ``t_ms`` in market time (cached per hour)."""
        hour = int(t_ms) // 3_600_000
        with self._lock:
            found = self._panics.get(hour)
            if found is not None:
                return found
        src = self.source
        panics = []
        for e in src.instability_episodes(t_ms):
            severity = min(0.75, max(0.4, 0.35 + 15.0 * e.move))
            if e.direction == 0:
                severity *= 0.5  # a false alarm: the fracture scares makers, no panic follows
            panic_end = e.onset_bar + e.fracture_bars + e.panic_bars
            refill = panic_end + max(1, int(_REFILL_SHARE * e.recovery_bars))
            panics.append(_Panic(e.onset_bar, src.bar_open_ms(e.start_bar), src.bar_open_ms(e.onset_bar),
                                 src.bar_open_ms(panic_end), src.bar_open_ms(refill), severity))
        found = tuple(panics)
        with self._lock:
            self._panics[hour] = found
            if len(self._panics) > 64:
                self._panics.pop(next(iter(self._panics)))
        return found

    def _panic_pull(self, keys: np.ndarray, t_ms: int) -> np.ndarray | None:
        """Share of each symbol's book its makers have pulled around a panic at ``t_ms`` (None: no episode)."""
        pulled: np.ndarray | None = None
        if not self.panic_withdrawals:
            return None
        for p in self.panics(t_ms):
            if not p.start_ms <= t_ms < p.refilled_ms:
                continue
            if t_ms < p.onset_ms:
                stage = _LEAK_SHARE * (t_ms - p.start_ms) / max(1, p.onset_ms - p.start_ms)
            elif t_ms < p.onset_ms + PULL_MS:
                stage = _LEAK_SHARE + (1.0 - _LEAK_SHARE) * (t_ms - p.onset_ms) / PULL_MS
            elif t_ms < p.panic_end_ms:
                stage = 1.0
            else:
                stage = 1.0 - (t_ms - p.panic_end_ms) / max(1, p.refilled_ms - p.panic_end_ms)
            share = 0.6 + 0.4 * rand.uniform(self.seed, rand.PANIC, p.onset_bar, keys)
            pull = p.severity * share * stage
            pulled = pull if pulled is None else 1.0 - (1.0 - pulled) * (1.0 - pull)
        return pulled

    def _withdrawal(self, keys: np.ndarray, t_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """(depth multiplier, spread multiplier) per symbol from withdrawal episodes and panics."""
        depth = np.ones(keys.shape[0])
        spread = np.ones(keys.shape[0])
        pulled = self._panic_pull(keys, t_ms)
        if pulled is not None:
            depth = depth * (1.0 - pulled)
            spread = spread * (1.0 + 1.5 * pulled)
        window = t_ms // WINDOW_MS
        for w in (window - 1, window):
            for ep in self.episodes(w):
                if not ep.start_ms <= t_ms < ep.end_ms:
                    continue
                length = ep.end_ms - ep.start_ms
                ramp = min(1.0, (t_ms - ep.start_ms) / (0.2 * length), (ep.end_ms - t_ms) / (0.2 * length))
                if ep.scope == "market":
                    hit = np.ones(keys.shape[0], dtype=bool)
                elif ep.scope == "group":
                    hit = rand.uniform(self.seed, rand.WITHDRAWAL, w, keys, 99) < 0.15
                else:
                    hit = keys == ep.symbol_key
                depth = np.where(hit, depth * (1.0 - (1.0 - ep.depth_factor) * ramp), depth)
                spread = np.where(hit, spread * (1.0 + (ep.spread_factor - 1.0) * ramp), spread)
        return depth, spread

    def cascade(self, columns: np.ndarray, t_ms: int) -> np.ndarray:
        """Signed cascade intensity per symbol at ``t_ms``: −1…0 falling, 0…1 rising (0 = calm)."""
        cols = np.asarray(columns, dtype=np.int64)
        src = self.source
        t = int(t_ms) // BUCKET_MS * BUCKET_MS
        mid = src.price_at(t)[cols]
        behind = src.price_at(max(src.first_ms, t - _LOOKBACK_MS))[cols]
        move_bps = (mid - behind) / behind * 1e4
        level = np.clip((np.abs(move_bps) / self.vol30_bps[cols] - 2.5) / 3.0, 0.0, 1.0)
        return np.where(move_bps < 0, -level, level)

    # -- books --------------------------------------------------------------------------

    def compute(self, columns: np.ndarray, t_ms: int, levels: int = 5) -> Books:
        """Books of the symbols at ``columns`` at simulated time ``t_ms`` (its 100 ms bucket).

        Up to `MAX_LEVELS` per side. Deep bids that would fall to a price of zero ticks
        (very cheap symbols) have quantity 0: they are not part of the book.
        """
        cols = np.asarray(columns, dtype=np.int64)
        L = min(MAX_LEVELS, max(1, int(levels)))
        S = min(L, SHALLOW_LEVELS)
        top = self._top(cols, t_ms, S)
        bucket, t, keys, scale, mid = top.bucket, top.t, top.keys, top.scale, top.mid
        u, withdraw, cascade, falling = top.u, top.withdraw, top.cascade, top.falling
        bid_ticks, ask_ticks = top.bid_ticks, top.ask_ticks
        src = self.source
        ahead = src.price_at(t + _LOOKAHEAD_MS)[cols]
        slow = rand.uniform(self.seed, rand.BOOK, keys, t // 1000, 1_000_000)

        lean = (slow - 0.5) * 0.4 + np.clip(0.15 * (ahead - mid) / mid * 1e4 / self.vol30_bps[cols] * np.sqrt(6.0),
                                            -0.35, 0.35)
        side_usd = self.depth_usd[cols] * withdraw
        hit = 1.0 - _HIT_SIDE_THIN * cascade
        other = 1.0 - _OTHER_SIDE_THIN * cascade if self.panic_withdrawals else 1.0
        bid_usd = side_usd * (1.0 + lean) * np.where(falling, hit, other)
        ask_usd = side_usd * (1.0 - lean) * np.where(falling, other, hit)
        share = _LEVEL_SHARE if S <= 5 else np.concatenate([_LEVEL_SHARE, 0.28 * 1.1 ** np.arange(1, S - 4)])
        share = share[:S][None, :]
        step = self.step[cols][:, None]
        qty_scale = self.qty_scale[cols][:, None]
        bid_noise = 0.5 + u[:, 4::4]
        ask_noise = 0.5 + u[:, 5::4]
        bid_px = bid_ticks / scale[:, None]
        ask_px = ask_ticks / scale[:, None]
        bid_units = np.maximum(1, np.floor(bid_usd[:, None] * share * bid_noise / bid_px / step))
        ask_units = np.maximum(1, np.floor(ask_usd[:, None] * share * ask_noise / ask_px / step))
        bid_qty = np.rint(bid_units * step * qty_scale) / qty_scale
        ask_qty = np.rint(ask_units * step * qty_scale) / qty_scale
        if L > S:
            deep = self._deep(cols, keys, t, L - S, bid_ticks[:, -1], ask_ticks[:, -1], np.round(withdraw * 20) / 20)
            bid_ticks = np.concatenate([bid_ticks, deep[0]], axis=1)
            ask_ticks = np.concatenate([ask_ticks, deep[1]], axis=1)
            bid_qty = np.concatenate([bid_qty, deep[2]], axis=1)
            ask_qty = np.concatenate([ask_qty, deep[3]], axis=1)
            bid_px = bid_ticks / scale[:, None]
            ask_px = ask_ticks / scale[:, None]
        return Books(t, bucket, cols, bid_ticks, ask_ticks, bid_px, ask_px, bid_qty, ask_qty, withdraw,
                     np.where(cascade > 0, np.where(falling, -cascade, cascade), 0.0))

    def _top(self, cols: np.ndarray, t_ms: int, S: int) -> _Top:
        """Prices of the top ``S`` levels (and what their quantities need) at ``t_ms``'s bucket."""
        bucket = int(t_ms) // BUCKET_MS
        t = bucket * BUCKET_MS
        src = self.source
        keys = self.keys[cols]
        scale = self.scale[cols]
        mid = src.price_at(t)[cols]
        behind = src.price_at(max(src.first_ms, t - _LOOKBACK_MS))[cols]
        # draw j of level k is column 2 + 4k + j: the same whatever the depth asked for
        u = rand.uniform(self.seed, rand.BOOK, keys[:, None], bucket, np.arange(2 + 4 * S)[None, :])
        withdraw, widen = self._withdrawal(keys, t)
        move_bps = (mid - behind) / behind * 1e4
        z = np.abs(move_bps) / self.vol30_bps[cols]
        cascade = np.clip((z - 2.5) / 3.0, 0.0, 1.0)
        falling = move_bps < 0
        spread_px = mid * self.spread_bps[cols] * (0.8 + 0.4 * u[:, 0]) * widen * (1.0 + 2.0 * cascade) / 1e4
        n_ticks = np.maximum(1, np.ceil(spread_px * scale - 1e-9)).astype(np.int64)
        k_mid = np.rint(mid * scale).astype(np.int64)
        bid0 = k_mid - np.floor(u[:, 1] * n_ticks).astype(np.int64)
        ask0 = bid0 + n_ticks
        max_gap = np.maximum(1, n_ticks // 2)[:, None]
        bid_gap = 1 + np.floor(u[:, 2::4] * max_gap).astype(np.int64)
        ask_gap = 1 + np.floor(u[:, 3::4] * max_gap).astype(np.int64)
        bid_gap[:, 0] = 0
        ask_gap[:, 0] = 0
        bid_ticks = np.maximum(1, bid0[:, None] - np.cumsum(bid_gap, axis=1))
        ask_ticks = ask0[:, None] + np.cumsum(ask_gap, axis=1)
        return _Top(bucket, t, keys, scale, mid, u, withdraw, cascade, falling, bid_ticks, ask_ticks)

    def prices(self, columns: np.ndarray, t_ms: int, levels: int = MAX_LEVELS) -> tuple[np.ndarray, np.ndarray]:
        """(bid ticks, ask ticks) of the levels of `compute` at ``t_ms``, without their quantities (cheap).

        Deep bids at zero ticks or below (not part of the book) come back as 0.
        """
        cols = np.asarray(columns, dtype=np.int64)
        L = min(MAX_LEVELS, max(1, int(levels)))
        S = min(L, SHALLOW_LEVELS)
        top = self._top(cols, t_ms, S)
        if L == S:
            return top.bid_ticks, top.ask_ticks
        grid = self.grid[cols][:, None]
        j = np.arange(L - S, dtype=np.int64)[None, :]
        deep_bid = ((top.bid_ticks[:, -1:] - 1) // grid - j) * grid
        deep_ask = (top.ask_ticks[:, -1:] // grid + 1 + j) * grid
        return (np.concatenate([top.bid_ticks, np.maximum(deep_bid, 0)], axis=1),
                np.concatenate([top.ask_ticks, deep_ask], axis=1))

    def _deep(self, cols: np.ndarray, keys: np.ndarray, t: int, n: int, last_bid: np.ndarray, last_ask: np.ndarray,
              withdraw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(bid ticks, ask ticks, bid qty, ask qty) of ``n`` deep levels on each symbol's grid."""
        grid = self.grid[cols][:, None]
        j = np.arange(n, dtype=np.int64)[None, :]
        bid_g = (last_bid[:, None] - 1) // grid - j
        ask_g = last_ask[:, None] // grid + 1 + j
        bid_ticks = bid_g * grid
        ask_ticks = ask_g * grid
        scale = self.scale[cols][:, None]
        step = self.step[cols][:, None]
        qty_scale = self.qty_scale[cols][:, None]
        usd = (self.depth_usd[cols] * withdraw * _DEEP_SHARE)[:, None]
        out = []
        for side, g, ticks in ((0, bid_g, bid_ticks), (1, ask_g, ask_ticks)):
            phase = rand.uniform(self.seed, rand.DEEP, keys[:, None], g, side, 0)
            epoch = np.floor((t + phase * DEEP_REFRESH_MS) / DEEP_REFRESH_MS).astype(np.int64)
            noise = rand.uniform(self.seed, rand.DEEP, keys[:, None], g, side, epoch + 1)
            px = np.maximum(ticks, 1) / scale
            units = np.maximum(1, np.floor(usd * (0.5 + noise) / px / step))
            qty = np.rint(units * step * qty_scale) / qty_scale
            out.append(np.where(ticks >= 1, qty, 0.0))
        return np.maximum(bid_ticks, 0), ask_ticks, out[0], out[1]
