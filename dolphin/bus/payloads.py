"""Typed payloads of the bus values (bible §15.1, §16.7, §24.5, §26.2, §26.3, §27.5, §28.6).

Every value on the bus is a JSON string. Each key has one msgspec Struct here, named
with the bible's field names, so an existing DOLPHIN deployment and this one read each
other's values. Rules common to all of them:

* frozen: a decoded payload can be handed between threads without copying;
* unknown fields are ignored (newer writers may add fields), missing required fields,
  wrong types, NaN or infinities are rejected;
* every payload knows its own time (`timestamp_s()`, unix seconds), so consumers
  and `dolphin hz status` compute ages without knowing each key's field name.

Fields the bible does not specify are documented in ``docs/bus.md`` as DOLPHIN's own.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgspec

from dolphin.enums import (
    GaugeLevel,
    HealthState,
    HealthStatus,
    McStatus,
    ParityCause,
    ParityDiffKind,
    ParityStage,
    ParityStatus,
    Posture,
    RecoveryOutcome,
    StepCoverage,
    WarmupUnit,
)
from dolphin.isotime import parse_iso_utc

POSTURES: tuple[Posture, ...] = tuple(Posture)
NULL_RAW = msgspec.Raw(b"null")  # an absent raw document (msgspec.Raw cannot be Optional)


# ---------------------------------------------------------------- helpers
def parse_time(value: float | int | str) -> float:
    """Unix seconds from a unix number or an ISO-8601 string (naive = UTC)."""
    if isinstance(value, (int, float)):
        return float(value)
    return parse_iso_utc(value)


def iso_utc(seconds: float) -> str:
    """ISO-8601 UTC with a ``+00:00`` offset, as the bible's writers emit."""
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def _check_finite(value: Any, path: str) -> None:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} is not finite ({value})")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite(v, f"{path}[{i}]")


def _in_range(value: float | None, low: float, high: float, path: str) -> None:
    if value is not None and not low <= value <= high:
        raise ValueError(f"{path}={value} is outside [{low}, {high}]")


