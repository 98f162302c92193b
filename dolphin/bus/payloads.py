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

from dolphin.enums import HealthStatus, McStatus, Posture
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
    """ACB v6 output (§10, §15.1). `_pushed_at`, `date`, `signals` are DOLPHIN additions."""

    boost: float
    beta: float
    pushed_at: float | None = msgspec.field(default=None, name="_pushed_at")
    date: str | None = None
    signals: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.boost <= 0:
            raise ValueError(f"boost={self.boost} must be > 0")
        _in_range(self.beta, 0.0, 1.0, "beta")

    def timestamp_s(self) -> float | None:
        return self.pushed_at


# ---------------------------------------------------------------- DOLPHIN_FEATURES["exf_latest"]
class ExfLatest(Payload, frozen=True, kw_only=True):
    """External factors (§10.2, §16.7); `_pushed_at` is the canonical freshness field."""

    pushed_at: float = msgspec.field(name="_pushed_at")
    funding_btc: float | None = None
    dvol_btc: float | None = None
    fng: float | None = None
    taker: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range(self.fng, 0.0, 100.0, "fng")
        if self.dvol_btc is not None and self.dvol_btc < 0:
            raise ValueError(f"dvol_btc={self.dvol_btc} is negative")
        if self.taker is not None and self.taker < 0:
            raise ValueError(f"taker={self.taker} is negative")

    def timestamp_s(self) -> float:
        return self.pushed_at


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
    """MC-Forewarner assessment (§28.6)."""

    status: McStatus
    catastrophic_prob: float
    envelope_score: float
    source: str
    timestamp: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range(self.catastrophic_prob, 0.0, 1.0, "catastrophic_prob")
        parse_time(self.timestamp)

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

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range(self.rm, 0.0, 1.0, "Rm")

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
class Heartbeat(Payload, frozen=True, kw_only=True):
    """A liveness beat (§15.1 ``nautilus_flow_heartbeat``; DOLPHIN services use ``<service>_heartbeat``)."""

    ts: float
    iso: str | None = None
    phase: str | None = None
    flow: str | None = None
    run_date: str | None = None
    service: str | None = None
    pid: int | None = None

    def timestamp_s(self) -> float:
        return self.ts


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


class MetaHealth(Payload, frozen=True, kw_only=True):
    """MHS v3 report (§15.1, §24.5, §26.3)."""

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

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rm_meta", "m4_control_plane", "m1_data_infra", "m1_trader", "m2_heartbeat",
                     "m3_data_freshness", "m5_coherence"):
            _in_range(getattr(self, name), 0.0, 1.0, name)
        parse_time(self.timestamp)

    def timestamp_s(self) -> float:
        return parse_time(self.timestamp)
