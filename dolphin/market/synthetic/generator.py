"""One chunk (an hour) of prices: the factor model, drawn at 1-second resolution.

Why 1-second sub-steps: the simulator exchange serves 1 s ticks, aggTrades and live
kline updates inside each bar, and they must agree with the bar exactly. So the 1 s path
is the primary object and a bar's open/high/low/close are its first, highest, lowest and
last points — consistent by construction, for any ``bar_seconds``.

Model of the simple return of symbol ``i`` over second ``k`` of bar ``t``::

    r = beta_i * (loading_t * market_vol_t * s_m * x_tk + drift_t / S)
        + idio_vol_t * s_i * tail_ti * e_tki + symbol_drift_ti / S + pull_i / S

``x_tk`` splits a bar-level market shock over the ``S`` seconds with a Brownian bridge
(the shock is a blend of uniform and normal: thin-tailed in calm, see
``SyntheticConfig.market_shock_uniform``); ``e`` are standard normals; ``tail`` is a
discrete scale mixture (0.8 / 1.5 / 3.0 with probabilities 86 / 12 / 2 %, unit
variance, kurtosis ≈ 7.7) drawn per bar and symbol, so bar returns are fat-tailed.
``pull`` is a weak per-chunk mean reversion of each price towards its base level (time
constant ~10 days), so a market that streams for months keeps realistic magnitudes.

Prices compound multiplicatively (``cumprod``) from the chunk's carried-in level, and only
IEEE-exact operations (+ − × ÷ √, min/max, rint) touch them, so the same chunk is the
same bits on every machine. Prices are rounded to the tick grid, quantities to the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import streams
from .config import SyntheticConfig
from .instruments import SpecArrays
from .regimes import RegimeArrays

_TAIL_LEVELS = (0.8, 1.5, 3.0)
_TAIL_CUTS = (0.86, 0.98)
_PULL_PER_CHUNK = 1.0 / 240.0
"""Share of a price's (log) distance from its base level removed per hour."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """A generated chunk: the rounded 1 s path, bar volumes and the carried-out level.

    ``path`` is (bars * S + 1, n): row ``t * S + k`` is the price ``k`` seconds into bar
    ``t``; row ``t * S`` is bar ``t``'s open and row ``(t + 1) * S`` its close (= the next
    bar's open). ``carry`` is the unrounded last price, the next chunk's starting level.
    """

    path: np.ndarray
    volume: np.ndarray
    carry: np.ndarray


def simulate_chunk(cfg: SyntheticConfig, specs: SpecArrays, regime: RegimeArrays,
                   chunk: int, carry: np.ndarray) -> Chunk:
    """Generate chunk ``chunk`` (bars ``[chunk * T, (chunk + 1) * T)``) from level ``carry``."""
    t_len = cfg.bars_per_chunk
    s_len = cfg.bar_seconds
    n = specs.beta.size
    bar_scale = np.sqrt(s_len / 5.0)  # volatilities are quoted per 5 s
    sub_scale = 1.0 / np.sqrt(float(s_len))

    # Market factor: a bar shock spread over the bar's seconds by a Brownian bridge.
    g = streams.rng(cfg.seed, streams.MARKET, chunk)
    u = g.random(t_len)
    z = g.standard_normal(t_len)
    bridge = g.standard_normal((t_len, s_len))
    shock = (np.sqrt(cfg.market_shock_uniform) * np.sqrt(3.0)) * (2.0 * u - 1.0) \
        + np.sqrt(1.0 - cfg.market_shock_uniform) * z
    bridge_mean = bridge[:, 0].copy()
    for k in range(1, s_len):
        bridge_mean += bridge[:, k]
    bridge_mean /= s_len
    steps = shock[:, None] / s_len + (bridge - bridge_mean[:, None]) * sub_scale
    market_sd = (cfg.market_vol_bps * 1e-4 * bar_scale) * regime.market_vol * regime.loading
    market = steps * market_sd[:, None] + (regime.market_drift / s_len)[:, None]

    # Idiosyncratic shocks, drawn in fixed blocks of symbols so columns never depend on n.
    noise, tail_u, volume_u = _idiosyncratic_draws(cfg, chunk, t_len, s_len, n)
    tail = np.where(tail_u < _TAIL_CUTS[0], _TAIL_LEVELS[0],
                    np.where(tail_u < _TAIL_CUTS[1], _TAIL_LEVELS[1], _TAIL_LEVELS[2]))
    idio_sd = (specs.idio_vol_bps * (1e-4 * bar_scale * sub_scale))[None, :] * regime.idio_vol[:, None] * tail
    pull = -_PULL_PER_CHUNK * _log_ratio(carry, specs.base_price) / t_len
    drift = (regime.symbol_drift + pull[None, :]) / s_len

    returns = noise
    returns *= idio_sd[:, None, :]
    returns += market[:, :, None] * specs.beta[None, None, :]
    returns += drift[:, None, :]
    np.maximum(returns, -0.5, out=returns)
    returns += 1.0

    prices = np.empty((t_len * s_len + 1, n))
    prices[0] = carry
    prices[1:] = returns.reshape(t_len * s_len, n)
    np.multiply.accumulate(prices, axis=0, out=prices)
    out_carry = prices[-1].copy()

    bar_return = np.abs(prices[s_len::s_len] / prices[:-1:s_len] - 1.0)
    path = np.rint(prices * specs.price_scale) / specs.price_scale
    np.maximum(path, specs.min_price, out=path)

    # Volume follows activity and the bar's own move relative to its expected size.
    expected = np.sqrt((market_sd[:, None] * specs.beta[None, :]) ** 2
                       + (idio_sd * np.sqrt(float(s_len))) ** 2)
    usd = (specs.volume_usd_per_second * s_len)[None, :] * regime.activity[:, None] \
        * (0.4 + 0.6 * bar_return / expected) * (0.5 + volume_u)
    qty = usd / path[s_len::s_len]
    volume = np.rint(qty * specs.qty_mult / specs.qty_div) * specs.qty_div / specs.qty_mult
    return Chunk(path, volume, out_carry)


def _idiosyncratic_draws(cfg: SyntheticConfig, chunk: int, t_len: int, s_len: int,
                         n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    block = streams.SYMBOL_BLOCK
    n_blocks = -(-n // block)
    noise = np.empty((t_len, s_len, n_blocks * block))
    tail_u = np.empty((t_len, n_blocks * block))
    volume_u = np.empty((t_len, n_blocks * block))
    for b in range(n_blocks):
        g = streams.rng(cfg.seed, streams.IDIO, chunk, b)
        cols = slice(b * block, (b + 1) * block)
        noise[:, :, cols] = g.standard_normal((t_len, s_len, block))
        tail_u[:, cols] = g.random((t_len, block))
        volume_u[:, cols] = g.random((t_len, block))
    if n_blocks * block != n:
        return np.ascontiguousarray(noise[:, :, :n]), tail_u[:, :n], volume_u[:, :n]
    return noise, tail_u, volume_u


def _log_ratio(x: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``ln(x / base)`` to second order, ``2 (x − b) / (x + b)``, with IEEE-exact ops only."""
    return 2.0 * (x - base) / (x + base)
