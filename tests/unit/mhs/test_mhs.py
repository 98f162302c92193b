"""MHS v3: sensor formulas with hand-worked values, report building, recovery policy."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dolphin.bus import AcbBoost, EigenScan, ObfUniverse, StrategyState, schema
from dolphin.bus.codec import BusCodec
from dolphin.bus.payloads import WarmupProgress
from dolphin.config.services import ServicesConfig
from dolphin.enums import WarmupUnit
from dolphin.services.mhs import sensors as S
from dolphin.services.mhs.recovery import RECENT_EVENTS, RecoveryManager
from dolphin.services.mhs.service import FamilyView, KeyObservation, Observation, build_report, family_view
from tests.support import wait_until

pytestmark = [pytest.mark.degradation]

NOW = 1_780_000_000.0


# ------------------------------------------------------------------ formulas, by hand
def test_control_plane_weights() -> None:
    assert S.m4_control_plane(True, True) == pytest.approx(1.0)
    assert S.m4_control_plane(True, False) == pytest.approx(0.8)
    assert S.m4_control_plane(False, True) == pytest.approx(0.2)
    assert S.m4_control_plane(False, False) == 0.0


def test_control_plane_scales_with_the_cluster_health() -> None:
    """One of three members lost: the bus part is 2/3 of its weight; a down bus stays 0 whatever the health."""
    assert S.m4_control_plane(True, True, 2 / 3) == pytest.approx(0.8 * 2 / 3 + 0.2)
    assert S.m4_control_plane(False, True, 1.0) == pytest.approx(0.2)
    assert S.m4_control_plane(True, True, float("nan")) == pytest.approx(0.2)  # a broken reading counts as 0


def test_process_integrity() -> None:
    states = {"sim": "RUNNING", "scanner": "STOPPED", "mhs": "RUNNING"}
    assert S.m1_process_integrity(states, ["sim", "scanner"]) == 0.5
    assert S.m1_process_integrity(states, []) == 1.0
    assert S.m1_process_integrity({}, ["sim"]) == 0.0


@pytest.mark.parametrize(("age", "score"), [(0.0, 1.0), (30.0, 1.0), (30.1, 0.5), (120.0, 0.5), (120.1, 0.0),
                                            (None, 0.0), (math.nan, 0.0), (-3.0, 1.0)])
def test_freshness_thresholds(age: float | None, score: float) -> None:
    assert S.freshness_score(age) == score


def test_rm_meta_weighted_sum_and_status() -> None:
    # a stopped scanner out of two critical services, fresh data: 0.35 + 0.175 + 0.2 + 0.1
    sensors = {"m4_control_plane": 1.0, "m1_data_infra": 0.5, "m3_data_freshness": 1.0, "m5_coherence": 1.0}
    assert S.rm_meta(sensors) == pytest.approx(0.825)
    assert S.status_for(0.825) == "DEGRADED"
    assert S.status_for(0.86) == "GREEN" and S.status_for(0.85) == "DEGRADED"
    assert S.status_for(0.61) == "DEGRADED" and S.status_for(0.6) == "CRITICAL"
    assert S.status_for(0.31) == "CRITICAL" and S.status_for(0.3) == "DEAD"
    # product-formula regression guard: one zero sensor must not zero rm_meta
    assert S.rm_meta({**sensors, "m1_data_infra": 0.0}) == pytest.approx(0.65)


def test_coherence() -> None:
    assert S.acb_coherent(1.347, 0.8) == 1.0
    assert S.acb_coherent(3.0, 0.8) == 0.0 and S.acb_coherent(1.2, 1.5) == 0.0 and S.acb_coherent(None, None) == 0.0
    assert S.obf_coverage(50, 50) == 1.0 and S.obf_coverage(30, 50) == 0.5 and S.obf_coverage(None, 50) == 0.0
    assert S.m5_coherence([]) == 1.0 and S.m5_coherence([1.0, 0.5]) == 0.75


@given(st.dictionaries(st.sampled_from(list(S.SENSOR_WEIGHTS)),
                       st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 5)))
def test_rm_always_valid(sensors: dict) -> None:
    rm = S.rm_meta(sensors)
    assert 0.0 <= rm <= 1.0 and S.status_for(rm) in {"GREEN", "DEGRADED", "CRITICAL", "DEAD"}


@given(a=st.floats(0, 1), b=st.floats(0, 1))
def test_rm_monotone_in_each_sensor(a: float, b: float) -> None:
    base = {"m4_control_plane": 0.5, "m1_data_infra": 0.5, "m3_data_freshness": 0.5, "m5_coherence": 0.5}
    for name in base:
        lo, hi = min(a, b), max(a, b)
        assert S.rm_meta({**base, name: lo}) <= S.rm_meta({**base, name: hi}) + 1e-12


# ------------------------------------------------------------------ reports from observations
def _family() -> FamilyView:
    return family_view(ServicesConfig())


def test_family_view_of_the_default_family() -> None:
    fam = _family()
    assert set(fam.critical) >= {"sim", "scanner"} and "mhs" not in fam.critical
    assert (schema.FEATURES, schema.LATEST_EIGEN_SCAN) in fam.watched_keys()


def test_report_for_a_stopped_scanner_is_degraded() -> None:
    fam = _family()
    states = {p.name: "RUNNING" for p in fam.programs}
    states["scanner"] = "STOPPED"
    acb = AcbBoost(boost=1.347, beta=0.2, pushed_at=NOW - 3)   # a coherent ACB verdict (M5)
    keys = {k: KeyObservation(present=True, age_s=3.0, payload=acb if k[1] == schema.ACB_BOOST else None)
            for k in fam.watched_keys()}
    keys[(schema.FEATURES, schema.OBF_UNIVERSE_LATEST)] = KeyObservation(   # full coverage: M5 coherent
        present=True, age_s=3.0, payload=ObfUniverse(snapshot_utc=NOW, n_assets=fam.obf_universe, assets={}))
    report = build_report(Observation(True, True, states, keys), fam, NOW)
    n_critical = len(fam.critical)
    assert report.m1_data_infra == pytest.approx((n_critical - 1) / n_critical)
    assert report.status == "DEGRADED" and report.service_status["scanner"] == "STOPPED"
    healthy = build_report(Observation(True, True, {**states, "scanner": "RUNNING"}, keys), fam, NOW)
    assert healthy.status == "GREEN" and healthy.rm_meta == pytest.approx(1.0)


def test_bad_inputs_are_scored_not_fatal() -> None:
    """Garbage JSON, future timestamps and NaN in health inputs never crash the report."""
    fam = _family()
    codec = BusCodec(clock=lambda: NOW)
    garbage = codec.accept(schema.FEATURES, schema.LATEST_EIGEN_SCAN, "{not json", source="test")
    future = codec.accept(schema.FEATURES, schema.EXF_LATEST, json.dumps({"_pushed_at": NOW + 3600}), source="test")
    nan = codec.accept(schema.FEATURES, schema.ACB_BOOST, '{"boost": NaN, "beta": 0.2}', source="test")
    assert garbage is None and future is None and nan is None and codec.rejections.total == 3
    keys = {k: KeyObservation(present=True, age_s=None, invalid=True) for k in fam.watched_keys()}
    report = build_report(Observation(True, True, {}, keys), fam, NOW)
    assert report.m3_data_freshness == 0.0
    assert all(ks.status == "invalid" for ks in report.hz_key_status.values())
    assert 0.0 <= report.rm_meta <= 1.0


def test_acb_presence_and_obf_coverage_feed_coherence() -> None:
    fam = FamilyView(programs=_family().programs, obf_universe=50)
    acb = KeyObservation(present=True, age_s=None, payload=AcbBoost(boost=1.35, beta=0.8))
    obf = KeyObservation(present=True, age_s=1.0, payload=ObfUniverse(snapshot_utc=NOW, n_assets=20, assets={}))
    obs = Observation(True, True, {}, {(schema.FEATURES, schema.ACB_BOOST): acb,
                                       (schema.FEATURES, schema.OBF_UNIVERSE_LATEST): obf})
    report = build_report(obs, fam, NOW)
    assert report.hz_key_status["acb_boost"].score == 1.0          # present, no timestamp: presence only
    assert report.m5_coherence == pytest.approx((1.0 + 0.5) / 2)


def _healthy(fam: FamilyView, **changes: object) -> Observation:
    """Everything fresh and running; `changes` override Observation fields."""
    states = {p.name: "RUNNING" for p in fam.programs}
    keys = {k: KeyObservation(present=True, age_s=1.0) for k in fam.watched_keys()}
    fields = {"bus_reachable": True, "supervisor_reachable": True, "states": states, "keys": keys}
    fields.update(changes)
    return Observation(**fields)  # type: ignore[arg-type]


def test_a_warming_scanner_is_warming_not_degraded() -> None:
    """Start-up: the scan key is absent while the scanner backfills — WARMING with the progress, not DEGRADED;
    a worse verdict is never softened."""
    fam = _family()
    keys = {k: KeyObservation(present=k != (schema.FEATURES, schema.LATEST_EIGEN_SCAN), age_s=1.0)
            for k in fam.watched_keys()}
    cold = build_report(_healthy(fam, keys=keys), fam, NOW)
    assert cold.status == "DEGRADED"
    warming = build_report(_healthy(fam, keys=keys, warming={"scanner": WarmupProgress(done=412, total=899)}), fam,
                           NOW)
    assert warming.status == "WARMING" and "scanner warming up: 412 of 899 bars" in warming.faults
    states = {p.name: "RUNNING" for p in fam.programs} | {"sim": "FATAL", "hz": "FATAL"}
    broken = build_report(_healthy(fam, keys=keys, states=states, warming={"scanner": WarmupProgress(done=1, total=899)}),
                          fam, NOW)
    assert broken.status not in ("GREEN", "WARMING")


def test_obf_first_publish_warm_up_is_warming_until_it_ends() -> None:
    """OBF publishes nothing for its first obf.warmup_s (§20.1): its heartbeat's progress explains the absent
    universe (WARMING, "obf warming up: 23 of 60 s"); once the warm-up is over an absent universe is DEGRADED
    again, and a warm-up explains only its own service's keys (OBF warming does not excuse a missing scan)."""
    fam = _family()
    universe = (schema.FEATURES, schema.OBF_UNIVERSE_LATEST)
    assert universe in fam.watched_keys()
    keys = {k: KeyObservation(present=k != universe, age_s=1.0) for k in fam.watched_keys()}
    obf = {"obf": WarmupProgress(done=23, total=60, unit=WarmupUnit.SECONDS)}
    warming = build_report(_healthy(fam, keys=keys, warming=obf), fam, NOW)
    assert warming.status == "WARMING" and "obf warming up: 23 of 60 s" in warming.faults
    assert warming.hz_key_status["obf_universe_latest"].status == "absent"
    over = build_report(_healthy(fam, keys=keys), fam, NOW)
    assert over.status == "DEGRADED" and not any("warming up" in f for f in over.faults)
    no_scan = {k: replace(v, present=False, age_s=None) if k == (schema.FEATURES, schema.LATEST_EIGEN_SCAN) else v
               for k, v in keys.items()}
    assert build_report(_healthy(fam, keys=no_scan, warming=obf), fam, NOW).status == "DEGRADED"
    both = obf | {"scanner": WarmupProgress(done=412, total=899)}
    assert build_report(_healthy(fam, keys=no_scan, warming=both), fam, NOW).status == "WARMING"
    stale = {k: KeyObservation(present=True, age_s=100.0) if k == universe else v for k, v in keys.items()}
    assert build_report(_healthy(fam, keys=stale, warming=obf), fam, NOW).status == "DEGRADED"   # stale is no warm-up


