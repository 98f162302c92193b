"""From live observations to the survival stack's inputs (bible §11.2), and why the posture is what it is.

`dolphin.engine.survival` scores five sensor categories from `SurvivalInputs`; this
module decides what those inputs are when they come from running services instead of a
replay. Pure and clock-free like the stack: the watchdog hands in what it read and when.

Choices the bible leaves open (docs/risk.md):

* **Cat1 heartbeat** — only a trader that is supposed to run can fail. No heartbeat at
  all, or a last beat saying the trader stopped (``phase`` ``stopped``), is a trader
  stopped on purpose: no failure. A beat from before the watchdog started gets a grace
  period to be renewed (a family starting after a crash). Otherwise the age counts.
* **Cat2 staleness** — the oldest of the data the risk layer stands on: the MC report,
  the external factors and the latest scan (a missing MC report means no forewarner is
  deployed: status OK, like the engine without one).
* **Cat3** — the median depth quality and fill probability over the trading universe's
  assets in OBF's universe snapshot; stale when the snapshot is older than its limit or
  absent (when the family runs OBF at all).
* **Cat4** — a DVOL spike is an impulse: DVOL rising `spike_points` above its lowest value
  of the trailing window. One spike per episode; a further rise of `spike_points` above
  the level of the last spike is a new one, and the detector re-arms once DVOL falls back
  within half the threshold of its trailing low.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dolphin.engine.survival import DEGRADED_LEVEL, SurvivalInputs, SurvivalReading, SurvivalStack

HEARTBEAT_DEAD_S = 30.0              # Cat1: the bible's limit
STOPPED_PHASES = frozenset({"stopped"})
CATEGORY_LABELS = {
    "cat1_invariant": "Cat1 invariant",
    "cat2_structural": "Cat2 structural",
    "cat3_microstructure": "Cat3 microstructure",
    "cat4_environmental": "Cat4 environmental",
    "cat5_capital": "Cat5 capital",
}


def trader_heartbeat_age(beat_ts: float | None, phase: str | None, now: float, started_at: float,
                         grace_s: float) -> float:
    """Cat1's heartbeat age: 0 for a trader stopped on purpose or still in its start-up grace."""
    if beat_ts is None or (phase or "") in STOPPED_PHASES:
        return 0.0
    if beat_ts < started_at and now - started_at < grace_s:
        return 0.0
    return max(0.0, now - beat_ts)


def staleness_hours(ages_s: Iterable[float | None]) -> float:
    """Cat2's data staleness: the oldest known age, in hours (0 when nothing is known)."""
    known = [a for a in ages_s if a is not None and math.isfinite(a)]
    return max(known) / 3600.0 if known else 0.0


def median_quality(assets: Mapping[str, tuple[float, float]], universe: Iterable[str] | None = None
                   ) -> tuple[float, float]:
    """Median (depth_quality, fill_probability) over the universe's assets present (NaN when none)."""
    wanted = set(universe) if universe is not None else None
    rows = [q for name, q in assets.items() if wanted is None or name in wanted]
    if not rows:
        return math.nan, math.nan
    dq = sorted(r[0] for r in rows)
    fp = sorted(r[1] for r in rows)

    def median(xs: list[float]) -> float:
        n = len(xs)
        return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])

    return median(dq), median(fp)


class DvolSpikeDetector:
    """Cat4's DVOL spike impulse over the trailing window of readings (market minutes)."""

    def __init__(self, spike_points: float, window_min: float) -> None:
        self.spike_points = spike_points
        self.window_min = window_min
        self._readings: deque[tuple[float, float]] = deque()
        self.last_spike_min: float | None = None
        self.spike_level: float | None = None      # DVOL at the last spike, while its episode lasts
        self.baseline: float | None = None
        self.spikes = 0

    def observe(self, t_min: float, dvol: float | None) -> tuple[bool, float]:
        """One reading at market minute `t_min`: (a spike now, minutes since the last spike (inf: none))."""
        spike = False
        if dvol is not None and math.isfinite(dvol):
            while self._readings and self._readings[0][0] < t_min - self.window_min:
                self._readings.popleft()
            base = min((v for _, v in self._readings), default=dvol)
            self.baseline = base
            excess = dvol - base
            if self.spike_level is None:
                spike = excess >= self.spike_points
            else:
                spike = dvol - self.spike_level >= self.spike_points
                if excess < self.spike_points / 2.0:    # the episode is over: re-arm
                    self.spike_level = None
            if spike:
                self.last_spike_min = t_min
                self.spike_level = dvol
                self.spikes += 1
            self._readings.append((t_min, dvol))
        since = math.inf if self.last_spike_min is None else max(0.0, t_min - self.last_spike_min)
        return spike, since


