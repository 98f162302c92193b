"""Integer codes shared by the numba kernels and the Python side.

Numba kernels cannot pass strings cheaply, so postures, exit reasons, DC verdicts and
event kinds travel as small integers; these tables translate them at the boundary.
"""

from __future__ import annotations

# Postures, ordered from worst to best so that "lower" means "more defensive".
HIBERNATE = 0
TURTLE = 1
STALKER = 2
APEX = 3
POSTURE_NAMES = ("HIBERNATE", "TURTLE", "STALKER", "APEX")
POSTURE_CODES = {name: code for code, name in enumerate(POSTURE_NAMES)}

# Direction confirmation verdicts (§4.2).
DC_CONTRADICT = -1
DC_NEUTRAL = 0
DC_CONFIRM = 1

# Exit reasons (§7), in the order the exit manager evaluates them.
EXIT_HIBERNATE = 1
EXIT_SUBDAY_ACB = 2
EXIT_FIXED_TP = 3
EXIT_STOP_LOSS = 4
EXIT_VD_ADVERSE = 5
EXIT_MAX_HOLD = 6
EXIT_MANUAL = 7          # an operator's force exit (dolphin trade exit), through the same exit path
EXIT_REASONS = {
    EXIT_HIBERNATE: "HIBERNATE_HALT",
    EXIT_SUBDAY_ACB: "SUBDAY_ACB_NORMALIZATION",
    EXIT_FIXED_TP: "FIXED_TP",
    EXIT_STOP_LOSS: "STOP_LOSS",
    EXIT_VD_ADVERSE: "VD_ADVERSE_TURN",
    EXIT_MAX_HOLD: "MAX_HOLD",
    EXIT_MANUAL: "MANUAL",
}

# Event kinds written by the bar loop.
EVENT_ENTRY = 1
EVENT_EXIT = 2

# Signal buckets (§6.3).
BUCKET_NAMES = ("extreme", "strong", "moderate", "weak")


def posture_code(name: str) -> int:
    try:
        return POSTURE_CODES[name.upper()]
    except KeyError:
        raise ValueError(f"unknown posture {name!r} (expected one of {', '.join(POSTURE_NAMES)})") from None
