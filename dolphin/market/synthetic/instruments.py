"""Static per-symbol properties: price level, exchange precision, liquidity and factor exposure.

The simulator exchange serves ``exchangeInfo`` filters (tick size, step size) and
synthesises depth5 books from the spread and depth tiers; the generator uses the beta,
idiosyncratic volatility and volume level. Every property of symbol ``i`` depends only on
``(seed, i)``, never on how many symbols the market has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dolphin.market.symbols import universe

from . import streams

# Reference price levels (USDT, early 2026 magnitudes) of the priority symbols; each seed
# jitters them by up to ±15 %. Other symbols get a seeded small-cap price.
_REFERENCE_PRICES: dict[str, float] = {
    "BTCUSDT": 88_000.0, "ETHUSDT": 3_100.0, "BNBUSDT": 870.0, "SOLUSDT": 135.0,
    "XRPUSDT": 2.05, "ADAUSDT": 0.42, "DOGEUSDT": 0.145, "TRXUSDT": 0.29,
    "AVAXUSDT": 13.5, "LINKUSDT": 13.8, "DOTUSDT": 2.1, "LTCUSDT": 80.0,
    "BCHUSDT": 590.0, "ATOMUSDT": 2.4, "NEARUSDT": 1.7, "UNIUSDT": 5.9,
    "ETCUSDT": 13.0, "FILUSDT": 1.45, "APTUSDT": 1.7, "ARBUSDT": 0.21,
    "OPUSDT": 0.31, "SUIUSDT": 1.6, "INJUSDT": 5.4, "AAVEUSDT": 175.0,
    "XLMUSDT": 0.23, "HBARUSDT": 0.12, "ICPUSDT": 3.4, "VETUSDT": 0.0115,
    "ALGOUSDT": 0.13, "SANDUSDT": 0.13, "MANAUSDT": 0.15, "AXSUSDT": 1.05,
    "EGLDUSDT": 7.1, "THETAUSDT": 0.31, "XTZUSDT": 0.49, "EOSUSDT": 0.19,
    "GRTUSDT": 0.041, "CRVUSDT": 0.39, "MKRUSDT": 1_650.0, "SNXUSDT": 0.48,
    "COMPUSDT": 26.0, "RUNEUSDT": 0.62, "KAVAUSDT": 0.11, "ZECUSDT": 460.0,
    "DASHUSDT": 41.0, "NEOUSDT": 3.6, "CHZUSDT": 0.034, "ENJUSDT": 0.029,
    "IOTAUSDT": 0.095, "STXUSDT": 0.27,
}

# Liquidity tiers by universe position: (first index of the next tier, spread bps,
# USD depth within the top five levels per side, USD traded per day).
_TIERS: tuple[tuple[int, float, float, float], ...] = (
    (2, 0.2, 4_000_000.0, 12e9),
    (10, 0.6, 800_000.0, 1.5e9),
    (50, 1.5, 200_000.0, 250e6),
    (200, 3.0, 60_000.0, 60e6),
    (10**9, 6.0, 20_000.0, 15e6),
)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One perpetual's static properties.

    ``tick_size`` and ``step_size`` are powers of ten (``10**-price_decimals``,
    ``10**-qty_decimals``; ``qty_decimals`` may be negative for steps of 10, 100, …),
    so generated prices and quantities are exact decimals at that precision.
    ``spread_bps`` is the typical top-of-book spread (at least one tick at the base
    price — floor it at one tick if the price falls) and
    ``depth_usd`` the typical USD notional resting in the top five levels per side.
    ``beta`` (exposure to the market factor) and ``idio_vol_bps`` (idiosyncratic
    volatility per 5 s, calm) drive returns; ``daily_volume_usd`` scales bar volume;
    ``funding_multiplier`` scales the day's BTC funding into this symbol's funding.
    """

    symbol: str
    index: int
    base_price: float
    tick_size: float
    price_decimals: int
    step_size: float
    qty_decimals: int
    spread_bps: float
    depth_usd: float
    beta: float
    idio_vol_bps: float
    daily_volume_usd: float
    funding_multiplier: float


def _decade(x: float) -> int:
    """``floor(log10(x))`` for ``x > 0`` using only exact integer powers (no libm)."""
    e = 0
    while x >= 10 ** (e + 1):
        e += 1
    while x * 10 ** (-e) < 1.0 if e < 0 else x < 10**e:
        e -= 1
    return e