class Payload(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every bus value: rejects NaN/inf anywhere (the JSON of our peers forbids them)."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            _check_finite(getattr(self, name), name)

    def timestamp_s(self) -> float | None:
        """When the value was produced (unix seconds), or None if the payload has no time."""
        return None

    def published_s(self) -> float | None:
        """Wall-clock time of the bus write, for ages and the future-timestamp check.

        Usually the payload's own time. Scans differ: their `timestamp_ns` is market time,
        which runs ahead of the wall clock under an accelerated simulator, so their
        publish time is `bridge_ts`.
        """
        return self.timestamp_s()


# ---------------------------------------------------------------- DOLPHIN_FEATURES["latest_eigen_scan"]
class WindowStats(Payload, frozen=True, kw_only=True):
    """Per-window eigen statistics; `velocity` is what every consumer reads (§28.5)."""

    velocity: float
    lambda_max: float | None = None
    instability: float | None = None


class EigenScan(Payload, frozen=True, kw_only=True):
    """NG8 flat scan (§27.5), plus `asset_prices` and `timestamp_ns` (§15.1) the trader needs."""

    scan_number: int
    timestamp_ns: int
    vel_div: float
    w50_velocity: float
    w750_velocity: float
    asset_prices: dict[str, float]
    w150_velocity: float | None = None
    w300_velocity: float | None = None
    instability_50: float | None = None
    instability_150: float | None = None
    timestamp: str | None = None  # ISO-8601 (MHS reads this field, §24.5.5)
    bridge_ts: float | None = None  # unix seconds at the bus write
    eigenvalue_gradients: dict[str, float] = {}
    multi_window_results: dict[str, WindowStats] = {}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scan_number < 0:
            raise ValueError(f"scan_number={self.scan_number} is negative")
        if self.timestamp_ns <= 0:
            raise ValueError("timestamp_ns must be positive")
        for symbol, price in self.asset_prices.items():
            if price <= 0:
                raise ValueError(f"asset_prices.{symbol}={price} is not a positive price")
        if self.timestamp is not None:
            parse_time(self.timestamp)

    def timestamp_s(self) -> float:
        return self.timestamp_ns / 1e9

    def published_s(self) -> float:
        return self.bridge_ts if self.bridge_ts is not None else self.timestamp_s()


class EigenScanNG7Result(Payload, frozen=True, kw_only=True):
    multi_window_results: dict[str, WindowStats]
    vel_div: float | None = None
    asset_prices: dict[str, float] = {}


class EigenScanNG7(Payload, frozen=True, kw_only=True):
    """NG7 nested scan (§28.5): the statistics sit under ``result``. Read-only: we never write it."""

    scan_number: int
    timestamp: str | float
    result: EigenScanNG7Result

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_time(self.timestamp)

    def timestamp_s(self) -> float:
        return parse_time(self.timestamp)


# ---------------------------------------------------------------- DOLPHIN_FEATURES["acb_boost"]
class AcbBoost(Payload, frozen=True, kw_only=True):
    """ACB v6 output (§10, §15.1); everything but `boost` and `beta` is a DOLPHIN addition.

    `factors` are the ExF values the verdict used (a stale factor is left out and named in
    `stale_factors`); `computed_at` is when the verdict was last evaluated, `_pushed_at` when
    it was last written (the ACB rewrites a standing verdict so its freshness shows);
    `fence` and `writer` identify the holder of the CP writer lock that wrote it (§15.5).
    """

    boost: float
    beta: float
    pushed_at: float | None = msgspec.field(default=None, name="_pushed_at")
    date: str | None = None
    signals: float | None = None
    factors: dict[str, float] = {}
    stale_factors: list[str] = []
    computed_at: float | None = None
    trigger: str | None = None          # why the verdict was last evaluated (dolphin.services.acb)
    w750_now: float | None = None
    w750_threshold: float | None = None
    ob_stress: bool | None = None       # OB-4: macro withdrawal stress lifted beta
    fence: int | None = None
    writer: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.boost <= 0:
            raise ValueError(f"boost={self.boost} must be > 0")
        _in_range(self.beta, 0.0, 1.0, "beta")
        if self.computed_at is not None:
            parse_time(self.computed_at)

    def timestamp_s(self) -> float | None:
        return self.pushed_at


# ---------------------------------------------------------------- DOLPHIN_FEATURES["exf_latest"]
EXF_FACTORS: tuple[str, ...] = ("funding_btc", "dvol_btc", "fng", "taker")
"""The four external factors of §10.2, by their wire names."""


class ExfLatest(Payload, frozen=True, kw_only=True):
    """External factors (§10.2, §16.7); `_pushed_at` is the canonical freshness field."""

    pushed_at: float = msgspec.field(name="_pushed_at")
    funding_btc: float | None = None
    dvol_btc: float | None = None
    fng: float | None = None
    taker: float | None = None
    ages: dict[str, float] = {}         # DOLPHIN: seconds since each factor's last good fetch, at _pushed_at
    stale: list[str] = []               # DOLPHIN: factors past their freshness limit (or never fetched)
    errors: dict[str, str] = {}         # DOLPHIN: the last failure of each factor whose source is failing

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range(self.fng, 0.0, 100.0, "fng")
        if self.dvol_btc is not None and self.dvol_btc < 0:
            raise ValueError(f"dvol_btc={self.dvol_btc} is negative")
        if self.taker is not None and self.taker < 0:
            raise ValueError(f"taker={self.taker} is negative")
        for name, age in self.ages.items():
            if age < 0:
                raise ValueError(f"ages.{name}={age} is negative")

    def timestamp_s(self) -> float:
        return self.pushed_at

    def value(self, name: str) -> float | None:
        """One factor by its §10.2 name (``funding_btc``, ``dvol_btc``, ``fng``, ``taker``)."""
        return getattr(self, name) if name in EXF_FACTORS else None

    def age_of(self, name: str, now: float) -> float | None:
        """Seconds since `name` was last fetched, at `now`; None if it never was (or the writer keeps no ages)."""
        age = self.ages.get(name)
        return None if age is None else age + max(0.0, now - self.pushed_at)


# ---------------------------------------------------------------- DOLPHIN_FEATURES["obf_universe_latest"]
class ObfAssetHealth(Payload, frozen=True, kw_only=True):
    """L2 health of one perpetual (§26.2)."""

    spread_bps: float
    depth_1pct_usd: float
    depth_quality: float
    fill_probability: float
    imbalance: float
    best_bid: float
    best_ask: float
    n_bid_levels: int
    n_ask_levels: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range(self.fill_probability, 0.0, 1.0, "fill_probability")
        _in_range(self.imbalance, -1.0, 1.0, "imbalance")
        if self.spread_bps < 0 or self.depth_1pct_usd < 0 or self.depth_quality < 0:
            raise ValueError("spread_bps, depth_1pct_usd and depth_quality must be >= 0")
        if self.best_bid <= 0 or self.best_ask <= 0:
            raise ValueError("best_bid and best_ask must be positive prices")
        if self.n_bid_levels < 0 or self.n_ask_levels < 0:
            raise ValueError("level counts must be >= 0")


class ObfUniverse(Payload, frozen=True, kw_only=True):
    """Universe-wide OB health snapshot (§15.1, §26.2)."""

    snapshot_utc: float = msgspec.field(name="_snapshot_utc")
    n_assets: int = msgspec.field(name="_n_assets")
    assets: dict[str, ObfAssetHealth]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_assets < 0:
            raise ValueError("_n_assets must be >= 0")

    def timestamp_s(self) -> float:
        return self.snapshot_utc


# ---------------------------------------------------------------- DOLPHIN_FEATURES["mc_forewarner_latest"]
class McForewarner(Payload, frozen=True, kw_only=True):
    """MC-Forewarner assessment (§28.6).

    The five bible fields come first; the rest are DOLPHIN's own (docs/mcfw.md), optional
    so a peer's report without them decodes: how the Monte-Carlo ran (paths, horizon,
    drawdown limit, history used, seed, ACB state, compute time), what it found beyond
    the two numbers (median and 95th-percentile drawdown, median return), for a
    fallback why, and the writer's recent probabilities (the TUI's history).
    """

    status: McStatus
    catastrophic_prob: float
    envelope_score: float
    source: str           # McSource values from DOLPHIN; REAL_MODEL from a bible deployment
    timestamp: str
    paths: int | None = None
    horizon_days: float | None = None
    drawdown_limit: float | None = None
    history_days: float | None = None
    history_start: str | None = None
    history_end: str | None = None
    assets: int | None = None
    seed: int | None = None
    base_boost: float | None = None
    max_leverage: float | None = None
    median_drawdown: float | None = None
    p95_drawdown: float | None = None
    median_return: float | None = None
    compute_s: float | None = None
    reason: str | None = None
    prob_history: list[float] | None = None   # the writer's recent catastrophic_prob values, oldest first


    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range(self.catastrophic_prob, 0.0, 1.0, "catastrophic_prob")
        parse_time(self.timestamp)
        for name in ("history_start", "history_end"):
            value = getattr(self, name)
            if value is not None:
                parse_time(value)
        if self.paths is not None and self.paths < 0:
            raise ValueError(f"paths={self.paths} must be >= 0")
        _in_range(self.drawdown_limit, 0.0, 1.0, "drawdown_limit")
        for k, value in enumerate(self.prob_history or ()):
            _in_range(value, 0.0, 1.0, f"prob_history[{k}]")
        for name in ("horizon_days", "history_days", "compute_s", "base_boost", "max_leverage", "median_drawdown",
                     "p95_drawdown"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}={value} must be >= 0")

    def timestamp_s(self) -> float:
        return parse_time(self.timestamp)


# ---------------------------------------------------------------- DOLPHIN_FEATURES_SHARD_NN[symbol]
class ObFeatures(Payload, frozen=True, kw_only=True):
    """Per-asset OB features in the shard maps (§9.1, §15.1), at one OB bar (docs/obf.md).

    `timestamp` (wall clock of the push), `bar_ms` (market time the bar closed),
    `cascading`, `spread_bps` and `depth_1pct_usd` are DOLPHIN additions.
    """

    imbalance: float
    fill_probability: float
    depth_quality: float
    regime_signal: float | None = None
    imbalance_ma5: float | None = None
    imbalance_persistence: float | None = None
    withdrawal_velocity: float | None = None
    timestamp: float | None = None
    bar_ms: int | None = None
    cascading: bool = False
    spread_bps: float | None = None
    depth_1pct_usd: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range(self.imbalance, -1.0, 1.0, "imbalance")
        _in_range(self.fill_probability, 0.0, 1.0, "fill_probability")
        if self.depth_quality < 0:
            raise ValueError("depth_quality must be >= 0")

    def timestamp_s(self) -> float | None:
        return self.timestamp


# ---------------------------------------------------------------- DOLPHIN_FEATURES["ob_macro_latest"]
class ObMacro(Payload, frozen=True, kw_only=True):
    """Market-wide OB features at one OB bar (§9.2; a DOLPHIN key, docs/obf.md).

    `bar_ms` is the market time the bar closed: a consumer stepping bar t uses the macro
    of the latest OB bar at or before t's close, never a later one (the §20.1 per-timestamp
    rule: a fast replay cannot read a macro from its future).
    """

    bar_ms: int
    cascade_count: int
    regime_signal: float
    market_imbalance: float
    assets: int
    pushed_at: float = msgspec.field(name="_pushed_at")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cascade_count < 0 or self.assets < 0 or self.bar_ms <= 0:
            raise ValueError("cascade_count and assets must be >= 0 and bar_ms positive")
        if self.regime_signal not in (-1.0, 0.0, 1.0):
            raise ValueError(f"regime_signal={self.regime_signal} is not -1, 0 or +1")
        _in_range(self.market_imbalance, -1.0, 1.0, "market_imbalance")

    def timestamp_s(self) -> float:
        return self.pushed_at


# ---------------------------------------------------------------- DOLPHIN_FEATURES["obf_status"]
class ObfStatus(Payload, frozen=True, kw_only=True):
    """The OBF daemon's own counters (a DOLPHIN key, docs/obf.md): what `dolphin obf status` shows.

    Also written to ``<home>/ob_cache/obf_status.json`` so the status reads during a bus outage.
    """

    timestamp: float                     # wall clock of this status
    pid: int
    phase: str                           # starting | warming | live | stalled
    started_at: float                    # wall clock the daemon started
    symbols: int                         # streams subscribed (the venue's USDT perpetuals)
    covered: int                         # symbols with a valid, not-dark book
    dark: int                            # symbols dark now (no update for `dark_bars` bars)
    messages: int                        # depth updates received since start
    message_rate: float                  # per second, over the last status interval
    last_bar_ms: int | None = None       # market time of the last bar closed
    last_snapshot_at: float | None = None  # wall clock of the last universe snapshot
    connections: int = 0
    reconnects: int = 0
    stalls: int = 0                      # whole-feed stalls (no update from any symbol for the timeout)
    dark_events: int = 0                 # symbols that went dark, counted each time
    dropped: dict[str, int] = {}         # frames and books dropped, by reason
    circuit: str = "closed"              # CircuitState of the bus writer
    push_failures: int = 0
    circuit_opens: int = 0
    fallback_writes: int = 0
    history_rows: int = 0
    history_parts: int = 0
    warmup_left_s: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.symbols, self.covered, self.dark, self.messages) < 0 or self.message_rate < 0:
            raise ValueError("counts and rates must be >= 0")

    def timestamp_s(self) -> float:
        return self.timestamp


