"""The bus schema (bible §15): every map name, every key, and the payload type of each.

This module is the only place a map or key name is spelled (ARCHITECTURE.md: "one
module owns each bus map's schema"). Everything else imports the constants, the key
builders and `spec_for()`.

Keys the bible gives as patterns (dates, symbols, per-run snapshots) are matched by
regular expressions; their counters and logs use the pattern's label so a stream of
bad dates cannot grow the counters without bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date as _date
from typing import Any

import msgspec

from dolphin.bus import payloads as p

# ---------------------------------------------------------------- maps
FEATURES = "DOLPHIN_FEATURES"
SAFETY = "DOLPHIN_SAFETY"
STATE_BLUE = "DOLPHIN_STATE_BLUE"
PNL_BLUE = "DOLPHIN_PNL_BLUE"
PNL_GREEN = "DOLPHIN_PNL_GREEN"
HEARTBEAT = "DOLPHIN_HEARTBEAT"
META_HEALTH = "DOLPHIN_META_HEALTH"
ORDER_BOOK = "DOLPHIN_OB"
SHARD_COUNT = 10
SHARD_MAP_PREFIX = "DOLPHIN_FEATURES_SHARD_"
SHARD_MAPS: tuple[str, ...] = tuple(f"{SHARD_MAP_PREFIX}{i:02d}" for i in range(SHARD_COUNT))

# ---------------------------------------------------------------- keys
LATEST = "latest"
LATEST_EIGEN_SCAN = "latest_eigen_scan"
ACB_BOOST = "acb_boost"
EXF_LATEST = "exf_latest"
OBF_UNIVERSE_LATEST = "obf_universe_latest"
MC_FOREWARNER_LATEST = "mc_forewarner_latest"
OB_MACRO_LATEST = "ob_macro_latest"
OBF_STATUS = "obf_status"
LATEST_NAUTILUS = "latest_nautilus"
NAUTILUS_FLOW_HEARTBEAT = "nautilus_flow_heartbeat"
PROBE_TS = "probe_ts"

# ---------------------------------------------------------------- CP objects
SAFETY_REF = "DOLPHIN_SAFETY"  # CP AtomicReference holding the same JSON as SAFETY["latest"] (§14.6)
ACB_WRITER_LOCK = "DOLPHIN_ACB_WRITER"  # CP FencedLock every ACB writer takes (§15.5)

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,32}$")
FEATURE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STATE_RUN_RE = re.compile(r"^state_(?P<strategy>[a-z0-9]+)_(?P<date>\d{4}-\d{2}-\d{2})$")
_HEARTBEAT_RE = re.compile(r"^[a-z0-9_]+_heartbeat$")
_FEATURE_KEY_RE = re.compile(r"^(?P<feature>[a-z][a-z0-9_]*)_(?P<symbol>[A-Z0-9]{2,32})$")


def pnl_key(day: _date | str) -> str:
    """``DOLPHIN_PNL_*`` key of a trading day: ``YYYY-MM-DD``."""
    text = day.isoformat() if isinstance(day, _date) else day
    if not _DATE_RE.match(text):
        raise ValueError(f"{day!r} is not a YYYY-MM-DD date")
    return text


def state_run_key(strategy: str, day: _date | str) -> str:
    """``DOLPHIN_STATE_BLUE`` per-run snapshot key: ``state_{strategy}_{date}``."""
    key = f"state_{strategy}_{pnl_key(day)}"
    if not _STATE_RUN_RE.match(key):
        raise ValueError(f"strategy {strategy!r} must be lowercase letters and digits")
    return key


def heartbeat_key(service: str) -> str:
    """``DOLPHIN_HEARTBEAT`` key of a DOLPHIN service: ``<service>_heartbeat``."""
    key = f"{service}_heartbeat"
    if not _HEARTBEAT_RE.match(key):
        raise ValueError(f"service name {service!r} must be lowercase letters, digits and _")
    return key


def check_symbol(symbol: str) -> str:
    if not SYMBOL_RE.match(symbol):
        raise ValueError(f"{symbol!r} is not a symbol (uppercase letters and digits, e.g. BTCUSDT)")
    return symbol


def feature_key(symbol: str, feature: str) -> str:
    """Shard-map key of one scalar feature (§15.3): ``"{feature}_{symbol}"``, e.g. ``vel_div_BTCUSDT``."""
    if not FEATURE_RE.match(feature):
        raise ValueError(f"{feature!r} is not a feature name (lowercase snake_case)")
    return f"{feature}_{check_symbol(symbol)}"


def parse_feature_key(key: str) -> tuple[str, str] | None:
    """``"vel_div_BTCUSDT"`` → ``("vel_div", "BTCUSDT")``; None for any other key."""
    match = _FEATURE_KEY_RE.match(key)
    return (match["feature"], match["symbol"]) if match else None


# ---------------------------------------------------------------- registry
Decoder = Callable[[Any], Any]  # a JSON value already parsed by msgspec → payload
Encoder = Callable[[Any], Any]  # payload → JSON-encodable value


@dataclass(frozen=True)
class KeySpec:
    """What lives under one key (or key pattern) of one map."""

    map_name: str | re.Pattern[str]
    key: str | re.Pattern[str]
    payload: Any  # the Python type decoded values have
    label: str  # for counters and logs, e.g. "DOLPHIN_PNL_BLUE[<date>]"
    time_field: str  # which wire field gives the age ("" if none)
    wire_type: Any = None  # what msgspec decodes from JSON when it differs from `payload`
    from_wire: Decoder | None = None
    to_wire: Encoder | None = None

    def matches(self, map_name: str, key: str) -> bool:
        name_ok = (self.map_name == map_name if isinstance(self.map_name, str)
                   else self.map_name.match(map_name) is not None)
        if not name_ok:
            return False
        return self.key == key if isinstance(self.key, str) else self.key.match(key) is not None


def _eigen_from_wire(value: dict[str, Any]) -> p.EigenScan | p.EigenScanNG7:
    """NG7 nests its statistics under ``result``; NG8 is flat (§28.5)."""
    if "result" in value:
        return msgspec.convert(value, p.EigenScanNG7)
    return msgspec.convert(value, p.EigenScan)


_SHARD_MAP_RE = re.compile(rf"^{SHARD_MAP_PREFIX}\d{{2}}$")

SPECS: tuple[KeySpec, ...] = (
    KeySpec(FEATURES, LATEST_EIGEN_SCAN, p.EigenScan | p.EigenScanNG7, f"{FEATURES}[{LATEST_EIGEN_SCAN}]",
            "timestamp_ns (NG8) / timestamp (NG7)", wire_type=dict[str, Any], from_wire=_eigen_from_wire),
    KeySpec(FEATURES, ACB_BOOST, p.AcbBoost, f"{FEATURES}[{ACB_BOOST}]", "_pushed_at"),
    KeySpec(FEATURES, EXF_LATEST, p.ExfLatest, f"{FEATURES}[{EXF_LATEST}]", "_pushed_at"),
    KeySpec(FEATURES, OBF_UNIVERSE_LATEST, p.ObfUniverse, f"{FEATURES}[{OBF_UNIVERSE_LATEST}]", "_snapshot_utc"),
    KeySpec(FEATURES, MC_FOREWARNER_LATEST, p.McForewarner, f"{FEATURES}[{MC_FOREWARNER_LATEST}]", "timestamp"),
    KeySpec(FEATURES, OB_MACRO_LATEST, p.ObMacro, f"{FEATURES}[{OB_MACRO_LATEST}]", "_pushed_at"),
    KeySpec(FEATURES, OBF_STATUS, p.ObfStatus, f"{FEATURES}[{OBF_STATUS}]", "timestamp"),
    KeySpec(SAFETY, LATEST, p.SafetyState, f"{SAFETY}[{LATEST}]", "timestamp"),
    KeySpec(STATE_BLUE, LATEST, p.StrategyState, f"{STATE_BLUE}[{LATEST}]", "updated_at"),
    KeySpec(STATE_BLUE, LATEST_NAUTILUS, p.NautilusState, f"{STATE_BLUE}[{LATEST_NAUTILUS}]", "updated_at"),
    KeySpec(STATE_BLUE, _STATE_RUN_RE, p.StrategyState, f"{STATE_BLUE}[state_<strategy>_<date>]", "updated_at"),
    KeySpec(PNL_BLUE, _DATE_RE, p.DailyResult, f"{PNL_BLUE}[<date>]", "updated_at"),
    KeySpec(PNL_GREEN, _DATE_RE, p.DailyResult, f"{PNL_GREEN}[<date>]", "updated_at"),
    KeySpec(HEARTBEAT, PROBE_TS, p.ProbeTimestamp, f"{HEARTBEAT}[{PROBE_TS}]", "(the value)",
            wire_type=float, from_wire=lambda v: p.ProbeTimestamp(ts=v), to_wire=lambda v: v.ts),
    KeySpec(HEARTBEAT, LATEST, p.Heartbeat, f"{HEARTBEAT}[{LATEST}]", "ts"),
    KeySpec(HEARTBEAT, _HEARTBEAT_RE, p.Heartbeat, f"{HEARTBEAT}[<service>_heartbeat]", "ts"),
    KeySpec(META_HEALTH, LATEST, p.MetaHealth, f"{META_HEALTH}[{LATEST}]", "timestamp"),
    KeySpec(ORDER_BOOK, SYMBOL_RE, p.ObSnapshot, f"{ORDER_BOOK}[<symbol>]", "timestamp"),
    KeySpec(_SHARD_MAP_RE, SYMBOL_RE, p.ObFeatures, f"{SHARD_MAP_PREFIX}NN[<symbol>]", "timestamp"),
    KeySpec(_SHARD_MAP_RE, _FEATURE_KEY_RE, float, f"{SHARD_MAP_PREFIX}NN[<feature>_<symbol>]", ""),
)


def spec_for(map_name: str, key: str) -> KeySpec | None:
    """The spec of a key, or None if the schema does not know it."""
    for spec in SPECS:
        if spec.matches(map_name, key):
            return spec
    return None


# Keys `dolphin hz status` reports ages for: one value each, always under the same key.
MONITORED_KEYS: tuple[tuple[str, str], ...] = (
    (FEATURES, LATEST_EIGEN_SCAN),
    (FEATURES, ACB_BOOST),
    (FEATURES, EXF_LATEST),
    (FEATURES, OBF_UNIVERSE_LATEST),
    (FEATURES, OB_MACRO_LATEST),
    (FEATURES, MC_FOREWARNER_LATEST),
    (SAFETY, LATEST),
    (STATE_BLUE, LATEST),
    (HEARTBEAT, LATEST),
    (META_HEALTH, LATEST),
)
