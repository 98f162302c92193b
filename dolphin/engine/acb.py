"""ACB v6 (bible §10): external factors → base boost, w750 percentile → dynamic beta.

Scale 2 (the per-bar meta-boost) is `sizing.regime_size_mult`, evaluated inside the bar
loop. This module holds the once-per-day scales. The w750 threshold is the configured
percentile of the *trailing* w750 velocities the engine has seen (not of the whole
dataset, as the bible's preloaded research threshold was), so a replay never looks ahead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dolphin.engine.params import AcbParams

MIN_W750_HISTORY = 100  # fewer trailing values than this → no macro view → beta_low


@dataclass(frozen=True, slots=True)
class ExternalFactors:
    """Daily macro inputs of §10.2; NaN marks a factor that is unavailable (contributes nothing)."""

    funding_btc: float = math.nan
    dvol_btc: float = math.nan
    fng: float = math.nan
    taker: float = math.nan


class ExternalFactorsSource(Protocol):
    def factors_for(self, date: str) -> ExternalFactors | None: ...


@dataclass(frozen=True, slots=True)
class AcbDay:
    """The ACB's verdict for a day: boost and beta, with the inputs that produced them."""

    boost: float
    beta: float
    signals: float
    w750_now: float
    w750_threshold: float


def _level(value: float, strong: bool, mild: bool) -> float:
    if not math.isfinite(value):
        return 0.0
    return 1.0 if strong else 0.5 if mild else 0.0


def acb_signals(f: ExternalFactors, p: AcbParams) -> float:
    """§10.2 signal count: 1.0 per strongly bearish factor, 0.5 per mildly bearish one.

    Fear & Greed "requires confirmation": it counts only when another factor signals too.
    """
    funding = _level(f.funding_btc, f.funding_btc < p.funding_very_bearish, f.funding_btc < p.funding_bearish)
    dvol = _level(f.dvol_btc, f.dvol_btc > p.dvol_extreme, f.dvol_btc > p.dvol_elevated)
    taker = _level(f.taker, f.taker < p.taker_selling, f.taker < p.taker_mild)
    fng = _level(f.fng, f.fng < p.fng_extreme_fear, f.fng < p.fng_fear)
    others = funding + dvol + taker
    return others + (fng if others > 0.0 else 0.0)


def base_boost(signals: float) -> float:
    """§10.2: 1 + 0.5 * ln(1 + signals) once at least one full signal is present, else 1."""
    if signals >= 1.0:
        return 1.0 + 0.5 * math.log1p(signals)
    return 1.0


def w750_threshold(history: np.ndarray, pct: float) -> float:
    """The ``pct`` percentile (numpy linear) of the finite trailing w750 velocities; NaN if too few."""
    finite = history[np.isfinite(history)]
    if finite.size < MIN_W750_HISTORY:
        return math.nan
    return float(np.percentile(finite, pct))


def dynamic_beta(w750_now: float, threshold: float, p: AcbParams, ob_stress: bool = False) -> float:
    """§10.3 beta switch at the threshold; OB sub-4 lifts it by up to 25 % under withdrawal stress."""
    if not (math.isfinite(w750_now) and math.isfinite(threshold)):
        beta = p.beta_low
    else:
        beta = p.beta_high if w750_now >= threshold else p.beta_low
    if ob_stress:
        beta *= 1.0 + p.ob_beta_stress_boost
    return beta


class AdaptiveCircuitBreaker:
    """Daily ACB: boost from an external-factor source, beta from the engine's w750 history."""

    def __init__(self, params: AcbParams, source: ExternalFactorsSource | None = None) -> None:
        self.params = params
        self.source = source

    def day(self, date: str, w750_history: np.ndarray, ob_regime_signal: float = 0.0) -> AcbDay:
        factors = self.source.factors_for(date) if self.source is not None else None
        signals = acb_signals(factors, self.params) if factors is not None else 0.0
        finite = w750_history[np.isfinite(w750_history)]
        now = float(finite[-1]) if finite.size else math.nan
        threshold = w750_threshold(w750_history, self.params.w750_threshold_pct)
        beta = dynamic_beta(now, threshold, self.params, ob_stress=ob_regime_signal == 1.0)
        return AcbDay(boost=base_boost(signals), beta=beta, signals=signals, w750_now=now,
                      w750_threshold=threshold)