def _round_decimals(x: float, decimals: int) -> float:
    """``x`` rounded to ``decimals`` places, as the nearest double to that decimal."""
    if decimals >= 0:
        scale = float(10**decimals)
        return float(np.rint(x * scale) / scale)
    scale = float(10 ** (-decimals))
    return float(np.rint(x / scale) * scale)


def _tier(index: int) -> tuple[float, float, float]:
    for bound, spread, depth, volume in _TIERS:
        if index < bound:
            return spread, depth, volume
    raise AssertionError("tiers cover every index")


def symbol_spec(seed: int, index: int, symbol: str) -> SymbolSpec:
    """The static properties of the symbol at universe position ``index`` for ``seed``."""
    u = streams.rng(seed, streams.SYMBOL, index).random(8).tolist()
    reference = _REFERENCE_PRICES.get(symbol)
    if reference is None:
        # Small caps: a decade from 1e-4 to 10 (weighted to the cheap end), uniform mantissa.
        decade = (-4, -3, -2, -2, -1, -1, -1, 0, 0, 1)[int(u[0] * 10)]
        reference = (1.0 + 9.0 * u[1]) / 10 ** (-decade) if decade < 0 else (1.0 + 9.0 * u[1]) * 10 ** decade
    price = reference * (0.85 + 0.3 * u[2])
    decade = _decade(price)
    price_decimals = min(8, max(0, (5 if price >= 1000.0 else 4) - decade))
    base_price = _round_decimals(price, price_decimals)
    tick = 1.0 / 10**price_decimals
    qty_decimals = min(3, max(-3, -_decade(10.0 / base_price)))
    step = 1.0 / 10**qty_decimals if qty_decimals >= 0 else float(10 ** (-qty_decimals))
    spread_tier, depth, volume = _tier(index)
    spread = max(spread_tier, 1e4 * tick / base_price)
    if index == 0:
        beta, idio = 1.0, 1.5
    elif index == 1:
        beta, idio = 1.12, 1.8
    else:
        small = index >= 50
        beta = 1.0 + 0.5 * u[3] + (0.15 if small else 0.0)
        idio = 2.4 + 2.2 * u[4] + (1.0 if small else 0.0)
    return SymbolSpec(
        symbol=symbol, index=index, base_price=base_price, tick_size=tick,
        price_decimals=price_decimals, step_size=step, qty_decimals=qty_decimals,
        spread_bps=math.ceil(spread * 1e4) / 1e4, depth_usd=round(depth * (0.7 + 0.6 * u[5]), 0),
        beta=beta, idio_vol_bps=idio, daily_volume_usd=volume * (0.6 + 0.8 * u[6]),
        funding_multiplier=1.0 if index == 0 else 0.6 + 0.8 * float(u[7]),
    )


def symbol_specs(seed: int, n_symbols: int) -> tuple[SymbolSpec, ...]:
    """Specs of the first ``n_symbols`` universe symbols, in universe order."""
    return tuple(symbol_spec(seed, i, name) for i, name in enumerate(universe(n_symbols)))


@dataclass(frozen=True, slots=True)
class SpecArrays:
    """The specs as column vectors, the form the vectorised generator consumes."""

    base_price: np.ndarray
    beta: np.ndarray
    idio_vol_bps: np.ndarray
    price_scale: np.ndarray
    """``10**price_decimals``: multiply, round to integer, divide → on the tick grid."""
    min_price: np.ndarray
    qty_mult: np.ndarray
    qty_div: np.ndarray
    """Quantities round as ``rint(q * mult / div) * div / mult``: exact decimals for
    ``step = 10**-qty_decimals`` (``mult = 10**qty_decimals`` for fractional steps,
    ``div = step`` for steps of 1, 10, 100, …)."""
    volume_usd_per_second: np.ndarray

    @classmethod
    def from_specs(cls, specs: tuple[SymbolSpec, ...]) -> SpecArrays:
        """Stack ``specs`` into float64 column vectors."""
        def col(values: list[float]) -> np.ndarray:
            arr = np.array(values, dtype=np.float64)
            arr.flags.writeable = False
            return arr
        return cls(
            base_price=col([s.base_price for s in specs]),
            beta=col([s.beta for s in specs]),
            idio_vol_bps=col([s.idio_vol_bps for s in specs]),
            price_scale=col([float(10**s.price_decimals) for s in specs]),
            min_price=col([s.tick_size for s in specs]),
            qty_mult=col([float(10 ** max(s.qty_decimals, 0)) for s in specs]),
            qty_div=col([float(10 ** max(-s.qty_decimals, 0)) for s in specs]),
            volume_usd_per_second=col([s.daily_volume_usd / 86_400.0 for s in specs]),
        )
