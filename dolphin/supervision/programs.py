"""The daemon family: every program supervisord runs, its group, command and role.

Two groups as in the bible (§16.2–§16.3): `dolphin_data` starts with the family
(the bus member when no external cluster is configured, the simulator when the market
is simulated, the scanner and the data services), `dolphin` holds the trading programs
(trader, live, bridge). The OBF daemon runs in `dolphin_data` with the scanner: one process for the
universe snapshot and the per-bar OB features (docs/obf.md says why). The risk layer (`exf`,
`acb`, `watchdog`) are critical data services: MHS restarts them when they stop. The parity
monitor (replays the trader's journal, judges strategy health) runs with the data services.
The bridge is in the family only when `bridge.watch` names an external scanner's folder, and
then starts on demand; the trader starts with the family when
it paper-trades (`trader.autostart`, so `dolphin up` trades on its own) — set it to
false for the bible's start-by-hand discipline. `live` (real orders) never starts with the family and is
never restarted by MHS (bible §24.6.2); its command never carries the mainnet flags — the services config
cannot turn mainnet on. `critical_data` marks what MHS may restart.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dolphin.config.services import ServicesConfig

DATA_GROUP = "dolphin_data"
TRADING_GROUP = "dolphin"


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    group: str
    module: str
    description: str
    autostart: bool
    critical_data: bool
    priority: int
    publishes: tuple[str, ...] = ()
    args: Callable[[ServicesConfig, Path], list[str]] = lambda cfg, home: []
    enabled: Callable[[ServicesConfig], bool] = lambda cfg: True
    autostart_if: Callable[[ServicesConfig], bool] = lambda cfg: True

    def starts_with_family(self, cfg: ServicesConfig) -> bool:
        return self.autostart and self.autostart_if(cfg)

    @property
    def fullname(self) -> str:
        return f"{self.group}:{self.name}"

    def command(self, cfg: ServicesConfig, home: Path) -> list[str]:
        return [sys.executable, "-m", self.module, *self.args(cfg, home)]


def _hz_args(cfg: ServicesConfig, home: Path) -> list[str]:
    # the family's member checks the credentials `dolphin up` keeps in <home>/secrets/bus.json
    # CP sessions expire 30 s after their client died (Hazelcast's default is 300 s): a restarted ACB takes its
    # writer lock back from a kill -9'd predecessor within half a minute, not five
    return ["--host", cfg.bus.host, "--port", str(cfg.bus.port), "--cluster-name", cfg.bus.cluster_name,
            "--data-dir", str(home / "hz"), "--require-credentials", "--session-ttl", "30"]


def _sim_args(cfg: ServicesConfig, home: Path) -> list[str]:
    m = cfg.market
    return ["--host", m.sim_host, "--port", str(m.sim_port), "--speed", repr(m.speed), "--seed", str(m.seed),
            "--symbols", str(m.symbols), "--state-dir", str(home / "sim")]


PROGRAMS: tuple[Program, ...] = (
    Program("hz", DATA_GROUP, "dolphin.bus.member", "embedded Hazelcast-protocol member (the bus)", autostart=True,
            critical_data=False, priority=10, args=_hz_args,
            enabled=lambda cfg: cfg.bus.embedded and not cfg.external_bus),
    Program("sim", DATA_GROUP, "dolphin.market.sim", "simulator exchange (Binance USD-M protocol)", autostart=True,
            critical_data=True, priority=20, args=_sim_args, enabled=lambda cfg: cfg.market.source == "sim"),
    Program("scanner", DATA_GROUP, "dolphin.services.scanner", "eigen scanner: 5 s bars → scans (NG8)",
            autostart=True, critical_data=True, priority=30,
            publishes=("DOLPHIN_FEATURES[latest_eigen_scan]",)),
    Program("obf", DATA_GROUP, "dolphin.services.obf",
            "OBF: depth5 books of every USDT perp → universe snapshot, OB features, Parquet history",
            autostart=True, critical_data=True, priority=40,
            publishes=("DOLPHIN_FEATURES[obf_universe_latest]", "DOLPHIN_FEATURES[ob_macro_latest]",
                       "DOLPHIN_FEATURES_SHARD_NN[<symbol>]", "DOLPHIN_FEATURES[obf_status]")),
    Program("exf", DATA_GROUP, "dolphin.services.exf", "external factors: funding, DVOL, fear & greed, taker",
            autostart=True, critical_data=True, priority=41, publishes=("DOLPHIN_FEATURES[exf_latest]",)),
    Program("acb", DATA_GROUP, "dolphin.services.acb", "ACB v6: daily boost + dynamic beta (CP writer lock)",
            autostart=True, critical_data=True, priority=42, publishes=("DOLPHIN_FEATURES[acb_boost]",)),
    Program("watchdog", DATA_GROUP, "dolphin.services.watchdog", "survival stack: five sensors → Rm → posture",
            autostart=True, critical_data=True, priority=45, publishes=("DOLPHIN_SAFETY[latest]",)),
    Program("mcfw", DATA_GROUP, "dolphin.services.mcfw", "MC-Forewarner: Monte-Carlo of the engine every 4 h",
            autostart=True, critical_data=True, priority=48, publishes=("DOLPHIN_FEATURES[mc_forewarner_latest]",)),
    Program("mhs", DATA_GROUP, "dolphin.services.mhs", "meta health: sensors M1–M5, rm_meta, auto-restart",
            autostart=True, critical_data=False, priority=50, publishes=("DOLPHIN_META_HEALTH[latest]",)),
    Program("trader", TRADING_GROUP, "dolphin.services.trader", "trader: scans → engine → executor (paper)",
            autostart=True, critical_data=False, priority=70,
            publishes=("DOLPHIN_STATE_BLUE[latest]", "DOLPHIN_PNL_BLUE[<date>]"),
            autostart_if=lambda cfg: cfg.trader.autostart),
    Program("parity", DATA_GROUP, "dolphin.services.parity", "parity monitor: replay vs journal, strategy health",
            autostart=True, critical_data=False, priority=80,
            publishes=("DOLPHIN_FEATURES[parity_latest]", "DOLPHIN_FEATURES[strategy_health_latest]")),
    Program("live", TRADING_GROUP, "dolphin.services.live", "live trader: real orders (Binance testnet; docs/live.md)",
            autostart=False, critical_data=False, priority=75,
            publishes=("DOLPHIN_STATE_BLUE[latest]", "DOLPHIN_PNL_BLUE[<date>]")),
    Program("bridge", TRADING_GROUP, "dolphin.services.bridge", "Arrow scan files → bus (external scanner)",
            autostart=False, critical_data=False, priority=60, args=lambda cfg, home: ["--watch", cfg.bridge.watch],
            publishes=("DOLPHIN_FEATURES[latest_eigen_scan]",), enabled=lambda cfg: bool(cfg.bridge.watch)),
)

BY_NAME = {p.name: p for p in PROGRAMS}

#: Which service writes each bus key the operator watches (for "never published" panels).
PUBLISHERS: dict[str, str] = {
    "DOLPHIN_FEATURES[latest_eigen_scan]": "scanner",
    "DOLPHIN_FEATURES[acb_boost]": "acb",
    "DOLPHIN_FEATURES[exf_latest]": "exf",
    "DOLPHIN_FEATURES[obf_universe_latest]": "obf",
    "DOLPHIN_FEATURES[ob_macro_latest]": "obf",
    "DOLPHIN_FEATURES[obf_status]": "obf",
    "DOLPHIN_FEATURES_SHARD_NN[<symbol>]": "obf",
    "DOLPHIN_FEATURES[mc_forewarner_latest]": "mcfw",
    "DOLPHIN_SAFETY[latest]": "watchdog",
    "DOLPHIN_STATE_BLUE[latest]": "trader",
    "DOLPHIN_PNL_BLUE[<date>]": "trader",
    "DOLPHIN_HEARTBEAT[<service>_heartbeat]": "every service",
    "DOLPHIN_META_HEALTH[latest]": "mhs",
    "DOLPHIN_FEATURES[parity_latest]": "parity",
    "DOLPHIN_FEATURES[strategy_health_latest]": "parity",
}


def publisher_of(map_name: str, key: str) -> str | None:
    """The short name of the service that writes ``map_name[key]`` (None if nobody does)."""
    exact = PUBLISHERS.get(f"{map_name}[{key}]")
    if exact is not None:
        return exact
    if map_name == "DOLPHIN_PNL_BLUE":
        return "trader"
    if map_name.startswith("DOLPHIN_FEATURES_SHARD_"):
        return "obf"
    return None


def selected_names(cfg: ServicesConfig) -> set[str]:
    """The programs this host runs when the family is split across hosts (empty: all of them)."""
    return {n.strip() for n in cfg.supervisor.programs.split(",") if n.strip()}


def check_selection(cfg: ServicesConfig) -> None:
    """Refuse a selection that names no program of this family (`dolphin up --only`)."""
    from dolphin.errors import UsageError

    wanted = selected_names(cfg)
    available = [p.name for p in PROGRAMS if p.enabled(cfg)]
    unknown = sorted(wanted - set(available))
    if unknown:
        raise UsageError(f"--only names {', '.join(unknown)}, not a program of this family "
                         f"(valid: {', '.join(available)})")


def enabled_programs(cfg: ServicesConfig) -> list[Program]:
    wanted = selected_names(cfg)
    return [p for p in PROGRAMS if p.enabled(cfg) and (not wanted or p.name in wanted)]


def resolve(name: str, cfg: ServicesConfig) -> Program:
    """A short name (``scanner``) or ``group:name`` to its program, or a clear error listing the valid ones."""
    from dolphin.supervision.errors import UnknownService

    programs = enabled_programs(cfg)
    short = name.split(":", 1)[1] if ":" in name else name
    for p in programs:
        if p.name == short and (":" not in name or name == p.fullname):
            return p
    valid = ", ".join(p.name for p in programs)
    if short in BY_NAME:
        hint = " (configured off in this family)"
    elif short in PUBLISHERS.values():
        hint = " (a data service this family does not have yet)"
    else:
        hint = ""
    raise UnknownService(f"unknown service {name!r}{hint}; valid: {valid} (or group:name)")
