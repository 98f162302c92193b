"""One chunk (an hour) of prices: the factor model drawn per bar, the 1-second path inside each bar on demand.

Stream version 2 (see ``streams.STREAM_VERSION``). The bars are the primary object: each
bar's return is drawn once per symbol, which is all a backtest needs (closes). The 1 s
path inside a bar — what the simulator exchange serves as ticks, aggTrades and live
kline updates — is a Brownian bridge pinned to the bar's open and close, drawn from its
own stream only when OHLC or ticks are asked for; a bar's open, high, low and close are
the first, highest, lowest and last points of its path, so they agree by construction.

Model of the simple return of symbol ``i`` over bar ``t``::

    r = beta_i * (loading_t * market_vol_t * s_m * x_t + drift_t)
        + idio_vol_t * s_i * tail_ti * e_ti + symbol_drift_ti + pull_i

``x_t`` is the bar's market shock (a blend of a uniform and a near-normal, thin-tailed in
calm, see ``SyntheticConfig.market_shock_uniform``); ``e`` are near-normal shocks (a sum
of four uniforms: Irwin–Hall, unit variance, kurtosis 2.7); ``tail`` is a discrete scale
mixture (0.8 / 1.5 / 3.0 with probabilities 86 / 12 / 2 %, unit variance), so bar
returns are fat-tailed. ``pull`` is a weak per-chunk mean reversion of each price towards
its base level (time constant ~10 days), so a market that streams for months keeps
realistic magnitudes.

Why the draws are raw 64-bit words: a normal from NumPy's ziggurat costs ~10 ns and
calls libm's ``exp``/``log1p`` on its rare slow path (the one platform-dependent step
of stream version 1); sixteen-bit fields of a PCG64 word cost a quarter of that, are
integers, and make every generated value a function of IEEE-exact operations only
(+ − × ÷ √, min/max, rint, sequential products). Two words per bar and symbol — one for
the shock, one split into the tail and volume uniforms — and the arithmetic in one
compiled loop: 56 days × 50 symbols take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from . import streams
from .config import SyntheticConfig
from .instruments import SpecArrays
from .regimes import RegimeArrays

_PULL_PER_CHUNK = 1.0 / 240.0
"""Share of a price's (log) distance from its base level removed per hour."""
_IH_SCALE = np.sqrt(3.0) / 4096.0
"""Four 12-bit uniforms summed and centred, times this: unit variance (to 6e-8)."""
_IH_CENTRE = 2.0 * 4095.0
_U53 = 1.0 / 9007199254740992.0
_U32 = 1.0 / 4294967296.0
_U16 = 1.0 / 65536.0
_BLOCK = streams.SYMBOL_BLOCK


@dataclass(slots=True, eq=False)
class Chunk:
    """A generated chunk: rounded closes and the carried-out level; volumes and the 1 s path on demand.

    ``close`` is (bars, n) rounded closes, ``carry`` the unrounded last level (the next
    chunk's start). ``carry_in`` and ``regime`` are the chunk's inputs: volumes and the
    1 s bridge are made from them when first asked for (`complete`). A backtest asks for
    closes only and never pays for the rest.
    """

    index: int
    close: np.ndarray
    carry: np.ndarray
    carry_in: np.ndarray
    regime: RegimeArrays
    volume: np.ndarray | None = None
    path: np.ndarray | None = None


@njit(cache=True, error_model="numpy")
def _near_normal(word: np.uint64) -> float:
    """Irwin–Hall of the four low 12-bit fields of ``word``, centred, unit variance: range ±3.46, kurtosis 2.7."""
    m = np.uint64(0xFFF)
    total = (word & m) + ((word >> np.uint64(12)) & m) + ((word >> np.uint64(24)) & m) + ((word >> np.uint64(36)) & m)
    return (float(np.int64(total)) - _IH_CENTRE) * _IH_SCALE   # via int64: a plain signed conversion


@njit(cache=True, error_model="numpy")
def _high16(word: np.uint64) -> float:
    """The top 16 bits of ``word`` as a uniform in [0, 1)."""
    return float(np.int64(word >> np.uint64(48))) * _U16


@njit(cache=True, error_model="numpy")
def _low32(word: np.uint64) -> float:
    """The low 32 bits of ``word`` as a uniform in [0, 1)."""
    return float(np.int64(word & np.uint64(0xFFFFFFFF))) * _U32