def _trader(last: int, rejected: dict[str, int] | None = None, halted: str | None = None) -> StrategyState:
    return StrategyState(strategy="blue", capital=25_000.0, date="2026-04-05", pnl=0.0, trades=0,
                         peak_capital=25_000.0, drawdown=0.0, updated_at=NOW, last_scan_number=last,
                         rejected_scans=rejected or {}, halted=halted)


def _with_scan(obs: Observation, number: int) -> Observation:
    scan = EigenScan(scan_number=number, timestamp_ns=int(NOW * 1e9), vel_div=-0.01, w50_velocity=-0.01,
                     w750_velocity=0.0, asset_prices={"BTCUSDT": 1.0}, bridge_ts=NOW)
    keys = dict(obs.keys)
    keys[(schema.FEATURES, schema.LATEST_EIGEN_SCAN)] = KeyObservation(present=True, age_s=1.0, payload=scan)
    return Observation(obs.bus_reachable, obs.supervisor_reachable, obs.states, keys, obs.heartbeats,
                       trader=obs.trader, rejections_before=obs.rejections_before)


def test_health_is_not_green_while_the_trader_is_broken() -> None:
    """MHS said GREEN while the trader was FATAL or stuck on a forged scan (issue 12 §4)."""
    fam = _family()
    base = _with_scan(_healthy(fam, trader=_trader(100)), 100)
    assert build_report(base, fam, NOW).status == "GREEN" and build_report(base, fam, NOW).m1_trader == 1.0
    fatal = build_report(_healthy(fam, states={**base.states, "trader": "FATAL"}), fam, NOW)
    assert fatal.status == "DEGRADED" and "trader is FATAL" in fatal.faults and fatal.m1_trader == 0.0
    stuck = build_report(_with_scan(_healthy(fam, trader=_trader(80)), 100), fam, NOW)
    assert stuck.status == "DEGRADED" and stuck.trader_lag_scans == 20 and stuck.m1_trader == 0.5
    assert "trader is 20 scans behind the bus" in stuck.faults
    refusing = build_report(_with_scan(_healthy(fam, trader=_trader(100, {"jump": 3}), rejections_before=1), 100),
                            fam, NOW)
    assert refusing.status == "DEGRADED" and refusing.trader_rejected_scans == 3
    assert "trader refused 2 bus scan(s) since the last check" in refusing.faults
    halted = build_report(_with_scan(_healthy(fam, trader=_trader(100, halted="journal not writable")), 100),
                          fam, NOW)
    assert halted.status == "DEGRADED" and halted.m1_trader == 0.5
    stopped = build_report(_with_scan(_healthy(fam, states={**base.states, "trader": "STOPPED"}), 100), fam, NOW)
    assert stopped.status == "GREEN"                          # stopped on purpose: the bible's informational M1


