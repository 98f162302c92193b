"""MC-Forewarner envelope gate (bible §12): RED halts entries for the day, ORANGE halves size.

The forewarner itself (a model) is outside the engine; the engine only needs something
that can assess a config and return a report. No forewarner means OK.

Two sets of thresholds exist in the bible and both live here: §12's gate on
(catastrophic probability, envelope score), which is what the engine obeys, and §28.6's
published status label (GREEN < 0.10 ≤ ORANGE < 0.30 ≤ RED on the probability alone),
which is what the forewarner writes on the bus and the TUI colours by. They disagree
between 0.25 and 0.30 (the label says ORANGE, the gate halts): the engine follows §12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from dolphin.enums import McStatus

RED_CATASTROPHIC = 0.25
RED_ENVELOPE = -1.0
ORANGE_CATASTROPHIC = 0.10
ORANGE_SCALE = 0.5

#: §28.6 status label thresholds on the catastrophic probability.
STATUS_ORANGE_FROM = 0.10
STATUS_RED_FROM = 0.30


def status_for_probability(catastrophic_prob: float) -> McStatus:
    """§28.6: GREEN below 0.10, ORANGE from 0.10 to below 0.30, RED from 0.30 (NaN is RED)."""
    if not math.isfinite(catastrophic_prob) or catastrophic_prob >= STATUS_RED_FROM:
        return McStatus.RED
    if catastrophic_prob >= STATUS_ORANGE_FROM:
        return McStatus.ORANGE
    return McStatus.GREEN


@dataclass(frozen=True, slots=True)
class MCReport:
    catastrophic_probability: float
    envelope_score: float


class Forewarner(Protocol):
    def assess_config_dict(self, config: dict[str, Any]) -> MCReport: ...


@dataclass(frozen=True, slots=True)
class MCVerdict:
    status: str           # OK | ORANGE | RED
    scale: float          # day_mc_scale
    halt: bool            # RED → no new entries for the day

    @property
    def gate_open(self) -> bool:
        return not self.halt


MC_OK = MCVerdict("OK", 1.0, False)


def mc_verdict(report: MCReport | None) -> MCVerdict:
    """§12 thresholds; a missing report (no forewarner) is OK."""
    if report is None:
        return MC_OK
    cp, env = report.catastrophic_probability, report.envelope_score
    if cp != cp or env != env:  # NaN from a broken model is treated as the worst case
        return MCVerdict("RED", 1.0, True)
    if cp > RED_CATASTROPHIC or env < RED_ENVELOPE:
        return MCVerdict("RED", 1.0, True)
    if env < 0.0 or cp > ORANGE_CATASTROPHIC:
        return MCVerdict("ORANGE", ORANGE_SCALE, False)
    return MC_OK


def verdict_from_status(status: str) -> MCVerdict:
    """Rebuild a day's verdict from its recorded status (engine state restore)."""
    if status == "RED":
        return MCVerdict("RED", 1.0, True)
    if status == "ORANGE":
        return MCVerdict("ORANGE", ORANGE_SCALE, False)
    return MC_OK


@dataclass(frozen=True, slots=True)
class StaticForewarner:
    """A forewarner that always returns the same report (fixtures, replays of recorded verdicts)."""

    report: MCReport

    def assess_config_dict(self, config: dict[str, Any]) -> MCReport:
        return self.report