# ---------------------------------------------------------------- DOLPHIN_OB[symbol]
class ObSnapshot(Payload, frozen=True, kw_only=True):
    """Raw top-of-book levels of one asset (DOLPHIN's shape: the bible leaves it open)."""

    symbol: str
    bids: list[tuple[float, float]]  # (price, quantity), best first
    asks: list[tuple[float, float]]
    timestamp: float

    def __post_init__(self) -> None:
        super().__post_init__()
        for side in (self.bids, self.asks):
            for price, qty in side:
                if price <= 0 or qty < 0:
                    raise ValueError(f"bad book level ({price}, {qty})")

    def timestamp_s(self) -> float:
        return self.timestamp


# ---------------------------------------------------------------- DOLPHIN_SAFETY["latest"] (+ CP AtomicReference)
class SafetyState(Payload, frozen=True, kw_only=True):
    """Survival-stack posture (§11, §14.6); `timestamp` and `reason` are DOLPHIN additions."""

    posture: Posture
    rm: float = msgspec.field(name="Rm")
    sensors: dict[str, float] = {}
    timestamp: float | None = None
    reason: str | None = None
    r_target: float | None = None       # DOLPHIN: the combined sensors before bounded recovery (§11.3)
    inputs: dict[str, float] = {}       # DOLPHIN: what each sensor read (heartbeat age, DVOL, drawdown, …)
    mc_status: str | None = None        # DOLPHIN: the MC status Cat2 scored
    seq: int | None = None              # DOLPHIN: the watchdog's evaluation number (one per market bar)
    market_ms: int | None = None        # DOLPHIN: market time of the evaluation

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range(self.rm, 0.0, 1.0, "Rm")
        _in_range(self.r_target, 0.0, 1.0, "r_target")

    def timestamp_s(self) -> float | None:
        return self.timestamp


