"""The services configuration (configs/services.yml): bus, market, per-service and supervisor settings.

Precedence: built-in defaults < configs/services.yml < environment (``DOLPHIN_HZ_PORT``,
``DOLPHIN_HZ_CLUSTER``, ``DOLPHIN_SIM_HOST``, ``DOLPHIN_SIM_PORT``, ``DOLPHIN_SIM_SPEED``, ``DOLPHIN_MARKET``,
``DOLPHIN_TRADER_STRATEGY``, ``DOLPHIN_TRADER_VENUE``, ``DOLPHIN_TRADER_STALE_AFTER_S``, ``DOLPHIN_MHS_RECOVERY``,
``DOLPHIN_MHS_INTERVAL``, ``DOLPHIN_PARITY_INTERVAL``, ``DOLPHIN_PROGRAMS``, ``DOLPHIN_OBF_CADENCE``,
``DOLPHIN_OBF_SNAPSHOT_S``, ``DOLPHIN_OBF_WARMUP_S``, the ``DOLPHIN_EXF_*``, ``DOLPHIN_ACB_*`` and
``DOLPHIN_WATCHDOG_*`` of `_ENV`) < command-line flags. Secrets never live here: API keys come from the environment only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dolphin.config.loader import build_section, read_yaml
from dolphin.engine.params import spec
from dolphin.errors import ConfigError
from dolphin.paths import config_dir, display_path


@dataclass(frozen=True, slots=True)
class BusSection:
    embedded: bool = spec(True, doc="run DOLPHIN's member under supervisord when DOLPHIN_HZ_MEMBERS is empty")
    host: str = spec("127.0.0.1")
    port: int = spec(5701, 1, 65535)
    cluster_name: str = spec("dolphin")


@dataclass(frozen=True, slots=True)
class MarketSection:
    source: str = spec("sim", choices=("sim", "binance"))
    binance_network: str = spec("testnet", choices=("testnet", "mainnet"))
    sim_host: str = spec("127.0.0.1")
    sim_port: int = spec(8790, 1, 65535)
    speed: float = spec(1.0, 0.01, 10_000.0)
    seed: int = spec(7, 0, 2**32 - 1)
    symbols: int = spec(50, 1, 540)


@dataclass(frozen=True, slots=True)
class ScannerSection:
    symbols: int = spec(50, 2, 540)
    bar_seconds: int = spec(5, 1, 3600)
    precision: str = spec("float64", choices=("float64", "arb512"))


@dataclass(frozen=True, slots=True)
class TraderSection:
    autostart: bool = spec(True, doc="start the trader with the family (paper by default)")
    strategy: str = spec("blue")
    venue: str = spec("auto", choices=("auto", "paper", "sim"),
                      doc="sim: orders on the simulator, its fills are the books; paper: no venue (replays, tests); "
                          "auto: sim on a simulated market, paper otherwise (real venues are `dolphin live`'s)")
    stale_after_s: float = spec(10.0, 0.1, 3_600.0, doc="a scan older than this (market seconds) is not traded")
    kill_switch: str = spec("KILL", doc="kill-switch file, relative to the runtime root unless absolute")


@dataclass(frozen=True, slots=True)
class LiveSection:
    """`dolphin live` (docs/live.md). The venue is Binance testnet unless `--mainnet` is given on the command
    line: nothing here can select mainnet. Keys come from the environment or ``keys_file`` (0600)."""

    strategy: str = spec("", doc="strategy config of the live book; empty: trader.strategy")
    keys_file: str = spec("secrets/live-keys.json", doc="0600 JSON {api_key, api_secret}, relative to the runtime "
                                                       "root unless absolute (DOLPHIN_BINANCE_API_* win)")
    entry_order: str = spec("market", choices=("market", "post_only"),
                            doc="market: taker 0.05 %; post_only: maker 0.02 % if filled in post_only_timeout_s, "
                                "then market for the rest")
    exit_order: str = spec("market", choices=("market", "post_only"))
    post_only_timeout_s: float = spec(2.0, 0.1, 300.0)
    symbol_leverage: int = spec(5, 1, 125, doc="leverage set on a symbol before its first entry")
    margin_type: str = spec("CROSSED", choices=("CROSSED", "ISOLATED"))
    # pre-trade risk checks (entries; exits are never refused, only paced)
    max_notional_usdt: float = spec(50_000.0, 5.0, 1e9, doc="one order's notional at the mark")
    leverage_ceiling: float = spec(3.0, 0.1, 125.0, doc="open notional after the order / wallet balance")
    max_open_positions: int = spec(1, 1, 100, doc="positions on the venue after the order")
    price_band_pct: float = spec(2.0, 0.01, 100.0, doc="the engine's price within this % of the venue's mark")
    max_orders_per_s: float = spec(10.0, 0.1, 1_000.0, doc="order-rate throttle (token bucket)")
    order_burst: int = spec(10, 1, 1_000)
    # orders' fate and fills
    fill_timeout_s: float = spec(5.0, 0.1, 300.0, doc="wait on the user-data stream before asking REST")
    order_resolve_s: float = spec(30.0, 1.0, 3_600.0, doc="an order not found nor refused by then halts stepping")
    # user-data stream
    keepalive_every_s: float = spec(1800.0, 1.0, 3_540.0, doc="listenKey keepalive (it lapses after 60 min)")
    backoff_max_s: float = spec(30.0, 0.1, 600.0)
    reconnects_per_min: int = spec(6, 1, 600, doc="storm guard: reconnects in any minute, then wait")
    # reconciliation
    reconcile_every_s: float = spec(15.0, 0.5, 3_600.0)
    on_phantom_position: str = spec("alert", choices=("alert", "escalate"))
    on_orphan_order: str = spec("alert", choices=("alert", "escalate"))
    on_side_mismatch: str = spec("alert", choices=("alert", "escalate"))
    on_size_mismatch: str = spec("alert", choices=("alert", "escalate"))
    # automatic escalation of the kill switch
    rejects_in_a_row: int = spec(3, 1, 1_000, doc="venue rejections in a row → temporary pause")
    latency_spike_ms: float = spec(2_000.0, 1.0, 600_000.0, doc="an order acknowledged slower than this is a spike")
    spikes_in_a_row: int = spec(3, 1, 1_000, doc="latency spikes in a row → temporary pause")
    pause_minutes: float = spec(5.0, 0.01, 1_440.0)
    reconcile_failures_halt: int = spec(8, 1, 10_000, doc="failed reconciliations in a row → persistent halt")
    balance_collapse_pct: float = spec(25.0, 1.0, 100.0, doc="wallet this % below the session's start → halt")
    # preflight
    min_balance_usdt: float = spec(100.0, 0.0, 1e12)
    max_clock_skew_ms: float = spec(1_000.0, 1.0, 60_000.0)
    min_free_disk_mb: float = spec(500.0, 0.0, 1e9)
    max_recent_errors: int = spec(20, 0, 1_000_000, doc="ERROR lines in the family's logs over 15 min")


@dataclass(frozen=True, slots=True)
class BridgeSection:
    watch: str = spec("", doc="an EXTERNAL scanner's arrow_scans folder; empty: no bridge in the family")


@dataclass(frozen=True, slots=True)
class ObfSection:
    cadence: str = spec("500ms", choices=("100ms", "250ms", "500ms"),
                        doc="depth5 stream cadence (bible §26.2: 500ms; 250ms is Binance's bare @depth5)")
    snapshot_interval_s: float = spec(60.0, 1.0, 3_600.0,
                                      doc="universe snapshot to the bus and Parquet flush period (wall seconds)")
    warmup_s: float = spec(60.0, 0.0, 3_600.0, doc="no OB feature is published before this long after start (§20.1)")
    dark_bars: int = spec(12, 1, 10_000, doc="a symbol without an update for this many bars is dark")
    stall_timeout_s: float = spec(30.0, 1.0, 3_600.0, doc="no update from any symbol this long: alert and resubscribe")
    push_timeout_s: float = spec(2.0, 0.05, 60.0, doc="one bus push gives up after this long")
    breaker_failures: int = spec(5, 1, 100, doc="consecutive failed pushes that open the circuit (§15.6)")
    breaker_backoff_s: float = spec(1.0, 0.05, 600.0, doc="first wait before a half-open probe; doubles per failed probe")
    breaker_backoff_max_s: float = spec(30.0, 0.05, 3_600.0)
    status_interval_s: float = spec(5.0, 0.1, 600.0, doc="DOLPHIN_FEATURES[obf_status] and its file")


@dataclass(frozen=True, slots=True)
class MhsSection:
    recovery: bool = spec(True, doc="restart stopped critical data services (bible §24.5.3)")
    check_interval_s: float = spec(10.0, 0.5, 3_600.0)
    cooldown_s: float = spec(10.0, 0.0, 86_400.0)


@dataclass(frozen=True, slots=True)
class ExfSection:
    """The external-factor daemon (bible §10.2, §16.7): where each factor comes from and how often."""

    binance_url: str = spec("", doc="Binance USD-M REST base (funding, taker ratio); empty: the market's own")
    deribit_url: str = spec("", doc="Deribit API base (DVOL); empty: the simulator on a simulated market, "
                                    "https://www.deribit.com otherwise")
    fng_url: str = spec("", doc="Fear & Greed API base; empty: the simulator on a simulated market, "
                                "https://api.alternative.me otherwise")
    symbol: str = spec("BTCUSDT", doc="the perpetual whose funding and taker ratio are read")
    poll_s: float = spec(60.0, 0.1, 86_400.0, doc="funding, taker ratio and DVOL are fetched this often")
    fng_poll_s: float = spec(300.0, 0.1, 86_400.0, doc="Fear & Greed is fetched this often (it moves slowly)")
    stale_polls: float = spec(3.0, 1.0, 1_000.0, doc="a factor is stale after this many poll intervals "
                                                     "without a good fetch")
    max_backoff_s: float = spec(300.0, 0.1, 86_400.0, doc="longest wait between retries of a failing source")
    publish_s: float = spec(10.0, 0.1, 3_600.0, doc="exf_latest is rewritten at least this often (freshness)")


@dataclass(frozen=True, slots=True)
class AcbSection:
    """The ACB v6 processor (bible §10, §15.5, §16.4)."""

    check_s: float = spec(1.0, 0.05, 60.0, doc="how often the processor looks at its inputs")
    republish_s: float = spec(10.0, 0.1, 3_600.0, doc="a standing verdict is rewritten this often (freshness)")
    lock_wait_s: float = spec(5.0, 0.1, 600.0, doc="each wait for the writer lock held by another instance")
    ob_macro_stale_s: float = spec(180.0, 1.0, 86_400.0, doc="an OB macro older than this is no stress signal")


@dataclass(frozen=True, slots=True)
class WatchdogSection:
    """The survival watchdog (bible §11, §14.6)."""

    interval_bars: float = spec(1.0, 0.05, 1_000.0, doc="evaluate once per this many market bars "
                                                        "(hysteresis counts evaluations)")
    dvol_spike_points: float = spec(10.0, 0.1, 1_000.0, doc="Cat4: DVOL this far above its trailing low is a spike")
    dvol_window_min: float = spec(60.0, 1.0, 10_080.0, doc="Cat4: the trailing window of that low (market minutes)")
    ob_sensor: str = spec("auto", choices=("auto", "on", "off"),
                          doc="Cat3 from OBF: auto = when the family runs OBF (else neutral)")
    ob_stale_s: float = spec(180.0, 1.0, 86_400.0, doc="Cat3: an OB universe older than this is stale")
    mc_no_history: str = spec("auto", choices=("auto", "orange", "neutral"),
                              doc="Cat2 on an MC report of FALLBACK_NO_DATA (no history to assess yet): orange is "
                                  "the bible's §28.6 (Rm ≤ 0.5: no entries); neutral counts it as no report; "
                                  "auto = neutral on a simulated market (a fresh paper family builds its history "
                                  "by trading), orange on Binance")
    trader_grace_s: float = spec(60.0, 0.0, 3_600.0, doc="Cat1: a trader heartbeat from before the watchdog "
                                                           "started gets this long to be renewed")


@dataclass(frozen=True, slots=True)
class McfwSection:
    """The MC-Forewarner daemon (docs/mcfw.md): how often and how big its Monte-Carlo of the engine is."""

    interval_h: float = spec(4.0, 0.001, 168.0, doc="hours between assessments (bible §28.6: every 4 h)")
    paths: int = spec(1000, 1, 100_000, doc="resampled paths per assessment")
    horizon_days: float = spec(7.0, 0.001, 365.0, doc="length of each path")
    history_days: float = spec(14.0, 0.01, 3_650.0, doc="recent history the paths are resampled from")
    block_minutes: float = spec(60.0, 0.01, 10_080.0, doc="block length of the bootstrap")
    drawdown_limit: float = spec(0.12, 0.001, 0.99, doc="a path is catastrophic when its drawdown reaches this")
    min_history_hours: float = spec(24.0, 0.0, 87_600.0, doc="less usable history → FALLBACK_NO_DATA")
    seed: int = spec(12, 0, 2**32 - 1)
    threads: int = spec(0, 0, 256, doc="numba threads for the paths; 0 = every core")
    klines: str = spec("", doc="klines file (Parquet/CSV) resampled when the runtime root has no scan archive")
    klines_bar: str = spec("", doc="bar size for the klines (e.g. 1m); empty = the file's own interval")


@dataclass(frozen=True, slots=True)
class ParitySection:
    interval_s: float = spec(60.0, 1.0, 86_400.0, doc="how often the parity monitor replays and publishes")
    max_price_drift_bps: float = spec(10.0, 0.0, 10_000.0,
                                      doc="adverse fill-price drift per leg (venue vs model) before it is a difference")
    max_fee_drift_bps: float = spec(1.0, 0.0, 10_000.0,
                                    doc="fee drift per round trip, bps of notional, before it is a difference")


@dataclass(frozen=True, slots=True)
class SupervisorSection:
    startsecs: int = spec(2, 0, 300)
    startretries: int = spec(5, 0, 100)
    stopwaitsecs: int = spec(15, 1, 600)
    log_max_mb: int = spec(20, 1, 10_000)
    log_backups: int = spec(5, 0, 1_000)
    up_timeout_s: float = spec(120.0, 1.0, 3_600.0)
    programs: str = spec("", doc="comma-separated programs this host runs when the family is split across "
                                 "hosts (DOLPHIN_PROGRAMS, `dolphin up --only`); empty = every program")


SERVICE_SECTIONS: dict[str, type] = {
    "bus": BusSection,
    "market": MarketSection,
    "scanner": ScannerSection,
    "trader": TraderSection,
    "live": LiveSection,
    "bridge": BridgeSection,
    "obf": ObfSection,
    "mhs": MhsSection,
    "exf": ExfSection,
    "acb": AcbSection,
    "watchdog": WatchdogSection,
    "mcfw": McfwSection,
    "parity": ParitySection,
    "supervisor": SupervisorSection,
}


@dataclass(frozen=True, slots=True)
class ServicesConfig:
    bus: BusSection = field(default_factory=BusSection)
    market: MarketSection = field(default_factory=MarketSection)
    scanner: ScannerSection = field(default_factory=ScannerSection)
    trader: TraderSection = field(default_factory=TraderSection)
    live: LiveSection = field(default_factory=LiveSection)
    bridge: BridgeSection = field(default_factory=BridgeSection)
    obf: ObfSection = field(default_factory=ObfSection)
    mhs: MhsSection = field(default_factory=MhsSection)
    exf: ExfSection = field(default_factory=ExfSection)
    acb: AcbSection = field(default_factory=AcbSection)
    watchdog: WatchdogSection = field(default_factory=WatchdogSection)
    mcfw: McfwSection = field(default_factory=McfwSection)
    parity: ParitySection = field(default_factory=ParitySection)
    supervisor: SupervisorSection = field(default_factory=SupervisorSection)

    @property
    def external_bus(self) -> bool:
        """A real cluster is configured: DOLPHIN runs no member of its own."""
        return bool(os.environ.get("DOLPHIN_HZ_MEMBERS", "").strip())

    @property
    def trader_venue(self) -> str:
        """The trader's venue after resolving ``auto``: ``sim`` or ``paper``."""
        if self.trader.venue == "auto":
            return "sim" if self.market.source == "sim" else "paper"
        return self.trader.venue

    @property
    def sim_rest_url(self) -> str:
        return f"http://{self.market.sim_host}:{self.market.sim_port}"

    @property
    def sim_ws_url(self) -> str:
        return f"ws://{self.market.sim_host}:{self.market.sim_port}"


