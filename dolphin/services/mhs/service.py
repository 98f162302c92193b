"""MHS v3 (bible §24.5, §26.3): every 10 s observe the family, score it, publish, recover.

Observation is separated from scoring: `observe()` does the I/O (bus probe and reads,
supervisord RPC), `build_report()` is pure, so the formulas are tested with hand-worked
inputs and the loop with the real member and supervisord.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from dolphin.bus import BusSettings, HzKeyStatus, MetaHealth, schema
from dolphin.bus.cluster_health import ClusterHealth, cluster_health
from dolphin.bus.codec import default_codec
from dolphin.bus.payloads import WarmupProgress
from dolphin.config.services import ServicesConfig, load_services_config
from dolphin.services.mhs import sensors as S
from dolphin.services.mhs.recovery import RecoveryManager
from dolphin.services.runtime import ServiceContext
from dolphin.store.atomic import atomic_write_bytes
from dolphin.supervision.holds import read_holds
from dolphin.supervision.programs import Program, enabled_programs, publisher_of
from dolphin.supervision.render import FamilyPaths
from dolphin.supervision.rpc import SupervisorClient

BUS_PROBE_TIMEOUT_S = 3.0

log = logging.getLogger("dolphin.mhs")

#: The data keys MHS watches for freshness (§24.5.5), when their publisher is in the family.
FRESHNESS_KEYS: tuple[tuple[str, str], ...] = (
    (schema.FEATURES, schema.EXF_LATEST),
    (schema.FEATURES, schema.ACB_BOOST),
    (schema.FEATURES, schema.LATEST_EIGEN_SCAN),
    (schema.FEATURES, schema.OBF_UNIVERSE_LATEST),
    (schema.SAFETY, schema.LATEST),
    (schema.FEATURES, schema.MC_FOREWARNER_LATEST),
)


def key_label(map_name: str, key: str) -> str:
    """A watched key's name in the report: bare for DOLPHIN_FEATURES (§24.5.5), else ``MAP[key]``."""
    return key if map_name == schema.FEATURES else f"{map_name}[{key}]"


@dataclass(frozen=True, slots=True)
class KeyObservation:
    present: bool
    age_s: float | None
    payload: Any = None
    invalid: bool = False


@dataclass(frozen=True, slots=True)
class FamilyView:
    """What this family consists of: which services are critical, who publishes what."""

    programs: tuple[Program, ...]
    obf_universe: int = 50
    check_interval_s: float = S.CHECK_INTERVAL_S
    #: (stale, dead) ages of keys written more slowly than the 30/120 s default (the MC-Forewarner's 4 h)
    freshness_limits: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def limits(self, key: tuple[str, str]) -> tuple[float, float]:
        return self.freshness_limits.get(key, (S.DATA_STALE_S, S.DATA_DEAD_S))

    @property
    def critical(self) -> list[str]:
        return [p.name for p in self.programs if p.critical_data]

    @property
    def names(self) -> set[str]:
        return {p.name for p in self.programs}

    def watched_keys(self) -> list[tuple[str, str]]:
        return [(m, k) for m, k in FRESHNESS_KEYS if publisher_of(m, k) in self.names]

    def heartbeat_services(self) -> list[str]:
        """Services that run through `run_service` (the member and the simulator do not beat)."""
        return [p.name for p in self.programs if p.module.startswith("dolphin.services.")]


@dataclass(frozen=True, slots=True)
class Observation:
    bus_reachable: bool
    supervisor_reachable: bool
    states: Mapping[str, str]
    keys: dict[tuple[str, str], KeyObservation]
    heartbeats: dict[str, float | None] = field(default_factory=dict)
    trader: Any = None                 # the trader's StrategyState, when the trader is in the family
    rejections_before: int | None = None   # the trader's refused-scan total at the previous check
    cluster: ClusterHealth | None = None  # None: not observed (bus down); scores as whole
    warming: dict[str, WarmupProgress] = field(default_factory=dict)  # service → its heartbeat's warm-up progress