# ---------------------------------------------------------------- DOLPHIN_PNL_BLUE / GREEN["YYYY-MM-DD"]
class DailyResult(Payload, frozen=True, kw_only=True):
    """One trading day's result (§14.7, §15.1). stale_state=True: DO NOT use for live orders."""

    date: str
    pnl: float
    capital: float
    trades: int
    boost: float
    beta: float
    mc_status: str
    posture: str | None = None
    stale_state: bool = False
    updated_at: float | str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        datetime.strptime(self.date, "%Y-%m-%d")
        if self.trades < 0:
            raise ValueError("trades must be >= 0")
        if self.updated_at is not None:
            parse_time(self.updated_at)

    def timestamp_s(self) -> float | None:
        return parse_time(self.updated_at) if self.updated_at is not None else None


# ---------------------------------------------------------------- DOLPHIN_STATE_BLUE
class OpenPositionView(Payload, frozen=True, kw_only=True):
    """The trader's open position, as operators see it (a DOLPHIN addition to §15.1)."""

    trade_id: int
    asset: str
    side: str
    entry_price: float
    notional: float
    leverage: float
    entry_ts: int             # ms, market time
    entry_scan: int


class TradeView(Payload, frozen=True, kw_only=True):
    """A recently closed trade (DOLPHIN addition: the TUI's "last trades")."""

    trade_id: int
    asset: str
    side: str
    entry_price: float
    exit_price: float
    pnl: float
    exit_reason: str
    exit_ts: int              # ms, market time


