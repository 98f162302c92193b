"""The regime schedule: calm baselines and seeded instability episodes.

DOLPHIN's thesis (bible §1) is that a fast change in the correlation structure —
vel_div < −0.02, the 50-bar market-mode share falling faster than the 750-bar one —
marks the onset of instability, and that shorting it and taking profit on the move from
panic to normalisation pays. The schedule makes that phenomenon happen on purpose, with
the noise a real market has around it:

* **calm**: the market-factor loading and the volatility level drift slowly (hourly
  anchors, linearly interpolated); the day's volatility level and its number of episodes
  follow a latent, persistent daily instability.
* **episodes** (about ``episodes_per_day`` a day, more on unstable days), each in phases:
  *precursor* (a few minutes: "leaders" start sliding, the market leans down),
  *fracture* (10–35 s: idiosyncratic volatility bursts and the market loading collapses —
  correlation breaks down, the 50-bar share drops, vel_div crosses −0.02),
  *panic* (1–5 min: loading surges, volatility bursts, the market factor moves ``move``
  — down, or up in a short squeeze — and the leaders extend their slide), *recovery*
  (5–20 min: a fast bounce gives back a ``reversion`` fraction of the move while
  volatility and loading fade). Some episodes are false alarms: a fracture with no
  panic after it. Each day's net episode moves are paid back by a slow drift over the
  day, so panics do not compound into a trend.

Everything is random-access: a day's schedule depends only on ``(seed, day)`` and the
latent instability of that day and the two before it; a bar's regime is a pure function
of its index. Only arithmetic and square roots are used (no libm transcendentals), so
the values are bit-identical on every IEEE-754 machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dolphin.market.symbols import MAX_UNIVERSE

from . import streams
from .config import CHUNK_SECONDS, SyntheticConfig

# Phase lengths in seconds: (minimum, random extra).
_PRECURSOR_S = (120.0, 360.0)
_FRACTURE_S = (10.0, 25.0)
_PANIC_S = (60.0, 240.0)
_RECOVERY_S = (300.0, 900.0)
MAX_EPISODE_SECONDS = int(sum(a + b for a, b in (_PRECURSOR_S, _FRACTURE_S, _PANIC_S, _RECOVERY_S))) + 60
"""Upper bound of an episode's length: how far back a bar must look for episodes."""

_PRECURSOR_MARKET = 0.1
"""Precursor lean of the market factor, as a fraction of the episode's nominal move."""
_LEADER_SHARE = 0.15
"""Expected share of symbols that lead an episode's slide."""
_LEADER_SPLIT = (0.35, 0.25, 0.40)
"""How a leader's extra move splits over precursor, fracture and panic."""
_IDIO_BURST = 0.8
"""Share of a panic's volatility burst that hits idiosyncratic volatility too.

A burst of the market factor alone would push correlations up sharply and, as the
panic's bars leave the 50-bar window, produce a volley of false vel_div signals; real
panics raise every volatility, so most of the burst is shared."""
_DAY_OFFSET = 2
"""Day keys are shifted so the two days before day 0 have non-negative stream keys."""


@dataclass(frozen=True, slots=True)
class Episode:
    """One instability episode. Bars are absolute bar indices of the market.

    ``onset_bar`` is the first fracture bar — where vel_div is expected to cross −0.02.
    ``direction`` is −1 (panic down), +1 (squeeze up) or 0 (false alarm: no panic);
    ``move`` is the panic's market-factor move and ``leader_move`` the leaders' extra
    move (fractions of price); ``reversion`` the fraction given back in recovery.
    ``dispersion`` multiplies idiosyncratic volatility at the fracture, ``decorrelation``
    (< 1) the market loading there; ``surge`` (> 1) multiplies the loading and
    ``vol_burst`` the market volatility during the panic (80 % of the burst also hits
    idiosyncratic volatility).
    """

    onset_bar: int
    kind: str
    direction: int
    move: float
    reversion: float
    leader_move: float
    precursor_bars: int
    fracture_bars: int
    panic_bars: int
    recovery_bars: int
    dispersion: float
    decorrelation: float
    surge: float
    vol_burst: float

    @property
    def start_bar(self) -> int:
        """First bar the episode affects (start of the precursor)."""
        return self.onset_bar - self.precursor_bars

    @property
    def panic_bar(self) -> int:
        """First bar of the panic phase."""
        return self.onset_bar + self.fracture_bars

    @property
    def end_bar(self) -> int:
        """One past the last bar the episode affects."""
        return self.panic_bar + self.panic_bars + self.recovery_bars


