"""`SyntheticConfig`: everything that identifies one synthetic market.

Two configs that compare equal produce the same market, bit for bit; every field is part
of that identity (no caches or performance knobs live here). Defaults are the calibrated
market: BTC moves ~2.5 bp per 5 s bar in calm hours, and vel_div (bible §4.1) dips below
−0.02 roughly 10–30 times a day, mostly at the onset of an instability episode.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

from dolphin.market.symbols import MAX_UNIVERSE

DEFAULT_START_MS = 1_767_571_200_000
"""2026-01-05 00:00:00 UTC (a Monday): bar 0 of every synthetic market by default."""

SECONDS_PER_DAY = 86_400
CHUNK_SECONDS = 3_600
"""Random streams are keyed per hour of market time: any hour can be drawn on its own."""

ALLOWED_BAR_SECONDS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
"""Divisors of 60, so bars tile minutes, hours (chunks) and days exactly."""


@dataclass(frozen=True, slots=True)
class SyntheticConfig:
    """Identity and regime knobs of a synthetic market; validated on construction.

    Volatilities are quoted per 5 s (the champion's bar) and rescaled with √time for
    other bar sizes, so changing ``bar_seconds`` changes the sampling, not the market's
    character. The regime knobs shape the instability episodes (see
    ``docs/synthetic_market.md``): how many per day, how far the panic moves the market
    factor, which way, and how much of it is given back.
    """

    seed: int = 7
    n_symbols: int = 50
    bar_seconds: int = 5
    start_ms: int = DEFAULT_START_MS
    market_vol_bps: float = 1.7
    """Calm market-factor volatility per 5 s. BTC (beta 1, idiosyncratic 1.5 bp) moves
    ~2.3 bp per calm bar; the calm 50-bar market-mode share is ~0.3–0.37, the low
    co-movement of 5 s returns (Epps effect)."""
    market_shock_uniform: float = 1.0
    """Share of the calm factor shock's variance drawn uniform rather than normal.

    Why: a 50-bar correlation window is very sensitive to single large *common* bars
    entering and leaving it. A Gaussian factor makes vel_div cross −0.02 hundreds of
    times a day from noise alone (measured: ~230 crossings/day at 0.75, ~24 at 1.0 with
    a 0.48 share); thin-tailed calm common shocks (uniform: kurtosis 1.8) keep those
    crossings to a handful an hour, so most signals come from the regime schedule.
    Returns stay fat-tailed (BTC kurtosis ~9 at 5 s) through idiosyncratic tails and
    the episodes' volatility bursts.
    """
    episodes_per_day: float = 10.0
    """Mean number of instability episodes on a day of average instability."""
    episode_move: float = 0.009
    """Median move of the market factor during an episode's panic (fraction of price)."""
    down_share: float = 0.8
    """Share of panics that go down (the rest are short squeezes going up)."""
    false_alarm_share: float = 0.15
    """Share of episodes whose correlation fracture is not followed by any panic."""
    reversion_min: float = 0.3
    reversion_max: float = 0.85
    """Range of the fraction of the panic move given back during normalisation."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int):
                if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                    problems.append(f"{f.name} must be an integer, got {value!r}")
                else:  # normalise numpy integers so equal configs hash equal
                    object.__setattr__(self, f.name, int(value))
            elif (isinstance(value, bool) or not isinstance(value, numbers.Real)
                  or not math.isfinite(value)):
                problems.append(f"{f.name} must be a finite number, got {value!r}")
            else:
                object.__setattr__(self, f.name, float(value))
        if problems:
            raise ValueError("invalid SyntheticConfig: " + "; ".join(problems))
        checks = (
            (0 <= self.seed < 2**63, f"seed must be in [0, 2**63), got {self.seed}"),
            (1 <= self.n_symbols <= MAX_UNIVERSE,
             f"n_symbols must be in [1, {MAX_UNIVERSE}], got {self.n_symbols}"),
            (self.bar_seconds in ALLOWED_BAR_SECONDS,
             f"bar_seconds must be one of {ALLOWED_BAR_SECONDS}, got {self.bar_seconds}"),
            (self.start_ms >= 0 and self.start_ms % 1000 == 0,
             f"start_ms must be a non-negative whole second in ms, got {self.start_ms}"),
            (0.1 <= self.market_vol_bps <= 50.0,
             f"market_vol_bps must be in [0.1, 50], got {self.market_vol_bps}"),
            (0.0 <= self.market_shock_uniform <= 1.0,
             f"market_shock_uniform must be in [0, 1], got {self.market_shock_uniform}"),
            (0.0 <= self.episodes_per_day <= 60.0,
             f"episodes_per_day must be in [0, 60], got {self.episodes_per_day}"),
            (0.0 <= self.episode_move <= 0.1,
             f"episode_move must be in [0, 0.1], got {self.episode_move}"),
            (0.0 <= self.down_share <= 1.0, f"down_share must be in [0, 1], got {self.down_share}"),
            (0.0 <= self.false_alarm_share <= 1.0,
             f"false_alarm_share must be in [0, 1], got {self.false_alarm_share}"),
            (0.0 <= self.reversion_min <= self.reversion_max <= 1.0,
             "need 0 <= reversion_min <= reversion_max <= 1, got "
             f"{self.reversion_min}, {self.reversion_max}"),
        )
        problems = [msg for ok, msg in checks if not ok]
        if problems:
            raise ValueError("invalid SyntheticConfig: " + "; ".join(problems))

    @property
    def bars_per_day(self) -> int:
        """Bars in one UTC day (17,280 at 5 s)."""
        return SECONDS_PER_DAY // self.bar_seconds

    @property
    def bars_per_chunk(self) -> int:
        """Bars per random-stream chunk (one hour: 720 at 5 s)."""
        return CHUNK_SECONDS // self.bar_seconds

    @property
    def bar_ms(self) -> int:
        """Bar length in milliseconds."""
        return self.bar_seconds * 1000