class LiveAlertView(Payload, frozen=True, kw_only=True):
    """One alert of the live trader (docs/live.md, "Alerts")."""

    kind: str
    symbol: str = ""
    detail: str
    at: float
    action: str = "alert"


class LiveStatus(Payload, frozen=True, kw_only=True):
    """`dolphin live`'s counters and alerts, carried in ``StrategyState.live`` (None for a paper trader).

    No secret is ever here: the venue is named, its keys and listen key are not.
    """

    network: str                               # sim | testnet | mainnet
    rest_url: str
    entry_order: str = "market"
    exit_order: str = "market"
    stream_connected: bool = False
    stream_connects: int = 0
    stream_reconnects: int = 0
    listen_key_renewals: int = 0
    listen_key_expirations: int = 0
    keepalives: int = 0
    keepalive_failures: int = 0
    storm_waits: int = 0
    stream_events: int = 0
    stream_dropped: int = 0
    resyncs: int = 0
    last_event_at: float | None = None
    orders: int = 0
    legs: int = 0
    fills: int = 0
    partial_fills: int = 0
    venue_rejects: int = 0
    risk_rejects: dict[str, int] = {}
    unfilled: int = 0
    lost_acks: int = 0
    rate_limited: int = 0
    stream_late: int = 0
    post_only_filled: int = 0
    post_only_fallbacks: int = 0
    halt_cancels: int = 0
    last_latency_ms: float | None = None
    latency_p50_ms: float | None = None
    last_slippage_bps: float | None = None
    reconciles: int = 0
    reconcile_failures: int = 0
    last_reconcile_at: float | None = None
    last_reconcile_ok: bool | None = None
    last_reconcile_detail: str = ""
    positions_unknown: bool = True            # no venue report yet (or the last failed): entries blocked
    disputed: list[str] = []                  # symbols where books and venue disagree (entries blocked)
    venue_positions: dict[str, float] = {}
    wallet: float | None = None
    session_start_wallet: float | None = None
    pauses: int = 0
    halts: int = 0
    alerts: dict[str, int] = {}               # by kind, since start
    active_alerts: list[LiveAlertView] = []
    recent_alerts: list[LiveAlertView] = []
    updated_at: float

    def timestamp_s(self) -> float:
        return self.updated_at