@dataclass(frozen=True, slots=True)
class Observation:
    """What the watchdog read in one evaluation (None: unknown / not published)."""

    hz_nodes: int
    heartbeat_age_s: float
    mc_status: str | None
    data_ages_s: tuple[float | None, ...]
    ob_quality: tuple[float, float] | None      # None: the OB sensor is off (no OBF in this family)
    ob_age_s: float | None
    ob_stale_s: float
    dvol: float | None
    dvol_spike: bool
    minutes_since_spike: float
    drawdown: float | None

    def inputs(self) -> SurvivalInputs:
        """The stack's inputs (§11.2)."""
        if self.ob_quality is None:
            dq, fp, ob_stale = 1.0, 1.0, False
        else:
            dq, fp = self.ob_quality
            ob_stale = self.ob_age_s is None or self.ob_age_s > self.ob_stale_s or not math.isfinite(dq)
        return SurvivalInputs(
            hz_nodes=self.hz_nodes, heartbeat_age_s=self.heartbeat_age_s, mc_status=self.mc_status or "OK",
            staleness_hours=staleness_hours(self.data_ages_s), depth_quality=dq, fill_probability=fp,
            ob_stale=ob_stale, dvol_spike=self.dvol_spike, minutes_since_spike=self.minutes_since_spike,
            drawdown=0.0 if self.drawdown is None else self.drawdown)

    def readings(self) -> dict[str, float]:
        """The raw values each sensor read, finite only (for the bus and the operator)."""
        i = self.inputs()
        out = {"hz_nodes": float(i.hz_nodes), "heartbeat_age_s": i.heartbeat_age_s,
               "staleness_hours": i.staleness_hours, "depth_quality": i.depth_quality,
               "fill_probability": i.fill_probability, "ob_stale": float(i.ob_stale),
               "dvol_spike": float(i.dvol_spike), "drawdown": i.drawdown}
        if self.dvol is not None:
            out["dvol"] = self.dvol
        if math.isfinite(self.minutes_since_spike):
            out["minutes_since_spike"] = self.minutes_since_spike
        if self.ob_age_s is not None:
            out["ob_age_s"] = self.ob_age_s
        return {k: round(v, 6) for k, v in out.items() if math.isfinite(v)}


def _cause(name: str, obs: Observation) -> str:
    i = obs.inputs()
    if name == "cat1_invariant":
        if i.hz_nodes < 1:
            return "no bus member reachable"
        return f"trader heartbeat {i.heartbeat_age_s:.0f} s old"
    if name == "cat2_structural":
        return f"MC {i.mc_status}, data {i.staleness_hours:.1f} h stale"
    if name == "cat3_microstructure":
        if i.ob_stale:
            age = "never published" if obs.ob_age_s is None else f"{obs.ob_age_s:.0f} s old"
            return f"OB stale ({age})"
        return f"OB depth quality {i.depth_quality:.2f}, fill probability {i.fill_probability:.2f}"
    if name == "cat4_environmental":
        dvol = "" if obs.dvol is None else f" (DVOL {obs.dvol:.1f})"
        if i.dvol_spike:
            return f"DVOL spike now{dvol}"
        return f"DVOL spike {i.minutes_since_spike:.0f} min ago{dvol}"
    return f"drawdown {i.drawdown * 100:.1f} %"


def explain(reading: SurvivalReading, stack: SurvivalStack, obs: Observation) -> str:
    """One line: the posture, Rm against its target, the sensors holding it down, and hysteresis."""
    cats = reading.categories
    weak = [(k, v) for k, v in cats.items() if v < DEGRADED_LEVEL or (k in ("cat1_invariant",) and v < 1.0)]
    parts = [f"{reading.posture}: Rm {reading.rm:.3f}"]
    if reading.r_target > reading.rm + 1e-9:
        parts.append(f"recovering towards {reading.r_target:.3f} (≤ 5 %/min)")
    elif reading.r_target < reading.rm - 1e-9:
        parts.append(f"target {reading.r_target:.3f}")
    if weak:
        parts.append("; ".join(f"{CATEGORY_LABELS[k]} {v:.2f} ({_cause(k, obs)})" for k, v in sorted(
            weak, key=lambda kv: kv[1])))
    degraded = sum(1 for k in ("cat2_structural", "cat3_microstructure", "cat4_environmental")
                   if cats[k] < DEGRADED_LEVEL)
    if degraded >= 2:
        parts.append(f"collapse penalty ×0.5 ({degraded} sensors degraded)")
    if stack._down_streak:
        parts.append(f"{stack._down_streak}/{stack.params.hysteresis_down} bars towards a lower posture")
    if stack._up_streak:
        parts.append(f"{stack._up_streak}/{stack.params.hysteresis_up} bars towards a higher posture")
    if len(parts) == 1:
        parts.append("every sensor healthy")
    return " — ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")