_ENV: tuple[tuple[str, str, str, Any], ...] = (
    ("DOLPHIN_HZ_PORT", "bus", "port", int),
    ("DOLPHIN_HZ_CLUSTER", "bus", "cluster_name", str),
    ("DOLPHIN_SIM_HOST", "market", "sim_host", str),  # a family split across hosts: the simulator's address
    ("DOLPHIN_SIM_PORT", "market", "sim_port", int),
    ("DOLPHIN_SIM_SPEED", "market", "speed", float),
    ("DOLPHIN_MARKET", "market", "source", str),
    ("DOLPHIN_TRADER_STRATEGY", "trader", "strategy", str),
    ("DOLPHIN_TRADER_VENUE", "trader", "venue", str),
    ("DOLPHIN_TRADER_STALE_AFTER_S", "trader", "stale_after_s", float),
    ("DOLPHIN_MHS_RECOVERY", "mhs", "recovery", lambda v: v.strip().lower() in ("1", "true", "yes", "on")),
    ("DOLPHIN_MHS_INTERVAL", "mhs", "check_interval_s", float),
    ("DOLPHIN_EXF_BINANCE_URL", "exf", "binance_url", str),
    ("DOLPHIN_EXF_DERIBIT_URL", "exf", "deribit_url", str),
    ("DOLPHIN_EXF_FNG_URL", "exf", "fng_url", str),
    ("DOLPHIN_EXF_POLL_S", "exf", "poll_s", float),
    ("DOLPHIN_EXF_FNG_POLL_S", "exf", "fng_poll_s", float),
    ("DOLPHIN_EXF_PUBLISH_S", "exf", "publish_s", float),
    ("DOLPHIN_ACB_REPUBLISH_S", "acb", "republish_s", float),
    ("DOLPHIN_WATCHDOG_OB_SENSOR", "watchdog", "ob_sensor", str),
    ("DOLPHIN_WATCHDOG_SPIKE_POINTS", "watchdog", "dvol_spike_points", float),
    ("DOLPHIN_PARITY_INTERVAL", "parity", "interval_s", float),
    ("DOLPHIN_PROGRAMS", "supervisor", "programs", str),
    ("DOLPHIN_OBF_CADENCE", "obf", "cadence", str),
    ("DOLPHIN_OBF_SNAPSHOT_S", "obf", "snapshot_interval_s", float),
    ("DOLPHIN_OBF_WARMUP_S", "obf", "warmup_s", float),
)