def test_a_key_that_stays_old_keeps_the_status_below_green() -> None:
    """A stale key cost 0.10 of rm_meta (0.9: GREEN) for its first 120 s (issue 12 §2)."""
    fam = _family()
    for age in (45.0, 600.0, 86_400.0):
        keys = {k: KeyObservation(present=True, age_s=age) for k in fam.watched_keys()}
        report = build_report(_healthy(fam, keys=keys), fam, NOW)
        assert report.status != "GREEN" and any("latest_eigen_scan is" in f for f in report.faults)


@pytest.mark.parametrize(("age", "interval", "stale"), [(25.0, 10.0, False), (31.0, 10.0, True),
                                                        (31.0, None, True), (100.0, 60.0, False)])
def test_an_old_report_is_stale(age: float, interval: float | None, stale: bool) -> None:
    assert S.report_is_stale(age, interval) is stale


# ------------------------------------------------------------------ recovery
def test_only_stopped_critical_non_trader_services_are_restarted() -> None:
    done = threading.Event()
    calls: list[str] = []
    rm = RecoveryManager(lambda name: (calls.append(name), done.set()))
    assert not rm.maybe_recover("scanner", "RUNNING", True)
    assert not rm.maybe_recover("scanner", "STARTING", True)      # supervisord is on it
    assert not rm.maybe_recover("scanner", "BACKOFF", True)
    assert not rm.maybe_recover("trader", "STOPPED", True)         # never the trader
    assert not rm.maybe_recover("mhs", "STOPPED", False)           # not critical
    assert rm.maybe_recover("scanner", "FATAL", True)
    assert done.wait(60) and calls == ["scanner"]