@njit(cache=True, error_model="numpy")
def _bar_kernel(words: np.ndarray, mwords: np.ndarray, carry: np.ndarray, beta: np.ndarray,
                idio_scale: np.ndarray, market_sd: np.ndarray, market_drift: np.ndarray, idio_vol: np.ndarray,
                compensation: np.ndarray, leader_drift: np.ndarray, leader_weights: np.ndarray, pull: np.ndarray,
                uniform_share: float, price_scale: np.ndarray, min_price: np.ndarray, level: np.ndarray,
                close: np.ndarray, idio_sd: np.ndarray, move: np.ndarray) -> None:
    """Bar returns → levels (sequential products) and closes rounded to the tick, in one pass.

    ``words`` (blocks, bars, 10) uint64: per symbol (in blocks of ten) the shock (low 48
    bits) and the tail draw (top 16 bits); ``mwords`` (bars, 2): the market shock's
    uniform and near-normal parts. The symbol drift is factored (see ``RegimeArrays``).
    """
    t_len, n = close.shape
    n_lead = leader_drift.shape[1]
    a = np.sqrt(uniform_share) * np.sqrt(3.0)
    b = np.sqrt(1.0 - uniform_share)
    drift_row = np.empty(n)
    for i in range(n):
        level[0, i] = carry[i]
    for t in range(t_len):
        u = (float(np.int64(mwords[t, 0] >> np.uint64(11))) + 0.5) * _U53
        market = (a * (2.0 * u - 1.0) + b * _near_normal(mwords[t, 1])) * market_sd[t] + market_drift[t]
        vol_t = idio_vol[t]
        prev_row = level[t]
        next_row = level[t + 1]
        for i in range(n):
            d = compensation[i]
            for k in range(n_lead):
                d += leader_drift[t, k] * leader_weights[k, i]
            drift_row[i] = d + pull[i]
        for blk in range(words.shape[0]):
            for col in range(min(_BLOCK, n - blk * _BLOCK)):
                i = blk * _BLOCK + col
                w = words[blk, t, col]
                tail_u = _high16(w)
                tail = 0.8 if tail_u < 0.86 else (1.5 if tail_u < 0.98 else 3.0)
                isd = idio_scale[i] * vol_t * tail
                r = beta[i] * market + isd * _near_normal(w) + drift_row[i]
                if r < -0.5:
                    r = -0.5
                next_row[i] = prev_row[i] * (1.0 + r)
                idio_sd[t, i] = isd
                move[t, i] = abs(r)
        close_row = close[t]
        for i in range(n):   # branch-free: vectorises
            close_row[i] = max(np.rint(next_row[i] * price_scale[i]) / price_scale[i], min_price[i])


@njit(cache=True, error_model="numpy")
def _volume_kernel(words: np.ndarray, beta: np.ndarray, market_sd: np.ndarray, idio_sd: np.ndarray,
                   move: np.ndarray, activity: np.ndarray, volume_usd: np.ndarray, close: np.ndarray,
                   qty_mult: np.ndarray, qty_div: np.ndarray, volume: np.ndarray) -> None:
    """Volume (base asset, on the step grid): the USD rate × activity × the bar's move against its expected size.

    ``words`` (blocks, bars, 10) uint64: the U(0.5, 1.5) noise per bar and symbol.
    """
    t_len, n = close.shape
    for t in range(t_len):
        msd = market_sd[t]
        act = activity[t]
        for blk in range(words.shape[0]):
            for col in range(min(_BLOCK, n - blk * _BLOCK)):
                i = blk * _BLOCK + col
                bm = beta[i] * msd
                isd = idio_sd[t, i]
                usd = volume_usd[i] * act * (0.4 + 0.6 * move[t, i] / np.sqrt(bm * bm + isd * isd)) \
                    * (0.5 + _low32(words[blk, t, col]))
                volume[t, i] = np.rint(usd * qty_mult[i] / qty_div[i] / close[t, i]) * qty_div[i] / qty_mult[i]


@njit(cache=True, error_model="numpy")
def _path_kernel(words: np.ndarray, cwords: np.ndarray, level: np.ndarray, beta: np.ndarray,
                 market_sd: np.ndarray, idio_sd: np.ndarray, price_scale: np.ndarray, min_price: np.ndarray,
                 path: np.ndarray) -> None:
    """The rounded 1 s path of every bar: open and close pinned, a Brownian bridge in between.

    ``words`` (blocks, bars, S, 10) and ``cwords`` (bars, S) uint64: the idiosyncratic
    (symbols in blocks of ten) and common bridge increments. Point k of bar t is the straight line from its open to its close
    plus ``open · (common + idiosyncratic bridge)``, each scaled to the bar's return
    spread per second.
    """
    t_len, s_len = cwords.shape
    n = path.shape[1]
    inv_s = 1.0 / s_len
    per_sec = 1.0 / np.sqrt(float(s_len))
    wc = np.empty(s_len + 1)
    wi = np.empty(s_len + 1)
    for i in range(n):
        p = np.rint(level[0, i] * price_scale[i]) / price_scale[i]
        path[0, i] = p if p >= min_price[i] else min_price[i]
    for t in range(t_len):
        wc[0] = 0.0
        for k in range(s_len):
            wc[k + 1] = wc[k] + _near_normal(cwords[t, k])
        for i in range(n):
            blk, col = divmod(i, _BLOCK)
            wi[0] = 0.0
            for k in range(s_len):
                wi[k + 1] = wi[k] + _near_normal(words[blk, t, k, col])
            p0 = level[t, i]
            p1 = level[t + 1, i]
            sc = beta[i] * market_sd[t] * per_sec
            si = idio_sd[t, i] * per_sec
            for k in range(1, s_len):
                x = k * inv_s
                bridge = sc * (wc[k] - x * wc[s_len]) + si * (wi[k] - x * wi[s_len])
                q = p0 + (p1 - p0) * x + p0 * bridge
                q = np.rint(q * price_scale[i]) / price_scale[i]
                path[t * s_len + k, i] = q if q >= min_price[i] else min_price[i]
            c = np.rint(p1 * price_scale[i]) / price_scale[i]
            path[(t + 1) * s_len, i] = c if c >= min_price[i] else min_price[i]