@dataclass(frozen=True, slots=True)
class _Profile:
    """An episode's per-bar contributions over ``[start, start + len)``."""

    start: int
    market_drift: np.ndarray
    leader_drift: np.ndarray
    loading: np.ndarray
    market_vol: np.ndarray
    idio_vol: np.ndarray
    activity: np.ndarray
    leader_weights: np.ndarray


@dataclass(frozen=True, slots=True)
class _Day:
    episodes: tuple[Episode, ...]
    profiles: tuple[_Profile, ...]
    market_compensation: float
    symbol_compensation: np.ndarray


@dataclass(frozen=True, slots=True)
class _DayRegime:
    """A day's per-bar regime arrays, and the episode profiles touching the day (for symbol drifts)."""

    loading: np.ndarray
    market_vol: np.ndarray
    idio_vol: np.ndarray
    market_drift: np.ndarray
    activity: np.ndarray
    compensation: np.ndarray
    profiles: tuple[_Profile, ...]


@dataclass(frozen=True, slots=True)
class RegimeArrays:
    """Per-bar regime of a bar range, the generator's input.

    ``loading`` multiplies the market factor's exposure, ``market_vol`` its volatility,
    ``idio_vol`` all idiosyncratic volatilities; ``market_drift`` (per bar, scaled by
    each beta) is a deterministic return, and so is each symbol's drift,
    ``compensation[i] + Σ_k leader_drift[t, k] · leader_weights[k, i]`` (summed in k
    order: the day's pay-back plus the leader slides of the episodes touching the range;
    factored, because a (bars, symbols) array per hour would cost more to allocate than
    to use); ``activity`` scales traded volume.
    """

    loading: np.ndarray
    market_vol: np.ndarray
    idio_vol: np.ndarray
    market_drift: np.ndarray
    activity: np.ndarray
    compensation: np.ndarray
    leader_drift: np.ndarray
    leader_weights: np.ndarray

    def symbol_drift(self) -> np.ndarray:
        """The (bars, symbols) drift, in the generator's order of summation."""
        out = np.repeat(self.compensation[None, :], self.loading.shape[0], axis=0)
        for k in range(self.leader_drift.shape[1]):
            out += self.leader_drift[:, k, None] * self.leader_weights[None, k]
        return out


def _bars(seconds: float, bar_seconds: int) -> int:
    return max(1, int(seconds / bar_seconds + 0.5))


def _bump(n: int) -> np.ndarray:
    """Weights of a smooth hump over ``n`` bars summing to one (the shape of a panic)."""
    x = (np.arange(n, dtype=np.float64) + 0.5) / n
    w = x * (1.0 - x)
    return w / math.fsum(w.tolist())


def _ramp(n: int, start: float, stop: float) -> np.ndarray:
    """``n`` values going linearly from ``start`` (first) towards ``stop`` (excluded)."""
    return start + (stop - start) * (np.arange(n, dtype=np.float64) / n)


def _front(n: int) -> np.ndarray:
    """Weights over ``n`` bars summing to one, front-loaded as ``(1 − x)²``: a fast bounce."""
    x = (np.arange(n, dtype=np.float64) + 0.5) / n
    w = (1.0 - x) * (1.0 - x)
    return w / math.fsum(w.tolist())


def _fade(n: int) -> np.ndarray:
    """``n`` values easing from 1 to 0 as ``(1 − x)²``: fast at first, then a long tail.

    Why not linear: a 50-bar correlation window sees a step in common variance as a
    burst of large one-bar share drops when the panic's bars leave it; a convex fade
    keeps consecutive bars alike, so recovery produces some false vel_div signals, not
    a volley of them.
    """
    x = np.arange(n, dtype=np.float64) / n
    return (1.0 - x) * (1.0 - x)