def test_cooldown_and_concurrent_attempts_fire_once() -> None:
    clock = [100.0]
    fired: list[str] = []
    lock = threading.Lock()

    def restart(name: str) -> None:
        with lock:
            fired.append(name)

    rm = RecoveryManager(restart, cooldown_s=10.0, clock=lambda: clock[0])
    barrier = threading.Barrier(10)
    results: list[bool] = []

    def attempt() -> None:
        barrier.wait()
        results.append(rm.maybe_recover("scanner", "STOPPED", True))

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until(lambda: fired, 60, what="the restart thread to run")
    assert results.count(True) == 1 and fired == ["scanner"] and rm.counts() == {"scanner": 1}
    clock[0] += 9.9
    assert not rm.maybe_recover("scanner", "STOPPED", True)
    clock[0] += 0.2
    assert rm.maybe_recover("scanner", "STOPPED", True)


def test_failed_recovery_is_reported_and_retried_after_cooldown() -> None:
    clock = [0.0]
    rm = RecoveryManager(lambda name: (_ for _ in ()).throw(RuntimeError("spawn error")), cooldown_s=10.0,
                         clock=lambda: clock[0])
    assert rm.maybe_recover("sim", "FATAL", True)
    wait_until(lambda: "sim" in rm.failures, 60, what="the failed restart to be reported")
    assert rm.failures["sim"] == "spawn error"
    [event] = rm.recent()
    assert (event.service, event.found, event.outcome, event.error) == ("sim", "FATAL", "failed", "spawn error")
    clock[0] = 11.0
    assert rm.maybe_recover("sim", "FATAL", True)
    assert rm.counts() == {"sim": 2} and len(rm.recent()) == 2