def _faults(obs: Observation, family: FamilyView, key_status: Mapping[str, HzKeyStatus],
            lag: int | None) -> list[str]:
    """What is broken, in words, whatever rm_meta says (each caps the status at DEGRADED)."""
    faults: list[str] = []
    for key, ks in key_status.items():
        if ks.status != "fresh":
            age = "" if ks.age_s is None else f" ({ks.age_s:.0f} s old)"
            faults.append(f"{key} is {ks.status}{age}")
    for name in family.critical:
        state = obs.states.get(name, "UNKNOWN")
        if state != "RUNNING":
            faults.append(f"{name} is {state}")
    if "trader" in family.names:
        trader_state = obs.states.get("trader")
        trader = obs.trader
        if trader_state in S.FAILED_STATES:
            faults.append(f"trader is {trader_state}")
        elif trader_state == "RUNNING" and trader is not None:
            if getattr(trader, "halted", None):
                faults.append(f"trader halted: {trader.halted}")
            if lag is not None and lag > S.TRADER_STUCK_LAG:
                faults.append(f"trader is {lag} scans behind the bus")
            total = sum(getattr(trader, "rejected_scans", {}).values())
            if obs.rejections_before is not None and total > obs.rejections_before:
                faults.append(f"trader refused {total - obs.rejections_before} bus scan(s) since the last check")
    return faults


def _trader_lag(obs: Observation) -> int | None:
    """Scans on the bus the running trader has not stepped (None when either side is unknown)."""
    scan = obs.keys.get((schema.FEATURES, schema.LATEST_EIGEN_SCAN))
    bus_number = getattr(scan.payload, "scan_number", None) if scan is not None else None
    stepped = getattr(obs.trader, "last_scan_number", None)
    if bus_number is None or stepped is None:
        return None
    return max(0, int(bus_number) - int(stepped))


def _warm_up_explains(obs: Observation, family: FamilyView, key_status: Mapping[str, HzKeyStatus]) -> bool:
    """Warm-ups explain every fault: each key that is not fresh is absent and its publisher says on its
    heartbeat that it warms up (the scanner backfilling, OBF before its first publish), and no critical
    service failed. A key still absent once its publisher's warm-up is over is a fault again."""
    if not obs.warming:
        return False
    for map_name, key in obs.keys:
        ks = key_status[key_label(map_name, key)]
        if ks.status == "fresh":
            continue
        if ks.status != "absent" or publisher_of(map_name, key) not in obs.warming:
            return False
    return not any(obs.states.get(name) in S.FAILED_STATES for name in family.critical)


def build_report(obs: Observation, family: FamilyView, now: float) -> MetaHealth:
    """Score an observation (pure)."""
    key_status: dict[str, HzKeyStatus] = {}
    scores = []
    for (map_name, key), ko in obs.keys.items():
        score = 0.0 if ko.invalid else S.freshness_score(ko.age_s, *family.limits((map_name, key)))
        if (map_name, key) == (schema.FEATURES, schema.ACB_BOOST) and ko.present and not ko.invalid and ko.age_s is None:
            score = 1.0  # §24.5.5: acb_boost is checked for presence only when it carries no timestamp
        scores.append(score)
        label = "invalid" if ko.invalid else S.freshness_label(score, ko.present)
        key_status[key_label(map_name, key)] = HzKeyStatus(score=score, age_s=None if ko.age_s is None else round(max(0.0, ko.age_s), 3),
                                      status=label)
    checks = []
    acb = obs.keys.get((schema.FEATURES, schema.ACB_BOOST))
    if acb is not None:
        payload = acb.payload
        checks.append(S.acb_coherent(getattr(payload, "boost", None), getattr(payload, "beta", None)))
    obf = obs.keys.get((schema.FEATURES, schema.OBF_UNIVERSE_LATEST))
    if obf is not None:
        checks.append(S.obf_coverage(getattr(obf.payload, "n_assets", None), family.obf_universe))
    sensors = {
        "m4_control_plane": S.m4_control_plane(obs.bus_reachable, obs.supervisor_reachable,
                                               1.0 if obs.cluster is None else obs.cluster.score),
        "m1_data_infra": S.m1_process_integrity(obs.states, family.critical),
        "m3_data_freshness": S.m3_data_freshness(scores),
        "m5_coherence": S.m5_coherence(checks),
    }
    rm = S.rm_meta(sensors)
    trader_state = obs.states.get("trader")
    lag = _trader_lag(obs) if trader_state == "RUNNING" else None
    faults = _faults(obs, family, key_status, lag)
    faults += [f"{name} warming up: {progress.describe()}" for name, progress in sorted(obs.warming.items())]
    trader_halted = bool(getattr(obs.trader, "halted", None))
    return MetaHealth(
        rm_meta=rm, status=S.warming_status(S.capped_status(rm, faults), _warm_up_explains(obs, family, key_status)),
        m4_control_plane=sensors["m4_control_plane"],
        m1_data_infra=sensors["m1_data_infra"], m1_trader=S.trader_score(trader_state, lag, trader_halted),
        m2_heartbeat=S.m2_heartbeat(obs.heartbeats), m3_data_freshness=sensors["m3_data_freshness"],
        m5_coherence=sensors["m5_coherence"],
        service_status={name: obs.states.get(name, "UNKNOWN") for name in sorted(family.names)},
        hz_key_status=key_status, timestamp=now, faults=faults, trader_lag_scans=lag,
        trader_rejected_scans=sum(getattr(obs.trader, "rejected_scans", {}).values()),
        check_interval_s=family.check_interval_s)