class StrategyState(Payload, frozen=True, kw_only=True):
    """Capital and engine continuity (§15.1 ``latest`` and ``state_{strategy}_{date}``).

    `engine_state` is the engine's own JSON document, carried raw: the engine owns its
    schema, the bus only moves it (the trader attaches it with each journal snapshot,
    not every scan). `open_position`, `posture`, `last_scan_number`, `recent_trades` and
    the counters are DOLPHIN additions.
    """

    strategy: str
    capital: float
    date: str
    pnl: float
    trades: int
    peak_capital: float
    drawdown: float
    updated_at: float | str
    engine_state: msgspec.Raw = NULL_RAW
    open_position: OpenPositionView | None = None
    posture: Posture | None = None
    last_scan_number: int | None = None
    last_scan_ts: int | None = None       # ms, market time of the last scan processed
    recent_trades: list[TradeView] = []
    venue: str | None = None
    stale_scans: int = 0
    stale_state_events: int = 0
    rejected_scans: dict[str, int] = {}   # bus scans refused, by reason (bus codec + the trader's gate)
    errors: int = 0                       # scan events that failed unexpectedly (the trader went on)
    halted: str | None = None             # why the trader is not stepping (its journal cannot be written)
    duplicates: int = 0                   # bus scans already stepped (re-deliveries)
    ob_source: str | None = None          # where the last step's OB features came from (dolphin.enums.ObSource)
    kill_level: str = "clear"             # the kill switch in force (dolphin.enums.KillLevel) and who set it, why, when
    kill_reason: str = ""
    kill_by: str = ""
    kill_at: float | None = None
    live: LiveStatus | None = None        # `dolphin live` only: venue, stream, orders, reconciliation, alerts

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_time(self.updated_at)
        _in_range(self.drawdown, 0.0, 1.0, "drawdown")

    def timestamp_s(self) -> float:
        return parse_time(self.updated_at)


class NautilusState(Payload, frozen=True, kw_only=True):
    """The Nautilus flow's continuity record (§15.1 ``latest_nautilus``)."""

    strategy: str
    capital: float
    date: str
    pnl: float
    trades: int
    posture: str
    param_hash: str
    updated_at: float | str
    engine: msgspec.Raw = NULL_RAW

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_time(self.updated_at)

    def timestamp_s(self) -> float:
        return parse_time(self.updated_at)


# ---------------------------------------------------------------- DOLPHIN_HEARTBEAT
class WarmupProgress(msgspec.Struct, frozen=True, kw_only=True):
    """How far a service's start-up has come: `done` of `total` `unit` (the scanner's backfill in bars,
    OBF's first-publish warm-up in seconds). A heartbeat without `unit` is the scanner's (bars)."""

    done: int
    total: int
    unit: WarmupUnit = WarmupUnit.BARS

    def __post_init__(self) -> None:
        if self.total <= 0 or not 0 <= self.done <= self.total:
            raise ValueError(f"warm-up progress {self.done}/{self.total} is out of range")

    def describe(self) -> str:
        """``412 of 899 bars`` / ``23 of 60 s``: the words MHS, the TUI and `dolphin up` print."""
        return f"{self.done:,} of {self.total:,} {self.unit}"


class Heartbeat(Payload, frozen=True, kw_only=True):
    """A liveness beat (§15.1 ``nautilus_flow_heartbeat``; DOLPHIN services use ``<service>_heartbeat``).

    `warmup` is DOLPHIN's: set while a service warms up (the scanner's start-up backfill), so
    `dolphin up`, the TUI and MHS can say "warming up, 412 of 899 bars" instead of "no data".
    """

    ts: float
    iso: str | None = None
    phase: str | None = None
    flow: str | None = None
    run_date: str | None = None
    service: str | None = None
    pid: int | None = None
    warmup: WarmupProgress | None = None

    def timestamp_s(self) -> float:
        return self.ts

    def warmup_text(self) -> str | None:
        """``backfilling 412 of 899 bars`` / ``warm-up 23 of 60 s`` (the phase, then the progress); None when
        the service is not warming up. The TUI and `dolphin up` print it."""
        if self.warmup is None:
            return None
        return f"{self.phase or 'warm-up'} {self.warmup.describe()}"


