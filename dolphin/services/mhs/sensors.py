"""MHS v3 sensors and the rm_meta formula (bible §24.5, §26.3), as pure functions.

rm_meta is a weighted *sum* — the v2 product formula let any one sensor zero the whole
score (the "random killer" root cause, §26.1). M2 (heartbeats) and M1_trader are
reported but not weighted: a trader may be stopped on purpose.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from dolphin.enums import HealthStatus

CHECK_INTERVAL_S = 10.0
DATA_STALE_S = 30.0
DATA_DEAD_S = 120.0

SENSOR_WEIGHTS: dict[str, float] = {
    "m4_control_plane": 0.35,
    "m1_data_infra": 0.35,
    "m3_data_freshness": 0.20,
    "m5_coherence": 0.10,
}
BUS_WEIGHT = 0.8          # M4: the bus member (the bible's Hazelcast port)
SUPERVISOR_WEIGHT = 0.2   # M4: supervisord's RPC (replaces the bible's Prefect API)
GREEN_ABOVE = 0.85
DEGRADED_ABOVE = 0.60
CRITICAL_ABOVE = 0.30
ACB_BOOST_RANGE = (1.0, 2.5)   # base_boost is 1 + 0.5·ln(1 + signals) ≤ ~1.8 for 4 full signals
OBF_COVERAGE_FULL = 0.9        # share of the configured universe the OBF snapshot must cover
OBF_PARTIAL_SCORE = 0.5


def _unit(x: float) -> float:
    """Clamp to [0, 1]; NaN (a broken sensor) counts as 0."""
    if not isinstance(x, (int, float)) or math.isnan(x):
        return 0.0
    return 0.0 if x < 0 else 1.0 if x > 1 else float(x)


def m4_control_plane(bus_reachable: bool, supervisor_reachable: bool, bus_health: float = 1.0) -> float:
    """The bus part scales with how whole the cluster is (members present, partitions owned: 1.0 for a
    whole cluster or the embedded member), so losing one of three members shows before anything fails."""
    return BUS_WEIGHT * bool(bus_reachable) * _unit(bus_health) + SUPERVISOR_WEIGHT * bool(supervisor_reachable)


def m1_process_integrity(states: Mapping[str, str], critical: Iterable[str]) -> float:
    """Fraction of the critical data services that are RUNNING (1.0 when there are none)."""
    names = list(critical)
    if not names:
        return 1.0
    return sum(1 for n in names if states.get(n) == "RUNNING") / len(names)


def freshness_score(age_s: float | None, stale_s: float = DATA_STALE_S, dead_s: float = DATA_DEAD_S) -> float:
    """1 fresh, 0.5 stale (> 30 s), 0 dead (> 120 s) or absent/invalid; a slow key passes its own limits."""
    if age_s is None or not isinstance(age_s, (int, float)) or math.isnan(age_s):
        return 0.0
    age = max(0.0, float(age_s))
    if age > dead_s:
        return 0.0
    if age > stale_s:
        return 0.5
    return 1.0


def cadence_limits(interval_s: float) -> tuple[float, float]:
    """(stale, dead) ages of a key written every `interval_s`: stale once a run is half an interval late,
    dead after three intervals (two runs missed) — e.g. 6 h and 12 h for the MC-Forewarner's 4 h."""
    return 1.5 * interval_s, 3.0 * interval_s


def freshness_label(score: float, present: bool) -> str:
    if not present:
        return "absent"
    return {1.0: "fresh", 0.5: "stale"}.get(score, "dead")


def m3_data_freshness(scores: Iterable[float]) -> float:
    values = [_unit(s) for s in scores]
    return sum(values) / len(values) if values else 1.0


def acb_coherent(boost: float | None, beta: float | None) -> float:
    if boost is None or beta is None:
        return 0.0
    lo, hi = ACB_BOOST_RANGE
    return 1.0 if (lo <= boost <= hi and 0.0 <= beta <= 1.0) else 0.0


