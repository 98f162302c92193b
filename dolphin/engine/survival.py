"""Survival stack (bible §11): five sensor categories → Rm ∈ [0, 1] → posture, with hysteresis.

Pure and clock-free: the caller supplies sensor readings and the elapsed minutes since
the previous update, so the watchdog service, replays and tests drive it identically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dolphin.engine.codes import APEX, HIBERNATE, POSTURE_NAMES, STALKER, TURTLE
from dolphin.engine.params import SurvivalParams

#: Cat2 base by MC status: the engine's §12 verdicts (OK/ORANGE/RED) and the §28.6 bus label GREEN (= OK).
MC_BASE = {"OK": 1.0, "GREEN": 1.0, "ORANGE": 0.5, "RED": 0.1}
STALENESS_GRACE_H = 6.0
STALENESS_TAU_H = 3.0
DVOL_RECOVERY_TAU_MIN = 60.0
CAPITAL_STEEPNESS = 30.0
CAPITAL_MIDPOINT = 0.12
DEGRADED_LEVEL = 0.8
COLLAPSE_PENALTY = 0.5
RECOVERY_ALPHA_PER_MIN = 0.02
RECOVERY_MAX_STEP_PER_MIN = 0.05


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def cat1_invariant(hz_nodes: int, heartbeat_age_s: float) -> float:
    """Kill switch: no bus member or a heartbeat older than 30 s → 0 (total failure)."""
    if hz_nodes < 1 or not math.isfinite(heartbeat_age_s) or heartbeat_age_s > 30.0:
        return 0.0
    return 1.0


def cat2_structural(mc_status: str, staleness_hours: float) -> float:
    """MC-Forewarner level, decaying exponentially once the data is more than 6 h stale.

    Accepts the engine's verdicts (OK/ORANGE/RED) and the published §28.6 labels
    (GREEN/ORANGE/RED); any other string is unknown and scores as RED.
    """
    base = MC_BASE.get(mc_status.upper(), MC_BASE["RED"])
    stale = staleness_hours if math.isfinite(staleness_hours) else 1e9
    return base * math.exp(-max(0.0, stale - STALENESS_GRACE_H) / STALENESS_TAU_H)


def cat3_microstructure(depth_quality: float, fill_probability: float, ob_stale: bool) -> float:
    """OB depth/fill quality in [0.3, 1]; 0.5 when the order-book feed is stale."""
    if ob_stale or not (math.isfinite(depth_quality) and math.isfinite(fill_probability)):
        return 0.5
    score = min(depth_quality, fill_probability)
    return _clamp(0.3 + 0.7 * score, 0.3, 1.0)


def cat4_environmental(dvol_spike: bool, minutes_since_spike: float) -> float:
    """DVOL spike impulse: 0.3 at the spike, recovering with a 60-minute time constant."""
    if dvol_spike and minutes_since_spike <= 0.0:
        return 0.3
    t = max(0.0, minutes_since_spike) if math.isfinite(minutes_since_spike) else 1e9
    return 0.3 + 0.7 * (1.0 - math.exp(-t / DVOL_RECOVERY_TAU_MIN))


def cat5_capital(drawdown: float) -> float:
    """Sigmoid drawdown constraint: ≈0.89 at 5 %, 0.5 at 12 %, ≈0.08 at 20 %."""
    dd = _clamp(drawdown, 0.0, 1.0) if math.isfinite(drawdown) else 1.0  # outside [0, 1] is a bad input
    return 1.0 / (1.0 + math.exp(CAPITAL_STEEPNESS * (dd - CAPITAL_MIDPOINT)))


@dataclass(frozen=True, slots=True)
class SurvivalInputs:
    hz_nodes: int = 1
    heartbeat_age_s: float = 0.0
    mc_status: str = "OK"
    staleness_hours: float = 0.0
    depth_quality: float = 1.0
    fill_probability: float = 1.0
    ob_stale: bool = False
    dvol_spike: bool = False
    minutes_since_spike: float = math.inf
    drawdown: float = 0.0


@dataclass(frozen=True, slots=True)
class SurvivalReading:
    rm: float
    r_target: float
    posture: str
    categories: dict[str, float]


def combine(cat1: float, cat2: float, cat3: float, cat4: float, cat5: float) -> float:
    """§11.3: Cat1 × Cat5 × min(Cat2, Cat4) × Cat3, halved when two or more of Cat2/3/4 degrade."""
    r = cat1 * cat5 * min(cat2, cat4) * cat3
    degraded = sum(1 for v in (cat2, cat3, cat4) if v < DEGRADED_LEVEL)
    if degraded >= 2:
        r *= COLLAPSE_PENALTY
    return _clamp(r, 0.0, 1.0)


def bounded_recovery(last: float, target: float, dt_min: float) -> float:
    """§11.4: fast attack (drops apply at once), slow recovery (≤ 5 % per minute)."""
    if target < last:
        return target
    alpha = min(1.0, RECOVERY_ALPHA_PER_MIN * dt_min)
    step = min(alpha * (target - last), RECOVERY_MAX_STEP_PER_MIN * dt_min)
    return last + step


def posture_for(rm: float, p: SurvivalParams) -> int:
    """§11.5 mapping with the deliberately tight thresholds of §19.3."""
    if rm >= p.apex:
        return APEX
    if rm >= p.stalker:
        return STALKER
    if rm >= p.turtle:
        return TURTLE
    return HIBERNATE


@dataclass(slots=True)
class SurvivalStack:
    """Stateful Rm and posture: bounded recovery plus 2-down / 5-up hysteresis (§11.6).

    A Cat1 failure (Rm target 0) bypasses hysteresis: a dead bus or heartbeat must
    hibernate at once, not two evaluations later.
    """

    params: SurvivalParams = field(default_factory=SurvivalParams)
    rm: float = 1.0
    posture: int = APEX
    _down_streak: int = 0
    _up_streak: int = 0

    def update(self, inputs: SurvivalInputs, dt_min: float) -> SurvivalReading:
        cats = {
            "cat1_invariant": cat1_invariant(inputs.hz_nodes, inputs.heartbeat_age_s),
            "cat2_structural": cat2_structural(inputs.mc_status, inputs.staleness_hours),
            "cat3_microstructure": cat3_microstructure(inputs.depth_quality, inputs.fill_probability,
                                                       inputs.ob_stale),
            "cat4_environmental": cat4_environmental(inputs.dvol_spike, inputs.minutes_since_spike),
            "cat5_capital": cat5_capital(inputs.drawdown),
        }
        target = combine(*cats.values())
        self.rm = bounded_recovery(self.rm, target, max(0.0, dt_min))
        self._step_posture(posture_for(self.rm, self.params), kill=cats["cat1_invariant"] == 0.0)
        return SurvivalReading(rm=self.rm, r_target=target, posture=POSTURE_NAMES[self.posture], categories=cats)

    def _step_posture(self, candidate: int, kill: bool) -> None:
        if kill:
            self.posture, self._down_streak, self._up_streak = HIBERNATE, 0, 0
            return
        if candidate < self.posture:
            self._down_streak += 1
            self._up_streak = 0
            if self._down_streak >= self.params.hysteresis_down:
                self.posture, self._down_streak = candidate, 0
        elif candidate > self.posture:
            self._up_streak += 1
            self._down_streak = 0
            if self._up_streak >= self.params.hysteresis_up:
                self.posture, self._up_streak = candidate, 0
        else:
            self._down_streak = self._up_streak = 0

    @property
    def posture_name(self) -> str:
        return POSTURE_NAMES[self.posture]