class ProbeTimestamp(Payload, frozen=True, kw_only=True):
    """Typed view of ``DOLPHIN_HEARTBEAT["probe_ts"]``, whose wire value is a bare number."""

    ts: float

    def timestamp_s(self) -> float:
        return self.ts


# ---------------------------------------------------------------- DOLPHIN_META_HEALTH["latest"]
class HzKeyStatus(Payload, frozen=True, kw_only=True):
    """Freshness of one monitored key (§24.5.5): score 1 fresh, 0.5 stale (>30 s), 0 dead (>120 s)."""

    score: float
    age_s: float | None = None
    status: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range(self.score, 0.0, 1.0, "score")


class RecoveryEvent(Payload, frozen=True, kw_only=True):
    """One restart MHS started (DOLPHIN's own): whom, in which supervisord state, when, and how it ended."""

    service: str
    found: str                     # the supervisord state MHS found the service in (STOPPED, EXITED, FATAL)
    at: float                      # unix seconds when MHS started the restart
    outcome: RecoveryOutcome
    error: str | None = None       # why it failed (outcome "failed")


class MetaHealth(Payload, frozen=True, kw_only=True):
    """MHS v3 report (§15.1, §24.5, §26.3).

    ``recoveries`` and ``recent_recoveries`` are DOLPHIN's own: the durable record of
    what MHS restarted since it started (a count per service, and the latest events), so
    a restart that happened between two looks at the report is never missed.
    """

    rm_meta: float
    status: HealthStatus
    m4_control_plane: float
    m1_data_infra: float
    m1_trader: float
    m2_heartbeat: float
    m3_data_freshness: float
    m5_coherence: float
    service_status: dict[str, str]
    hz_key_status: dict[str, HzKeyStatus]
    timestamp: float | str
    faults: list[str] = []                 # why the status is capped below what rm_meta alone says
    trader_lag_scans: int | None = None    # scans published but not (yet) stepped by a running trader
    trader_rejected_scans: int = 0         # bus scans the trader refused so far
    check_interval_s: float | None = None  # the MHS cadence: a report older than a few of these is stale
    recoveries: dict[str, int] = {}
    recent_recoveries: list[RecoveryEvent] = []

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rm_meta", "m4_control_plane", "m1_data_infra", "m1_trader", "m2_heartbeat",
                     "m3_data_freshness", "m5_coherence"):
            _in_range(getattr(self, name), 0.0, 1.0, name)
        parse_time(self.timestamp)

    def timestamp_s(self) -> float:
        return parse_time(self.timestamp)


# ---------------------------------------------------------------- DOLPHIN_FEATURES["parity_latest"]
class ParityDiff(Payload, frozen=True, kw_only=True):
    """One difference between live trading and a replay, with its cause class (docs/parity.md)."""

    stage: ParityStage
    cause: ParityCause
    kind: ParityDiffKind
    at_scan: int                          # where the difference starts: the entry scan, or the earlier exit
    at_ts: int | None = None              # ms, market time of `at_scan`
    asset: str = ""
    side: str = ""
    entry_scan: int | None = None
    live_exit_scan: int | None = None     # the live-side run's exit (None: not traded, or still open)
    replay_exit_scan: int | None = None   # the replay-side run's exit
    trade_id: int | None = None           # the live-side run's trade id
    pnl_delta: float = 0.0                # live-side minus replay-side net PnL of this trade
    detail: str = ""


class ParityGap(Payload, frozen=True, kw_only=True):
    """A run of archived scans the trader did not trade (coverage gap, or a halt)."""

    kind: StepCoverage
    first_scan: int
    last_scan: int
    scans: int
    first_ts: int | None = None           # ms, market time
    last_ts: int | None = None