class Workspace:
    """Scratch arrays of the bar kernel, reused chunk after chunk.

    Why: a fresh (bars, symbols) array per hour is a fresh set of pages the kernel then
    faults in; with glibc returning freed blocks to the OS, that costs more than the
    arithmetic. Not thread-safe: `SyntheticMarket` uses it under its lock.
    """

    def __init__(self, bars: int, n_symbols: int) -> None:
        self.level = np.empty((bars + 1, n_symbols))
        self.idio_sd = np.empty((bars, n_symbols))
        self.move = np.empty((bars, n_symbols))


def _run_bars(cfg: SyntheticConfig, specs: SpecArrays, regime: RegimeArrays, chunk: int, carry: np.ndarray,
              close: np.ndarray, level: np.ndarray, idio_sd: np.ndarray, move: np.ndarray) -> np.ndarray:
    """Run the bar kernel of chunk ``chunk`` from level ``carry``; returns the bars' market return scale."""
    t_len, n = close.shape
    bar_scale = np.sqrt(cfg.bar_seconds / 5.0)  # volatilities are quoted per 5 s
    words, mwords = streams.bar_words(cfg.seed, chunk, t_len, n)
    market_sd = (cfg.market_vol_bps * 1e-4 * bar_scale) * regime.market_vol * regime.loading
    pull = -_PULL_PER_CHUNK * _log_ratio(carry, specs.base_price) / t_len
    _bar_kernel(words, mwords, carry, specs.beta, specs.idio_vol_bps * (1e-4 * bar_scale), market_sd,
                regime.market_drift, regime.idio_vol, regime.compensation, regime.leader_drift,
                regime.leader_weights, pull, float(cfg.market_shock_uniform), specs.price_scale, specs.min_price,
                level, close, idio_sd, move)
    return market_sd


def simulate_chunk(cfg: SyntheticConfig, specs: SpecArrays, regime: RegimeArrays, chunk: int, carry: np.ndarray,
                   workspace: Workspace | None = None) -> Chunk:
    """Generate the closes of chunk ``chunk`` (bars ``[chunk * T, (chunk + 1) * T)``) from level ``carry``."""
    t_len, n = cfg.bars_per_chunk, specs.beta.size
    ws = workspace if workspace is not None else Workspace(t_len, n)
    close = np.empty((t_len, n))
    _run_bars(cfg, specs, regime, chunk, carry, close, ws.level, ws.idio_sd, ws.move)
    return Chunk(index=chunk, close=close, carry=ws.level[-1].copy(), carry_in=carry, regime=regime)


def complete(cfg: SyntheticConfig, specs: SpecArrays, chunk: Chunk) -> None:
    """Add the volumes and the 1 s path to ``chunk`` (once).

    The bar kernel runs again from the chunk's carried-in level (same inputs, same bits)
    for what the closes did not keep: the unrounded levels, the return scales and the
    absolute returns. The path is (bars · S + 1, n) rounded prices; rows t·S and (t+1)·S
    are bar t's open and close.
    """
    if chunk.volume is not None:
        return
    t_len, n = chunk.close.shape
    s_len = cfg.bar_seconds
    ws = Workspace(t_len, n)
    close = np.empty((t_len, n))
    market_sd = _run_bars(cfg, specs, chunk.regime, chunk.index, chunk.carry_in, close, ws.level, ws.idio_sd,
                          ws.move)
    volume = np.empty((t_len, n))
    _volume_kernel(streams.volume_words(cfg.seed, chunk.index, t_len, n), specs.beta, market_sd, ws.idio_sd,
                   ws.move, chunk.regime.activity, specs.volume_usd_per_second * s_len, chunk.close,
                   specs.qty_mult, specs.qty_div, volume)
    words, cwords = streams.path_words(cfg.seed, chunk.index, t_len, s_len, n)
    path = np.empty((t_len * s_len + 1, n))
    _path_kernel(words, cwords, ws.level, specs.beta, market_sd, ws.idio_sd, specs.price_scale, specs.min_price,
                 path)
    chunk.path, chunk.volume = path, volume


def _log_ratio(x: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``ln(x / base)`` to second order, ``2 (x − b) / (x + b)``, with IEEE-exact ops only."""
    return 2.0 * (x - base) / (x + base)
