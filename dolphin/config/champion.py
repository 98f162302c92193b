"""Champion integrity (bible §17.2): the frozen champion and its hash.

The champion is written out here as literal values, independent of the dataclass
defaults, so that a changed default or an edited blue.yml is detected as drift rather
than silently becoming the new champion.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

FROZEN_CHAMPION: dict[str, dict[str, Any]] = {
    "champion": {  # §19.1
        "vel_div_threshold": -0.02,
        "vel_div_extreme": -0.05,
        "min_leverage": 0.5,
        "max_leverage": 5.0,
        "abs_max_leverage": 6.0,
        "leverage_convexity": 3.0,
        "fraction": 0.20,
        "fixed_tp_pct": 0.0095,
        "stop_pct": 1.0,
        "max_hold_bars": 120,
        "dc_lookback_bars": 7,
        "dc_min_magnitude_bps": 0.75,
        "dc_skip_contradicts": True,
        "min_irp_alignment": 0.45,
        "sp_maker_entry_rate": 0.62,
        "sp_maker_exit_rate": 0.50,
        "ob_edge_bps": 5.0,
        "ob_confirm_rate": 0.40,
        "lookback": 100,
        "seed": 42,
    },
    "acb": {  # §19.2
        "beta_high": 0.8,
        "beta_low": 0.2,
        "w750_threshold_pct": 60.0,
        "funding_very_bearish": -0.0001,
        "dvol_extreme": 80.0,
        "fng_extreme_fear": 25.0,
        "taker_selling": 0.8,
    },
    "survival": {  # §19.3
        "apex": 0.90,
        "stalker": 0.75,
        "turtle": 0.50,
    },
}


def _canonical(params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Floats as floats and ints as ints, so `5` and `5.0` in YAML hash the same way."""
    out: dict[str, dict[str, Any]] = {}
    for section, values in params.items():
        ref = FROZEN_CHAMPION.get(section, {})
        sec: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(ref.get(key), float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            sec[key] = value
        out[section] = sec
    return out


def champion_hash(frozen_params: dict[str, dict[str, Any]]) -> str:
    """``sha256(json.dumps(frozen_params, sort_keys=True))[:16]`` over canonicalised values."""
    blob = json.dumps(_canonical(frozen_params), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


CHAMPION_HASH = champion_hash(FROZEN_CHAMPION)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=0.0)
    return a == b


def drift(frozen_params: dict[str, dict[str, Any]]) -> list[str]:
    """Each frozen key whose value differs from the champion, as ``section.key: got X, champion Y``."""
    problems: list[str] = []
    for section, ref in FROZEN_CHAMPION.items():
        got = frozen_params.get(section, {})
        for key, expected in ref.items():
            if key not in got:
                problems.append(f"{section}.{key}: missing, champion {expected!r}")
            elif not _same(got[key], expected):
                problems.append(f"{section}.{key}: got {got[key]!r}, champion {expected!r}")
        for key in sorted(set(got) - set(ref)):
            problems.append(f"{section}.{key}: not a champion key")
    return problems