def test_every_restart_is_recorded_with_its_outcome() -> None:
    """The record a report carries: a count per service and the latest events, pending until the restart ends."""
    release = threading.Event()
    rm = RecoveryManager(lambda name: release.wait(60), cooldown_s=10.0, clock=lambda: 0.0,
                         wall_clock=lambda: NOW)
    assert rm.counts() == {} and rm.recent() == []
    assert not rm.maybe_recover("scanner", "RUNNING", True)         # a running service is never touched
    assert rm.maybe_recover("scanner", "STOPPED", True)
    assert not rm.maybe_recover("scanner", "STOPPED", True)         # cooldown: not a second restart
    assert rm.counts() == {"scanner": 1}
    assert [(e.service, e.found, e.at, e.outcome) for e in rm.recent()] == [("scanner", "STOPPED", NOW, "pending")]
    release.set()
    wait_until(lambda: rm.recent()[0].outcome == "ok", 60, what="the restart to finish")
    assert rm.recent()[0].error is None


def test_the_event_list_is_bounded_and_the_counts_are_not() -> None:
    clock = [0.0]
    rm = RecoveryManager(lambda name: None, cooldown_s=1.0, clock=lambda: clock[0])
    for _ in range(RECENT_EVENTS + 5):
        clock[0] += 2.0
        assert rm.maybe_recover("sim", "EXITED", True)
    assert rm.counts() == {"sim": RECENT_EVENTS + 5} and len(rm.recent()) == RECENT_EVENTS


def test_the_mc_forewarner_key_is_judged_by_its_4_hour_cadence() -> None:
    """mc_forewarner_latest is written every 4 h: fresh for 6 h, stale to 12 h, then dead — not dead at 120 s."""
    fam = _family()
    key = (schema.FEATURES, schema.MC_FOREWARNER_LATEST)
    assert key in fam.watched_keys() and fam.limits(key) == (6 * 3600.0, 12 * 3600.0)
    assert fam.limits((schema.FEATURES, schema.LATEST_EIGEN_SCAN)) == (S.DATA_STALE_S, S.DATA_DEAD_S)
    for age, label in ((3 * 3600.0, "fresh"), (7 * 3600.0, "stale"), (13 * 3600.0, "dead")):
        keys = {k: KeyObservation(present=True, age_s=age if k == key else 1.0) for k in fam.watched_keys()}
        report = build_report(_healthy(fam, keys=keys), fam, NOW)
        assert report.hz_key_status[schema.MC_FOREWARNER_LATEST].status == label
        assert (report.status == "GREEN") is (label == "fresh")
    hourly = family_view(replace(ServicesConfig(), mcfw=replace(ServicesConfig().mcfw, interval_h=1.0)))
    assert hourly.limits(key) == (5400.0, 10800.0)