class RegimeSchedule:
    """Seeded schedule of one market: day instability, episodes and per-bar regimes."""

    def __init__(self, config: SyntheticConfig) -> None:
        self._cfg = config
        self._days: dict[int, _Day] = {}
        self._instability: dict[int, float] = {}
        self._day_regimes: dict[int, _DayRegime] = {}

    # -- days -----------------------------------------------------------------------------

    def _day_draw(self, day: int) -> float:
        return float(streams.rng(self._cfg.seed, streams.DAY, day + _DAY_OFFSET).random())

    def instability(self, day: int) -> float:
        """Latent instability of ``day`` in [0, 1] (0.5 on average, persistent over days).

        A three-day moving average of uniform draws, stretched: neighbouring days share
        two of their three draws, so calm and stormy stretches last a few days.
        """
        if day < 0:
            raise ValueError(f"day must be >= 0, got {day}")
        cached = self._instability.get(day)
        if cached is None:
            if len(self._instability) >= 4096:
                self._instability.clear()
            mean = (self._day_draw(day - 2) + self._day_draw(day - 1) + self._day_draw(day)) / 3.0
            cached = self._instability[day] = min(1.0, max(0.0, 0.5 + 1.5 * (mean - 0.5)))
        return cached

    def episodes(self, day: int) -> tuple[Episode, ...]:
        """The instability episodes whose onset falls on ``day``, in onset order."""
        return self._day(day).episodes

    def _day(self, day: int) -> _Day:
        cached = self._days.get(day)
        if cached is None:
            if len(self._days) >= 64:
                self._days.clear()
            cached = self._days[day] = self._build_day(day)
        return cached

    def _build_day(self, day: int) -> _Day:
        cfg = self._cfg
        bps = cfg.bar_seconds
        rng = streams.rng(cfg.seed, streams.EPISODE, day)
        rate = cfg.episodes_per_day * (0.7 + 0.6 * self.instability(day))
        count = int(rate * (0.8 + 0.4 * float(rng.random())) + 0.5)
        slots = rng.random(count)
        day_start = day * cfg.bars_per_day
        slot_bars = cfg.bars_per_day / count if count else 0.0
        episodes: list[Episode] = []
        profiles: list[_Profile] = []
        market_net: list[float] = []
        symbol_net = np.zeros(MAX_UNIVERSE)
        for k in range(count):
            u = rng.random(16)
            weights_u = rng.random(MAX_UNIVERSE)
            onset = day_start + int((k + 0.05 + 0.9 * float(slots[k])) * slot_bars)
            if u[0] < cfg.false_alarm_share:
                kind, direction = "false_alarm", 0
            elif u[1] < cfg.down_share:
                kind, direction = "panic", -1
            else:
                kind, direction = "squeeze", 1
            u2 = float(u[2])
            u2_cubed = u2 * u2 * u2
            nominal = cfg.episode_move * (0.35 + 1.3 * u2 + 1.8 * u2_cubed * u2_cubed)
            episode = Episode(
                onset_bar=onset, kind=kind, direction=direction,
                move=nominal if direction else 0.0,
                reversion=cfg.reversion_min + (cfg.reversion_max - cfg.reversion_min) * float(u[3]),
                leader_move=cfg.episode_move * (0.4 + 1.0 * float(u[4])) * (1.0 if direction else 0.4),
                precursor_bars=_bars(_PRECURSOR_S[0] + _PRECURSOR_S[1] * u[5], bps),
                fracture_bars=_bars(_FRACTURE_S[0] + _FRACTURE_S[1] * u[6], bps),
                panic_bars=_bars(_PANIC_S[0] + _PANIC_S[1] * u[7], bps),
                recovery_bars=_bars(_RECOVERY_S[0] + _RECOVERY_S[1] * u[8], bps),
                dispersion=3.0 + 1.6 * float(u[9]),
                decorrelation=0.15 + 0.35 * float(u[10]),
                surge=(1.1 + 0.5 * float(u[11])) if direction else 1.0,
                vol_burst=(1.6 + 1.8 * float(u[12])) if direction else 1.2,
            )
            leader_weights = np.maximum(0.0, weights_u - (1.0 - _LEADER_SHARE)) / _LEADER_SHARE
            profile, net_market, net_leader = _profile(episode, nominal, leader_weights)
            episodes.append(episode)
            profiles.append(profile)
            market_net.append(net_market)
            symbol_net += net_leader * leader_weights
        # Each day pays back its episodes' net moves with a slow drift spread over the day,
        # so crashes do not compound into a trend: the market heals between panics.
        market_comp = -math.fsum(market_net) / cfg.bars_per_day
        return _Day(tuple(episodes), tuple(profiles), market_comp, -symbol_net / cfg.bars_per_day)

    # -- bars -----------------------------------------------------------------------------

    def regime(self, start_bar: int, n_bars: int, n_symbols: int) -> RegimeArrays:
        """The regime of bars ``[start_bar, start_bar + n_bars)`` (which lie in one day)."""
        cfg = self._cfg
        stop = start_bar + n_bars
        day = start_bar // cfg.bars_per_day
        if (stop - 1) // cfg.bars_per_day != day:
            raise ValueError("a regime range must lie within one day")
        whole = self._day_regime(day)
        rows = slice(start_bar - day * cfg.bars_per_day, stop - day * cfg.bars_per_day)
        touching = [p for p in whole.profiles if p.start < stop and start_bar < p.start + p.market_drift.size]
        leader = np.zeros((n_bars, len(touching)))
        weights = np.empty((len(touching), n_symbols))
        for k, p in enumerate(touching):
            lo = max(start_bar, p.start)
            hi = min(stop, p.start + p.market_drift.size)
            leader[lo - start_bar:hi - start_bar, k] = p.leader_drift[lo - p.start:hi - p.start]
            weights[k] = p.leader_weights[:n_symbols]
        return RegimeArrays(loading=whole.loading[rows], market_vol=whole.market_vol[rows],
                            idio_vol=whole.idio_vol[rows], market_drift=whole.market_drift[rows],
                            activity=whole.activity[rows], compensation=whole.compensation[:n_symbols],
                            leader_drift=leader, leader_weights=weights)

    def _day_regime(self, day: int) -> _DayRegime:
        """A whole day's per-bar regime (one pass over the episodes touching it), cached for a few days.

        Why per day: a bar's regime is a pure function of its index, so computing a day at
        once gives the same values as computing any hour of it, at a fraction of the
        per-call overhead (a day holds 24 chunks).
        """
        cached = self._day_regimes.get(day)
        if cached is not None:
            return cached
        cfg = self._cfg
        n_bars = cfg.bars_per_day
        start_bar = day * n_bars
        stop = start_bar + n_bars
        loading, vol_level = self._baseline(start_bar, n_bars, self.instability(day))
        idio_dev = np.zeros(n_bars)
        activity = np.ones(n_bars)
        today = self._day(day)
        market_drift = np.full(n_bars, today.market_compensation)
        span = MAX_EPISODE_SECONDS // cfg.bar_seconds + 1
        first_day = max(0, (start_bar - span) // cfg.bars_per_day)
        last_day = (stop + span) // cfg.bars_per_day
        load_dev = np.zeros(n_bars)
        mvol_dev = np.zeros(n_bars)
        touching: list[_Profile] = []
        for d in range(first_day, last_day + 1):
            for p in self._day(d).profiles:
                lo = max(start_bar, p.start)
                hi = min(stop, p.start + p.market_drift.size)
                if lo >= hi:
                    continue
                touching.append(p)
                dst = slice(lo - start_bar, hi - start_bar)
                src = slice(lo - p.start, hi - p.start)
                market_drift[dst] += p.market_drift[src]
                load_dev[dst] += p.loading[src]
                mvol_dev[dst] += p.market_vol[src]
                idio_dev[dst] += p.idio_vol[src]
                activity[dst] += p.activity[src]
        regime = _DayRegime(loading=loading * np.maximum(0.05, 1.0 + load_dev),
                            market_vol=vol_level * np.maximum(0.2, 1.0 + mvol_dev),
                            idio_vol=vol_level * (1.0 + idio_dev), market_drift=market_drift, activity=activity,
                            compensation=today.symbol_compensation, profiles=tuple(touching))
        if len(self._day_regimes) >= 2:
            self._day_regimes.pop(next(iter(self._day_regimes)))
        self._day_regimes[day] = regime
        return regime

    def _baseline(self, start_bar: int, n_bars: int, instability: float) -> tuple[np.ndarray, np.ndarray]:
        """Calm loading and volatility level: hourly anchors, linearly interpolated.

        The volatility level (hour anchor × the day's level, higher on unstable days)
        scales market and idiosyncratic volatility alike, so calm correlation — and with
        it the rate of noise-driven vel_div signals — does not drift with volatility.
        """
        per_hour = CHUNK_SECONDS // self._cfg.bar_seconds
        bars = np.arange(start_bar, start_bar + n_bars, dtype=np.int64)
        hours = bars // per_hour
        frac = (bars - hours * per_hour).astype(np.float64) / per_hour
        h0 = int(hours[0])
        anchors = np.array([self._anchor(h) for h in range(h0, int(hours[-1]) + 2)])
        a = anchors[hours - h0]
        b = anchors[hours - h0 + 1]
        values = a + (b - a) * frac[:, None]
        day_level = 0.85 + 0.3 * instability
        return values[:, 0], values[:, 1] * day_level

    def _anchor(self, hour: int) -> tuple[float, float]:
        u = streams.rng(self._cfg.seed, streams.ANCHOR, hour).random(2)
        return 0.88 + 0.24 * float(u[0]), 0.85 + 0.3 * float(u[1])


def _profile(e: Episode, nominal: float, leader_weights: np.ndarray) -> tuple[_Profile, float, float]:
    """Per-bar contributions of episode ``e`` and its net market and leader moves."""
    pre, frac, pan, rec = e.precursor_bars, e.fracture_bars, e.panic_bars, e.recovery_bars
    n = pre + frac + pan + rec
    market = np.zeros(n)
    leader = np.zeros(n)
    loading = np.zeros(n)
    mvol = np.zeros(n)
    idio = np.zeros(n)
    activity = np.zeros(n)
    f0, p0, r0 = pre, pre + frac, pre + frac + pan

    pre_move = -_PRECURSOR_MARKET * nominal
    market[:f0] += pre_move * _bump(pre)
    leader[:f0] += -_LEADER_SPLIT[0] * e.leader_move * _bump(pre)
    idio[:f0] += _ramp(pre, 0.0, 0.15)
    activity[:f0] += _ramp(pre, 0.0, 0.4)

    # Fracture: dispersion peaks on its first bar, decays over the fracture and as long again.
    leader[f0:p0] += -_LEADER_SPLIT[1] * e.leader_move / frac
    tail = min(frac, n - p0)
    idio[f0:p0] += _ramp(frac, e.dispersion - 1.0, 0.6 * (e.dispersion - 1.0))
    idio[p0:p0 + tail] += _ramp(frac, 0.6 * (e.dispersion - 1.0), 0.0)[:tail]
    loading[f0:p0] += e.decorrelation - 1.0
    loading[p0:p0 + tail] += _ramp(frac, e.decorrelation - 1.0, 0.0)[:tail]
    mvol[f0:p0] += 0.3
    activity[f0:p0] += 2.0

    panic_move = e.direction * e.move
    leader_panic = e.direction * _LEADER_SPLIT[2] * e.leader_move
    if e.direction:
        market[p0:r0] += panic_move * _bump(pan)
        leader[p0:r0] += leader_panic * _bump(pan)
        rise = max(1, pan // 4)
        envelope = np.ones(pan)
        envelope[:rise] = _ramp(rise, 1.0 / rise, 1.0 + 1.0 / rise)
        loading[p0:r0] += (e.surge - 1.0) * envelope
        mvol[p0:r0] += (e.vol_burst - 1.0) * envelope
        idio[p0:r0] += _IDIO_BURST * (e.vol_burst - 1.0) * envelope
        activity[p0:r0] += 3.0 * envelope
        loading[r0:] += (e.surge - 1.0) * _fade(rec)
        idio[r0:] += _IDIO_BURST * (e.vol_burst - 1.0) * _fade(rec)
    mvol[r0:] += (e.vol_burst - 1.0) * _fade(rec)
    activity[r0:] += _ramp(rec, 1.5 if e.direction else 0.5, 0.0)

    net_market = pre_move + panic_move
    net_leader = -(_LEADER_SPLIT[0] + _LEADER_SPLIT[1]) * e.leader_move + leader_panic
    market[r0:] += -e.reversion * net_market * _front(rec)
    leader[r0:] += -e.reversion * net_leader * _front(rec)
    profile = _Profile(e.start_bar, market, leader, loading, mvol, idio, activity, leader_weights)
    return profile, (1.0 - e.reversion) * net_market, (1.0 - e.reversion) * net_leader