def _with_env(raw: dict[str, Any], problems: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """``raw`` with the environment's overrides, and which variable set each overridden ``section.key``."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    origin: dict[str, str] = {}
    for var, section, key, cast in _ENV:
        value = os.environ.get(var)
        if value is None or value == "":
            continue
        try:
            converted = cast(value)
        except ValueError:
            problems.append(f"{var}: cannot read {value!r} as {getattr(cast, '__name__', 'a flag')}")
            continue
        out.setdefault(section, {})
        if isinstance(out[section], dict):
            out[section][key] = converted
            origin[f"{section}.{key}"] = var
    return out, origin


def services_from_mapping(raw: dict[str, Any], source: str = "<mapping>") -> ServicesConfig:
    """Validate the file's values, then the environment's overrides; every problem at once.

    The file is checked on its own first: a bad value there is an error even while a
    variable overrides it (it would surface the day the variable is unset).
    """
    problems: list[str] = []
    for key in sorted(set(raw) - set(SERVICE_SECTIONS)):
        problems.append(f"{key}: unknown section (known: {', '.join(SERVICE_SECTIONS)})")
    for name, cls in SERVICE_SECTIONS.items():
        build_section(name, cls, raw.get(name), problems)
    merged, origin = _with_env(raw, problems)
    env_problems: list[str] = []
    sections = {name: build_section(name, cls, merged.get(name), env_problems) for name, cls in SERVICE_SECTIONS.items()}
    for problem in env_problems:
        where = problem.split(":", 1)[0]
        if where in origin:
            problems.append(f"{problem} (from {origin[where]})")
        elif problem not in problems:
            problems.append(problem)
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems)
    return ServicesConfig(**sections)


def load_services_config(path: str | Path | None = None) -> ServicesConfig:
    """configs/services.yml (or ``path``) with environment overrides; defaults if the file is absent."""
    target = Path(path) if path is not None else config_dir() / "services.yml"
    try:
        present = target.is_file()
    except OSError as exc:
        raise ConfigError(f"services config {display_path(target)}: {exc.strerror or exc}") from None
    if path is not None and not present:
        raise ConfigError(f"services config not found: {display_path(target)}")
    raw = read_yaml(target) if present else {}
    return services_from_mapping(raw, source=str(target))


def override(cfg: ServicesConfig, section: str, **values: Any) -> ServicesConfig:
    """A copy with some keys of one section replaced (command-line flags), validated the same way."""
    current = getattr(cfg, section)
    raw = {f.name: getattr(current, f.name) for f in fields(current)}
    raw.update({k: v for k, v in values.items() if v is not None})
    problems: list[str] = []
    new = build_section(section, type(current), raw, problems)
    if problems:
        raise ConfigError("invalid option", problems)
    return replace(cfg, **{section: new})
