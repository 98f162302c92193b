"""Signal layer (bible §4): the vel_div gate, its confidence, direction confirmation, OB sub-2.

Direction is a sign: -1 SHORT (champion), +1 LONG. Every formula is written for the
SHORT path of the bible and mirrored for LONG by the sign, so blue and green share code.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba as nb

from dolphin.engine.codes import DC_CONFIRM, DC_CONTRADICT, DC_NEUTRAL
from dolphin.enums import SignalState

if TYPE_CHECKING:
    from dolphin.engine.params import StrategyConfig


@nb.njit(cache=True)
def signal_active(vel_div: float, threshold: float, direction: int) -> bool:
    """SHORT: vel_div < threshold (-0.02). LONG: vel_div > threshold (0.01). NaN never fires."""
    if not math.isfinite(vel_div):
        return False
    if direction < 0:
        return vel_div < threshold
    return vel_div > threshold


@nb.njit(cache=True)
def signal_strength(vel_div: float, threshold: float, extreme: float) -> float:
    """clamp((vel_div - threshold) / (extreme - threshold), 0, 1): 0 at the gate, 1 at extreme.

    For SHORT this is the bible's (threshold - vel_div) / (threshold - extreme); the same
    expression serves LONG because both numerator and denominator flip sign.
    """
    if not math.isfinite(vel_div):
        return 0.0
    ratio = (vel_div - threshold) / (extreme - threshold)
    if ratio < 0.0:
        return 0.0
    if ratio > 1.0:
        return 1.0
    return ratio


@nb.njit(cache=True)
def is_extreme(vel_div: float, extreme: float, direction: int) -> bool:
    if direction < 0:
        return vel_div <= extreme
    return vel_div >= extreme


@nb.njit(cache=True)
def signal_confidence(vel_div: float, threshold: float, extreme: float) -> float:
    """§4.1: 0.50 + ratio * 0.40, in [0.50, 0.90]."""
    return 0.50 + signal_strength(vel_div, threshold, extreme) * 0.40


@nb.njit(cache=True)
def dc_verdict(p0: float, p1: float, min_magnitude_bps: float, direction: int) -> int:
    """§4.2: price change over the DC lookback, in bps, confirms or contradicts the direction.

    A falling price confirms a SHORT; a rising one contradicts it (mirrored for LONG).
    """
    chg_bps = (p1 - p0) / p0 * 10_000.0
    if direction < 0:
        if chg_bps < -min_magnitude_bps:
            return DC_CONFIRM
        if chg_bps > min_magnitude_bps:
            return DC_CONTRADICT
        return DC_NEUTRAL
    if chg_bps > min_magnitude_bps:
        return DC_CONFIRM
    if chg_bps < -min_magnitude_bps:
        return DC_CONTRADICT
    return DC_NEUTRAL


@nb.njit(cache=True)
def ob_confidence_adjust(confidence: float, imbalance_ma5: float, persistence: float,
                         direction: int) -> tuple[float, bool]:
    """§4.3 OB sub-2: (new confidence, hard skip).

    eff_imb is the imbalance seen from the trade's side: sell pressure (negative
    imbalance) helps a SHORT, so eff_imb = direction * imbalance_ma5.
    """
    eff_imb = direction * imbalance_ma5
    if eff_imb > 0.10:
        return confidence * (1.0 + min(0.15, eff_imb * persistence * 0.5)), False
    if eff_imb < -0.15 and persistence > 0.60:
        return confidence, True
    if eff_imb < -0.10:
        return confidence * max(0.85, 1.0 - abs(eff_imb) * persistence * 0.4), False
    return confidence, False


def classify(vel_div: float | None, params: StrategyConfig) -> SignalState:
    """Where `vel_div` stands against the strategy's gate — the same test the bar loop makes (§4.1).

    SIGNAL exactly when the kernel's `signal_active` fires (SHORT: vel_div < threshold,
    strictly), EXTREME when it also reaches the extreme level (SHORT: vel_div <= extreme),
    UNDEFINED when vel_div is missing or not finite. The TUI, the reference engine and any
    report classify through here, so none of them can disagree with the engine.
    """
    if vel_div is None or not math.isfinite(vel_div):
        return SignalState.UNDEFINED
    direction = params.direction_sign
    if not signal_active.py_func(vel_div, params.signal_threshold, direction):
        return SignalState.NONE
    if is_extreme.py_func(vel_div, params.signal_extreme, direction):
        return SignalState.EXTREME
    return SignalState.SIGNAL
