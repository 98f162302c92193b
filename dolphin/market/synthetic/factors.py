"""Daily external factors (the ACB inputs of bible §10.2) and per-symbol funding rates.

Why they follow the day's latent instability: ACB v6 raises size on days whose macro
factors are bearish, on the evidence that such days carry more instability. A synthetic
market whose factors were independent of its episodes would make ACB pure noise, so each
factor is a linear function of the day's instability plus seeded noise, clipped to its
realistic range. At instability 0.5 (an average day) funding is mildly positive, DVOL
≈ 70, Fear & Greed ≈ 42 and the taker ratio ≈ 0.9; stormy days (≥ 0.8) show negative
funding, DVOL ≳ 85, extreme fear and net selling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dolphin.market.symbols import MAX_UNIVERSE

from . import streams

FUNDING_PERIOD_MS = 8 * 3_600_000
"""Binance USD-M funding interval (8 h)."""
FUNDING_CAP = 0.003
"""Clamp on any generated funding rate (Binance caps most perps at ±0.3 % … ±2 %)."""


@dataclass(frozen=True, slots=True)
class ExternalFactors:
    """One day's external factors, as ACB v6 reads them (bible §10.2).

    ``funding_btc``: BTC perpetual funding rate per 8 h (≈ ±0.0001);
    ``dvol_btc``: Deribit BTC implied volatility index (35–110);
    ``fng``: Fear & Greed index (5–95); ``taker``: taker buy/sell volume ratio (0.6–1.4).
    """

    funding_btc: float
    dvol_btc: float
    fng: float
    taker: float

    def as_dict(self) -> dict[str, float]:
        """The factors keyed by their ACB names."""
        return asdict(self)


def external_factors(seed: int, day: int, instability: float) -> ExternalFactors:
    """The factors of ``day`` given its latent ``instability`` in [0, 1]."""
    z = streams.rng(seed, streams.EXTERNAL, day).standard_normal(4)
    funding = 1e-4 * (1.1 - 1.9 * instability + 0.5 * float(z[0]))
    dvol = 42.0 + 55.0 * instability + 6.0 * float(z[1])
    fng = 72.0 - 60.0 * instability + 8.0 * float(z[2])
    taker = 1.10 - 0.40 * instability + 0.05 * float(z[3])
    return ExternalFactors(
        funding_btc=round(min(4e-4, max(-4e-4, funding)), 8),
        dvol_btc=round(min(110.0, max(35.0, dvol)), 2),
        fng=float(round(min(95.0, max(5.0, fng)))),
        taker=round(min(1.4, max(0.6, taker)), 4),
    )


def funding_rates(seed: int, day: int, period: int, funding_btc: float,
                  multipliers: np.ndarray) -> np.ndarray:
    """Per-symbol funding rates of 8 h ``period`` (0, 1, 2) of ``day``.

    Each symbol pays the day's BTC funding scaled by its own persistent ``multipliers``
    (from its static properties) plus period noise; BTC (column 0) stays close to the
    day's ``funding_btc``. Rates are rounded to 1e-8, as Binance publishes them.
    """
    n = multipliers.size
    z = streams.rng(seed, streams.FUNDING, day, period).standard_normal(MAX_UNIVERSE)[:n]
    noise = 3e-5 * z
    noise[0] = 1e-5 * z[0]
    rates = funding_btc * multipliers + noise
    return np.rint(np.clip(rates, -FUNDING_CAP, FUNDING_CAP) * 1e8) / 1e8
