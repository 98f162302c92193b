"""`SimConfig`: everything that defines one simulator run, validated in one place.

The same seed, source and start give the same market (prices, klines, books, trades at a
given simulated time) — the configuration is the identity of a rehearsal. Listening
address, speed and state directory are operational and do not change the market.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dolphin.market.errors import SimConfigError
from dolphin.market.urls import DEFAULT_SIM_HOST, DEFAULT_SIM_PORT

DEFAULT_API_KEY = "dolphin-sim-key"
DEFAULT_API_SECRET = "dolphin-sim-secret"
"""Credentials the simulator accepts when none are configured (loopback rehearsal only)."""

SIM_KEY_ENV = "DOLPHIN_SIM_API_KEY"
SIM_SECRET_ENV = "DOLPHIN_SIM_API_SECRET"
DEFAULT_BALANCE = 25_000.0
DEFAULT_LEVERAGE = 20
MAKER_FEE = 0.0002
TAKER_FEE = 0.0005
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One simulator run.

    ``source`` is ``"synthetic"`` or the path of a klines file (Parquet/CSV) to replay.
    ``symbols`` is a count (the first N of the universe / of the file) or explicit names.
    ``start_ms`` None means the source's default: for the synthetic market the wall clock,
    the market placed so that day 1's first panic comes a few minutes after it starts
    ("live"); for a replay, a day into the file (its historical clock).
    ``tick_ms`` is the wall period of the emission loop (one message per stream per tick
    at most, except kline closes and trades, which are never skipped).
    """

    host: str = DEFAULT_SIM_HOST
    port: int = DEFAULT_SIM_PORT
    source: str = "synthetic"
    symbols: int | tuple[str, ...] | None = None
    seed: int = 7
    speed: float = 1.0
    start_ms: int | None = None
    bar_seconds: int = 5
    state_dir: Path | None = None
    api_key: str = DEFAULT_API_KEY
    api_secret: str = field(default=DEFAULT_API_SECRET, repr=False)
    balance: float = DEFAULT_BALANCE
    default_leverage: int = DEFAULT_LEVERAGE
    tick_ms: int = 100
    history_cache_mb: int = 256
    faults: tuple[str, ...] = ()
    """Fault rules to start with, as ``--fault`` specs (see `dolphin.market.sim.faults`)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be in [0, 65535], got {self.port}")
        if not 0 < self.speed <= 10_000:
            problems.append(f"speed must be in (0, 10000], got {self.speed}")
        if not 0 <= self.seed < 2**63:
            problems.append(f"seed must be in [0, 2**63), got {self.seed}")
        if not 10 <= self.tick_ms <= 1000:
            problems.append(f"tick_ms must be in [10, 1000], got {self.tick_ms}")
        if not self.balance > 0:
            problems.append(f"balance must be > 0, got {self.balance}")
        if not 1 <= self.default_leverage <= 125:
            problems.append(f"default leverage must be in [1, 125], got {self.default_leverage}")
        if not self.api_key or not self.api_secret:
            problems.append("api key and secret must not be empty")
        if isinstance(self.symbols, int) and not 1 <= self.symbols <= 540:
            problems.append(f"symbols must be between 1 and 540, got {self.symbols}")
        if self.history_cache_mb < 16:
            problems.append(f"history cache must be at least 16 MB, got {self.history_cache_mb}")
        if problems:
            raise SimConfigError("invalid simulator configuration: " + "; ".join(problems))
        from dolphin.market.sim.faults import parse_spec

        for spec in self.faults:
            parse_spec(spec)

    @property
    def is_replay(self) -> bool:
        return self.source != "synthetic"

    @property
    def is_live(self) -> bool:
        """A synthetic market with no --start runs on the wall clock (at speed 1, sim time = wall time)."""
        return not self.is_replay and self.start_ms is None


def parse_symbols(text: str | None) -> int | tuple[str, ...] | None:
    """``"540"`` → 540; ``"BTCUSDT,ETHUSDT"`` → ("BTCUSDT", "ETHUSDT"); empty → None (source default)."""
    if text is None or not str(text).strip():
        return None
    value = str(text).strip()
    if value.isdigit():
        return int(value)
    names = tuple(dict.fromkeys(s.strip().upper() for s in value.split(",") if s.strip()))
    bad = [n for n in names if not re.fullmatch(r"[A-Z0-9]{2,30}", n)]
    if bad or not names:
        raise SimConfigError(f"bad --symbols {text!r}: give a count (e.g. 540) or comma-separated symbols")
    return names


def parse_start(text: str | None) -> int | None:
    """``--start``: milliseconds since the epoch, or an ISO date/time (UTC unless it says otherwise)."""
    if text is None or not str(text).strip():
        return None
    value = str(text).strip()
    if re.fullmatch(r"\d{10,14}", value):
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SimConfigError(
            f"bad --start {text!r}: give milliseconds or an ISO time like 2026-01-06T00:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def credentials(key: str | None = None, secret: str | None = None) -> tuple[str, str, bool]:
    """(key, secret, is_default): explicit, else DOLPHIN_SIM_API_*, else DOLPHIN_BINANCE_API_*, else defaults."""
    key = key or os.environ.get(SIM_KEY_ENV) or os.environ.get("DOLPHIN_BINANCE_API_KEY")
    secret = secret or os.environ.get(SIM_SECRET_ENV) or os.environ.get("DOLPHIN_BINANCE_API_SECRET")
    if key and secret:
        return key, secret, False
    return DEFAULT_API_KEY, DEFAULT_API_SECRET, True
