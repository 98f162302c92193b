"""Position sizing (bible §6): leverage curve, buckets, alpha layers, fraction, ceilings."""

from __future__ import annotations

import numba as nb

BUCKET_EXTREME, BUCKET_STRONG, BUCKET_MODERATE, BUCKET_WEAK = 0, 1, 2, 3
STREAK_WINDOW = 5
TREND_LAG = 10            # vd_trend = history[-1] - history[-10]
TREND_LEVEL = 0.01
MIN_FRACTION = 0.02
DC_LEVERAGE_BOOST = 1.0   # §4.2: no DC boost in the champion


@nb.njit(cache=True)
def cubic_leverage(strength: float, min_leverage: float, max_leverage: float, convexity: float) -> float:
    """§6.2: min + strength**convexity * (max - min); [0.5, 5.0] for the champion."""
    return min_leverage + strength ** convexity * (max_leverage - min_leverage)


@nb.njit(cache=True)
def signal_bucket(vel_div: float, threshold: float, extreme: float, direction: int) -> int:
    """§6.3 bucket: extreme beyond 1.5x extreme, strong beyond extreme, moderate past the midpoint."""
    d = -1.0 if direction < 0 else 1.0
    x = d * vel_div
    if x >= d * extreme * 1.5:
        return BUCKET_EXTREME
    if x >= d * extreme:
        return BUCKET_STRONG
    if x >= d * (threshold + extreme) / 2.0:
        return BUCKET_MODERATE
    return BUCKET_WEAK


@nb.njit(cache=True)
def bucket_boost(wins: int, trades: int, min_trades: int) -> float:
    """§6.4: adaptive win-rate feedback per bucket; neutral until the bucket has history."""
    if trades < min_trades or trades <= 0:
        return 1.0
    wr = wins / trades
    if wr > 0.60:
        return 1.3
    if wr > 0.55:
        return 1.1
    if wr < 0.40:
        return 0.7
    if wr < 0.45:
        return 0.85
    return 1.0


@nb.njit(cache=True)
def streak_mult(losses_in_window: int, closed_trades: int, min_trades: int) -> float:
    """§6.4: losses among the last 5 closed trades; neutral until enough trades exist."""
    if closed_trades < min_trades:
        return 1.0
    if losses_in_window >= 4:
        return 0.5
    if losses_in_window >= 3:
        return 0.7
    if losses_in_window <= 1:
        return 1.1
    return 1.0


@nb.njit(cache=True)
def trend_mult(vd_trend: float, direction: int) -> float:
    """§6.4: deepening signal (vel_div moving further past the gate) 1.3x, recovering 0.7x."""
    if vd_trend != vd_trend:  # NaN: not enough history
        return 1.0
    deepening = (-vd_trend if direction < 0 else vd_trend)
    if deepening > TREND_LEVEL:
        return 1.3
    if deepening < -TREND_LEVEL:
        return 0.7
    return 1.0


@nb.njit(cache=True)
def effective_fraction(strength: float, extreme: bool, base_fraction: float, trend: float,
                       bucket: float, streak: float) -> float:
    """§6.4: base fraction scaled by confidence, extreme boost and the alpha layers, in [0.02, base]."""
    confidence = 0.70 if extreme else 0.55
    conf_mult = confidence / 0.95
    extreme_boost = 2.0 if extreme else 1.0
    base_frac = MIN_FRACTION + strength * (base_fraction - MIN_FRACTION)
    frac = base_frac * conf_mult * extreme_boost * trend * bucket * streak
    if frac < MIN_FRACTION:
        return MIN_FRACTION
    if frac > base_fraction:
        return base_fraction
    return frac


@nb.njit(cache=True)
def regime_size_mult(vel_div: float, threshold: float, extreme: float, convexity: float,
                     base_boost: float, beta: float, mc_scale: float) -> float:
    """§6.5 / §10.4 ACB scale 2: base_boost * (1 + beta * strength**convexity) * mc_scale."""
    if beta > 0.0:
        ratio = 0.0
        if vel_div == vel_div:
            ratio = (vel_div - threshold) / (extreme - threshold)
            if ratio < 0.0:
                ratio = 0.0
            elif ratio > 1.0:
                ratio = 1.0
        return base_boost * (1.0 + beta * ratio ** convexity) * mc_scale
    return base_boost * mc_scale


@nb.njit(cache=True)
def final_leverage(size_leverage: float, dc_mult: float, rsm: float, market_ob_mult: float,
                   max_leverage: float, abs_max_leverage: float, min_leverage: float,
                   stalker: bool, stalker_cap: float) -> float:
    """§6.5: leverage after ACB/OB scaling, clamped to [min, min(max*rsm*ob, abs_max)], STALKER cap."""
    ceiling = min(max_leverage * rsm * market_ob_mult, abs_max_leverage)
    if stalker:
        ceiling = min(ceiling, stalker_cap)
    if ceiling < min_leverage:
        ceiling = min_leverage
    raw = size_leverage * dc_mult * rsm * market_ob_mult
    if raw < min_leverage:
        return min_leverage
    if raw > ceiling:
        return ceiling
    return raw


@nb.njit(cache=True)
def market_ob_multiplier(market_imbalance: float, direction: int) -> float:
    """OB sub-3: market-wide imbalance on the trade's side, +20 % / -15 % at most."""
    eff = direction * market_imbalance
    m = 1.0 + eff
    if m < 0.85:
        return 0.85
    if m > 1.20:
        return 1.20
    return m