def obf_coverage(n_assets: int | None, expected: int) -> float:
    if n_assets is None or expected <= 0:
        return 0.0
    return 1.0 if n_assets >= OBF_COVERAGE_FULL * expected else OBF_PARTIAL_SCORE


def m5_coherence(checks: Iterable[float]) -> float:
    """Mean of the coherence checks that apply (ACB range, OBF coverage); 1.0 when none apply."""
    values = [_unit(c) for c in checks]
    return sum(values) / len(values) if values else 1.0


def m2_heartbeat(ages: Mapping[str, float | None]) -> float:
    """Informational: share of service heartbeats younger than the stale threshold."""
    if not ages:
        return 1.0
    return sum(1 for a in ages.values() if freshness_score(a) == 1.0) / len(ages)


def rm_meta(sensors: Mapping[str, float]) -> float:
    """Weighted sum of M4, M1 (data), M3, M5 over the sum of weights; always in [0, 1]."""
    total = sum(SENSOR_WEIGHTS.values())
    return _unit(sum(w * _unit(sensors.get(name, 0.0)) for name, w in SENSOR_WEIGHTS.items()) / total)


def status_for(rm: float) -> HealthStatus:
    rm = _unit(rm)
    if rm > GREEN_ABOVE:
        return HealthStatus.GREEN
    if rm > DEGRADED_ABOVE:
        return HealthStatus.DEGRADED
    if rm > CRITICAL_ABOVE:
        return HealthStatus.CRITICAL
    return HealthStatus.DEAD


# ------------------------------------------------------------------ faults (DOLPHIN: health tells the truth)
#: A running trader this many scans behind the bus is stuck (one minute of 5 s bars).
TRADER_STUCK_LAG = 12
#: A report older than this many check intervals is not the family's state any more.
REPORT_STALE_INTERVALS = 3.0
_STATUS_ORDER = (HealthStatus.GREEN, HealthStatus.WARMING, HealthStatus.DEGRADED, HealthStatus.CRITICAL, HealthStatus.DEAD)
#: Process states of a program that should run but does not (STOPPED is an operator's choice).
FAILED_STATES = frozenset({"FATAL", "EXITED", "BACKOFF", "UNKNOWN"})


def capped_status(rm: float, faults: Iterable[str]) -> HealthStatus:
    """`status_for(rm)`, but never GREEN while a fault stands: a weighted sum must not hide a broken part.

    rm_meta's weights follow the bible (a stale key costs at most 0.20, a stuck trader 0);
    the faults — a watched key not fresh, a trader crashed or stuck or refusing scans —
    cap the status at DEGRADED so the report cannot say GREEN while the system is broken.
    """
    status = status_for(rm)
    if any(True for _ in faults) and status is HealthStatus.GREEN:
        return HealthStatus.DEGRADED
    return status


def warming_status(status: HealthStatus, explained: bool) -> HealthStatus:
    """WARMING instead of DEGRADED while a warm-up explains every fault (issue 15: a start-up is not a fault).

    What a warm-up explains — the scan key not published yet, the trader not trading yet — would
    make the report DEGRADED; a worse verdict (CRITICAL, DEAD) is never softened.
    """
    return HealthStatus.WARMING if explained and status is HealthStatus.DEGRADED else status


def trader_score(state: str | None, lag: int | None, halted: bool) -> float:
    """M1_trader: 1 running and keeping up, 0.5 running but stuck/halted, 0 not running."""
    if state != "RUNNING":
        return 0.0
    if halted or (lag is not None and lag > TRADER_STUCK_LAG):
        return 0.5
    return 1.0


def report_is_stale(age_s: float, check_interval_s: float | None) -> bool:
    """A report older than `REPORT_STALE_INTERVALS` check intervals: MHS is not reporting."""
    interval = check_interval_s if check_interval_s and check_interval_s > 0 else CHECK_INTERVAL_S
    return age_s > REPORT_STALE_INTERVALS * interval