class HealthMonitor:
    """One MHS: observes through an asyncio bus client and a supervisord client."""

    def __init__(self, bus: Any, supervisor: SupervisorClient, family: FamilyView, *,
                 recovery: RecoveryManager | None = None, report_path: Path | None = None,
                 bus_settings: BusSettings | None = None, home: Path | None = None) -> None:
        self.bus = bus
        self.bus_settings = bus_settings
        self.supervisor = supervisor
        self.family = family
        self.recovery = recovery
        self.report_path = report_path
        self.home = home            # where the operator's holds are (`dolphin svc stop --hold`)
        self.last: MetaHealth | None = None
        self.report_write_failures = 0
        self._rejections_before: int | None = None
        self._write_failing = False
        self.last_cluster: ClusterHealth | None = None

    async def _probe_bus(self) -> bool:
        try:
            m = await self.bus.map(schema.HEARTBEAT)
            await asyncio.wait_for(m.size(), BUS_PROBE_TIMEOUT_S)
            return True
        except Exception:
            return False

    async def _read_key(self, map_name: str, key: str, now: float) -> KeyObservation:
        try:
            m = await self.bus.map(map_name)
            raw = await asyncio.wait_for(m.get(key), BUS_PROBE_TIMEOUT_S)
        except Exception:
            return KeyObservation(present=False, age_s=None)
        if raw is None:
            return KeyObservation(present=False, age_s=None)
        payload = default_codec.accept(map_name, key, raw, source="mhs")
        if payload is None:
            return KeyObservation(present=True, age_s=None, invalid=True)
        published = payload.published_s()
        return KeyObservation(present=True, age_s=None if published is None else now - published, payload=payload)

    def _cluster(self) -> ClusterHealth | None:
        """The client's own view of the cluster (members, partition owners): no network."""
        try:
            settings = self.bus_settings if self.bus_settings is not None else BusSettings.from_env()
            return cluster_health(self.bus.client, settings)
        except Exception:
            return None

    async def observe(self) -> Observation:
        now = time.time()
        bus_ok = await self._probe_bus()
        cluster = self._cluster() if bus_ok else None
        try:
            infos = await asyncio.to_thread(self.supervisor.all_processes)
            sup_ok, states = True, {i.name: i.state for i in infos}
        except Exception:
            sup_ok, states = False, {}
        keys: dict[tuple[str, str], KeyObservation] = {}
        beats: dict[str, float | None] = {}
        warming: dict[str, WarmupProgress] = {}
        if bus_ok:
            for map_name, key in self.family.watched_keys():
                keys[(map_name, key)] = await self._read_key(map_name, key, now)
            for service in self.family.heartbeat_services():
                if states.get(service) != "RUNNING":
                    continue  # only a running service owes a heartbeat
                ko = await self._read_key(schema.HEARTBEAT, schema.heartbeat_key(service), now)
                beats[service] = ko.age_s
                warmup = getattr(ko.payload, "warmup", None)
                if warmup is not None:
                    warming[service] = warmup
        else:
            keys = {k: KeyObservation(present=False, age_s=None) for k in self.family.watched_keys()}
        trader = None
        if bus_ok and "trader" in self.family.names:
            trader = (await self._read_key(schema.STATE_BLUE, schema.LATEST, now)).payload
        before = self._rejections_before
        if trader is not None:
            self._rejections_before = sum(trader.rejected_scans.values())
        return Observation(bus_ok, sup_ok, states, keys, beats, trader=trader, rejections_before=before,
                           cluster=cluster, warming=warming)

    async def _write_report(self, report: MetaHealth) -> None:
        """The report file beside the bus value; a full disk is logged (once per outage), never fatal."""
        assert self.report_path is not None
        try:
            await asyncio.to_thread(atomic_write_bytes, self.report_path,
                                    msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")
        except OSError as exc:
            self.report_write_failures += 1
            if not self._write_failing:
                log.error("cannot write %s (%s): the report stays on the bus; retrying every check",
                          self.report_path, exc.strerror or exc)
                self._write_failing = True
            return
        if self._write_failing:
            log.info("%s is writable again (%d failed writes)", self.report_path, self.report_write_failures)
            self._write_failing = False

    async def check(self) -> MetaHealth:
        obs = await self.observe()
        if self.recovery is not None and obs.supervisor_reachable:
            held = read_holds(self.home) if self.home is not None else frozenset()
            for name in self.family.critical:
                if name not in held:   # stopped on purpose (`dolphin svc stop --hold`): left stopped
                    self.recovery.maybe_recover(name, obs.states.get(name, "UNKNOWN"), critical=True)
        report = build_report(obs, self.family, time.time())
        if self.recovery is not None:  # what MHS restarted, this check's restarts included
            report = msgspec.structs.replace(report, recoveries=self.recovery.counts(),
                                             recent_recoveries=self.recovery.recent())
        self.last = report
        self.last_cluster = obs.cluster
        if obs.bus_reachable:
            try:
                await self.bus.put(schema.META_HEALTH, schema.LATEST, report)
            except Exception:
                pass  # the file below still carries the report
        if self.report_path is not None:
            await self._write_report(report)
        return report


def family_view(cfg: ServicesConfig) -> FamilyView:
    """What MHS watches in this family. Keys written on a slow cadence get limits from it: the MC-Forewarner's
    report (every `mcfw.interval_h`) and OBF's universe snapshot (every `obf.snapshot_interval_s`, 60 s by
    default — the 30 s default limit would call it stale for half of every minute); never tighter than the
    default limits."""
    universe = tuple(max(a, b) for a, b in zip(S.cadence_limits(cfg.obf.snapshot_interval_s),
                                              (S.DATA_STALE_S, S.DATA_DEAD_S), strict=True))
    return FamilyView(programs=tuple(enabled_programs(cfg)), obf_universe=cfg.market.symbols,
                      check_interval_s=cfg.mhs.check_interval_s,
                      freshness_limits={(schema.FEATURES, schema.MC_FOREWARNER_LATEST):
                                        S.cadence_limits(cfg.mcfw.interval_h * 3600.0),
                                        (schema.FEATURES, schema.OBF_UNIVERSE_LATEST): (universe[0], universe[1])})


def supervisor_socket(home: Path) -> str:
    return os.environ.get("DOLPHIN_SUPERVISOR_SOCKET") or str(FamilyPaths.for_home(home).socket)


async def run(ctx: ServiceContext) -> None:
    from dolphin.enums import ServiceAction
    from dolphin.supervision.actions import act
    from dolphin.supervision.programs import BY_NAME

    cfg = load_services_config()
    socket = supervisor_socket(ctx.home)
    family = family_view(cfg)

    def restart(name: str) -> None:
        # its own client: the check loop's XML-RPC connection is not shared across threads
        act(SupervisorClient(socket, timeout=60.0), BY_NAME[name].fullname, ServiceAction.START)

    recovery = RecoveryManager(restart, cooldown_s=cfg.mhs.cooldown_s) if cfg.mhs.recovery else None
    monitor = HealthMonitor(None, SupervisorClient(socket, timeout=5.0), family, recovery=recovery,
                            report_path=ctx.home / "meta_health.json", home=ctx.home)
    monitor.bus = await ctx.connect_bus()
    if monitor.bus is None:
        return
    ctx.phase = "running"
    while not ctx.stop.is_set():
        report = await monitor.check()
        cluster = monitor.last_cluster
        ctx.log.info("rm_meta %.3f %s (M4 %.2f M1 %.2f M3 %.2f M5 %.2f)%s", report.rm_meta, report.status,
                     report.m4_control_plane, report.m1_data_infra, report.m3_data_freshness, report.m5_coherence,
                     "" if cluster is None or cluster.whole else f"; bus cluster {cluster.summary()}")
        await ctx.sleep(cfg.mhs.check_interval_s)