class ParityReport(Payload, frozen=True, kw_only=True):
    """The parity monitor's report: live trading against its replays, trade by trade (a DOLPHIN key)."""

    strategy: str
    status: ParityStatus
    timestamp: float                      # wall clock of the report
    journal: str = ""
    venue: str = ""
    first_scan: int | None = None         # the session span (the journal's first step to its last commit)
    last_scan: int | None = None
    span_start_ts: int | None = None      # ms, market time
    span_end_ts: int | None = None
    since_ts: int | None = None           # ms: only differences and scans from here on are counted
    scans: int = 0                        # archived scans in the span
    traded_scans: int = 0
    unstepped_scans: int = 0
    untraded_scans: int = 0
    halted_scans: int = 0
    scan_coverage: float | None = None    # traded / scans
    replay_entries: int = 0               # the backtest replay's entries (the signals it acted on)
    seen_entries: int = 0                 # … on scans the trader stepped and traded
    acted_entries: int = 0                # … that live took too (same asset, side, entry scan)
    signal_coverage: float | None = None  # seen / replay entries
    acted_share: float | None = None      # acted / replay entries
    live_trades: int = 0
    backtest_trades: int = 0
    matched: int = 0
    missed: int = 0
    extra: int = 0
    exact_match: bool = True              # the journal-exact replay reproduces the books
    causes: dict[str, int] = {}           # differences by cause class
    unexplained: int = 0
    pnl_live: float = 0.0
    pnl_model: float = 0.0
    pnl_backtest: float = 0.0
    pnl_diff: float = 0.0                 # live − backtest = execution + inputs
    pnl_execution: float = 0.0            # live − the engine's fill model
    pnl_inputs: float = 0.0               # the fill model − the backtest
    price_drift_bps_mean: float | None = None   # adverse fill-price drift per leg, venue vs model
    price_drift_bps_max: float | None = None
    fee_drift_bps_mean: float | None = None     # fee rate drift per trade (of notional), venue vs model
    fee_drift_bps_max: float | None = None
    tolerance_price_bps: float = 0.0
    tolerance_fee_bps: float = 0.0
    gaps: list[ParityGap] = []            # the most recent runs of untraded scans
    gaps_total: int = 0
    diffs: list[ParityDiff] = []          # the most recent differences
    diffs_total: int = 0
    behind_scans: int = 0                 # archived scans after the journal's last commit
    archive_missing: int = 0              # stepped scans the archive does not hold
    replay_seconds: float = 0.0
    interval_s: float | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("scan_coverage", "signal_coverage", "acted_share"):
            _in_range(getattr(self, name), 0.0, 1.0, name)

    def timestamp_s(self) -> float:
        return self.timestamp


# ---------------------------------------------------------------- DOLPHIN_FEATURES["strategy_health_latest"]
class HealthGauge(Payload, frozen=True, kw_only=True):
    """One decay gauge: a live metric against its backtest baseline (seed KB "Decay Gauge")."""

    metric: str                           # expectancy | sharpe | drawdown | win_rate | frequency
    live: float | None = None
    baseline: float | None = None
    ratio: float | None = None            # live / baseline (drawdown: baseline / live, so 1 is at baseline)
    level: GaugeLevel = GaugeLevel.NONE


class StrategyHealthReport(Payload, frozen=True, kw_only=True):
    """A strategy's health and decay against its registered baseline (a DOLPHIN key; docs/parity.md)."""

    strategy: str
    state: HealthState
    timestamp: float
    evaluated: HealthState = HealthState.PROBATION   # what the metrics alone say now (state is sticky)
    trades: int = 0                       # closed trades evaluated (since the last reset)
    reasons: list[str] = []
    gauges: list[HealthGauge] = []
    expectancy_ratio: float | None = None
    sharpe_ratio: float | None = None
    dd_stress: float | None = None
    baseline_registered: bool = False
    baseline_source: str = ""
    baseline_matches_config: bool | None = None
    disabled_at: float | None = None
    disabled_reason: str = ""
    kill_engaged: bool = False            # the disable paused entries through the kill switch
    reset_after_trade: int | None = None
    interval_s: float | None = None
    error: str | None = None

    def timestamp_s(self) -> float:
        return self.timestamp
