"""Every schema payload round-trips; malformed values are rejected and counted."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolphin.bus import payloads as p
from dolphin.bus import schema
from dolphin.bus.codec import BAD_JSON, FUTURE, NOT_TEXT, SCHEMA, UNKNOWN_KEY, BusCodec, PayloadError

NOW = 1_780_000_000.0  # a fixed "now" for deterministic future-timestamp checks


def codec() -> BusCodec:
    return BusCodec(clock=lambda: NOW)


def _scan() -> p.EigenScan:
    return p.EigenScan(scan_number=7315, timestamp_ns=int((NOW - 1) * 1e9), vel_div=-0.0058, w50_velocity=-0.01,
                       w150_velocity=0.002, w300_velocity=0.003, w750_velocity=-0.0042, instability_50=0.31,
                       instability_150=0.22, asset_prices={"BTCUSDT": 71281.03, "ETHUSDT": 3550.25},
                       timestamp=p.iso_utc(NOW - 1), bridge_ts=NOW - 0.5, eigenvalue_gradients={"w50": 0.1},
                       multi_window_results={"50": p.WindowStats(velocity=-0.01, lambda_max=12.5, instability=0.31)})


EXAMPLES: list[tuple[str, str, Any]] = [
    (schema.FEATURES, schema.LATEST_EIGEN_SCAN, _scan()),
    (schema.FEATURES, schema.ACB_BOOST, p.AcbBoost(boost=1.347, beta=0.8, pushed_at=NOW - 5, date="2026-04-05",
                                                   signals=1.0, factors={"funding_btc": -0.0002, "dvol_btc": 61.0},
                                                   stale_factors=["fng", "taker"], computed_at=NOW - 60,
                                                   trigger="exf", w750_now=0.0031, w750_threshold=0.0012,
                                                   ob_stress=False, fence=7, writer="host:4242")),
    (schema.FEATURES, schema.EXF_LATEST, p.ExfLatest(pushed_at=NOW - 3, funding_btc=-0.0002, dvol_btc=61.0, fng=22.0,
                                                     taker=0.85, ages={"funding_btc": 1.5, "fng": 400.0},
                                                     stale=["fng"], errors={"fng": "3 failed fetch(es): HTTP 500"})),
    (schema.FEATURES, schema.OBF_UNIVERSE_LATEST, p.ObfUniverse(snapshot_utc=NOW - 10, n_assets=1, assets={
        "BTCUSDT": p.ObfAssetHealth(spread_bps=0.42, depth_1pct_usd=2.5e7, depth_quality=0.91, fill_probability=0.88,
                                    imbalance=-0.1, best_bid=71281.0, best_ask=71281.1, n_bid_levels=5,
                                    n_ask_levels=5)})),
    (schema.FEATURES, schema.OB_MACRO_LATEST, p.ObMacro(bar_ms=1_775_390_400_000, cascade_count=2, regime_signal=-1.0,
                                                        market_imbalance=-0.12, assets=48, pushed_at=NOW - 2)),
    (schema.FEATURES, schema.MC_FOREWARNER_LATEST, p.McForewarner(status="ORANGE", catastrophic_prob=0.2,
                                                                  envelope_score=0.8, source="FALLBACK_NO_DATA",
                                                                  timestamp=p.iso_utc(NOW - 60))),
    (schema.SAFETY, schema.LATEST, p.SafetyState(posture="STALKER", rm=0.81, sensors={"cat1": 1.0, "cat5": 0.9},
                                                 timestamp=NOW - 1, reason="dd 8%", r_target=0.8,
                                                 inputs={"drawdown": 0.08, "dvol": 61.0}, mc_status="OK", seq=12,
                                                 market_ms=1_780_000_000_000)),
    (schema.STATE_BLUE, schema.LATEST, p.StrategyState(strategy="blue", capital=25120.5, date="2026-04-05", pnl=120.5,
                                                       trades=4, peak_capital=25300.0, drawdown=0.007,
                                                       updated_at=p.iso_utc(NOW - 100),
                                                       engine_state=msgspec.Raw(b'{"open":[],"bar":1439}'))),
    (schema.STATE_BLUE, schema.LATEST_NAUTILUS, p.NautilusState(strategy="blue", capital=25000.0, date="2026-04-05",
                                                                pnl=0.0, trades=0, posture="APEX",
                                                                param_hash="0123456789abcdef", updated_at=NOW - 7)),
    (schema.STATE_BLUE, schema.state_run_key("blue", "2026-04-05"),
     p.StrategyState(strategy="blue", capital=1.0, date="2026-04-05", pnl=0.0, trades=0, peak_capital=1.0,
                     drawdown=0.0, updated_at=NOW - 1)),
    (schema.PNL_BLUE, schema.pnl_key("2026-04-05"), p.DailyResult(date="2026-04-05", pnl=-35.2, capital=24964.8,
                                                                   trades=7, boost=1.0, beta=0.2, mc_status="GREEN",
                                                                   posture="APEX", stale_state=True,
                                                                   updated_at=NOW - 2)),
    (schema.PNL_GREEN, "2026-04-06", p.DailyResult(date="2026-04-06", pnl=0.0, capital=1.0, trades=0, boost=1.0,
                                                   beta=0.2, mc_status="RED")),
    (schema.HEARTBEAT, schema.NAUTILUS_FLOW_HEARTBEAT, p.Heartbeat(ts=NOW - 1, iso=p.iso_utc(NOW - 1),
                                                                   run_date="2026-04-05", phase="engine_start",
                                                                   flow="nautilus")),
    (schema.HEARTBEAT, schema.heartbeat_key("obf_universe"), p.Heartbeat(ts=NOW - 1, service="obf_universe", pid=42,
                                                                       warmup=p.WarmupProgress(done=412, total=899))),
    (schema.HEARTBEAT, schema.LATEST, p.Heartbeat(ts=NOW - 1)),
    (schema.HEARTBEAT, schema.PROBE_TS, p.ProbeTimestamp(ts=NOW - 1)),
    (schema.META_HEALTH, schema.LATEST, p.MetaHealth(
        rm_meta=0.975, status="GREEN", m4_control_plane=1.0, m1_data_infra=1.0, m1_trader=0.0, m2_heartbeat=1.0,
        m3_data_freshness=0.9, m5_coherence=1.0, service_status={"dolphin_data:exf_fetcher": "RUNNING"},
        hz_key_status={"exf_latest": p.HzKeyStatus(score=1.0, age_s=12.0, status="fresh")}, timestamp=NOW - 4,
        recoveries={"scanner": 2},
        recent_recoveries=[p.RecoveryEvent(service="scanner", found="STOPPED", at=NOW - 40, outcome="ok"),
                           p.RecoveryEvent(service="scanner", found="FATAL", at=NOW - 20, outcome="failed",
                                           error="spawn error")])),
    (schema.ORDER_BOOK, "BTCUSDT", p.ObSnapshot(symbol="BTCUSDT", bids=[(71281.0, 1.5)], asks=[(71281.1, 0.7)],
                                                timestamp=NOW - 1)),
    (schema.SHARD_MAPS[7], "BTCUSDT", p.ObFeatures(imbalance=0.2, fill_probability=0.7, depth_quality=1.4,
                                                   regime_signal=-1.0, timestamp=NOW - 1)),
    (schema.SHARD_MAPS[7], "vel_div_BTCUSDT", -0.03),
    (schema.FEATURES, schema.OB_MACRO_LATEST, p.ObMacro(bar_ms=1_780_000_000_000, cascade_count=2, regime_signal=1.0,
                                                       market_imbalance=-0.05, assets=50, pushed_at=NOW - 1)),
    (schema.FEATURES, schema.OBF_STATUS, p.ObfStatus(timestamp=NOW - 1, pid=4242, phase="live", started_at=NOW - 600,
                                                     symbols=540, covered=538, dark=2, messages=1_000_000,
                                                     message_rate=1080.0, last_bar_ms=1_780_000_000_000,
                                                     dropped={"crossed": 3}, circuit="closed")),
    (schema.FEATURES, schema.MC_FOREWARNER_LATEST, p.McForewarner(
        status="GREEN", catastrophic_prob=0.03, envelope_score=0.91, source="MONTE_CARLO", timestamp=p.iso_utc(NOW - 9),
        paths=1000, horizon_days=7.0, drawdown_limit=0.12, history_days=13.9, history_start=p.iso_utc(NOW - 86400 * 14),
        history_end=p.iso_utc(NOW - 20), assets=50, seed=12, base_boost=1.347, max_leverage=6.735,
        median_drawdown=0.011, p95_drawdown=0.06, median_return=0.004, compute_s=21.5)),
    (schema.FEATURES, schema.PARITY_LATEST, p.ParityReport(
        strategy="blue", status="divergent", timestamp=NOW - 30, venue="sim", first_scan=705, last_scan=860,
        scans=156, traded_scans=116, untraded_scans=40, scan_coverage=116 / 156, replay_entries=1, missed=1,
        signal_coverage=0.0, acted_share=0.0, causes={"coverage_gap": 1}, pnl_diff=-3.38, interval_s=60.0,
        gaps=[p.ParityGap(kind="untraded", first_scan=761, last_scan=800, scans=40, first_ts=1, last_ts=2)],
        diffs=[p.ParityDiff(stage="inputs", cause="coverage_gap", kind="missed", at_scan=785, asset="THETAUSDT",
                            side="SHORT", entry_scan=785, replay_exit_scan=879, pnl_delta=-3.38, detail="stale")])),
    (schema.FEATURES, schema.STRATEGY_HEALTH_LATEST, p.StrategyHealthReport(
        strategy="blue", state="watch", evaluated="watch", timestamp=NOW - 30, trades=31, expectancy_ratio=0.65,
        reasons=["expectancy ratio 0.65 < 0.7"], baseline_registered=True, baseline_source="arrow_scans",
        gauges=[p.HealthGauge(metric="expectancy", live=0.00065, baseline=0.001, ratio=0.65, level="warn")])),
]


@pytest.mark.parametrize(("map_name", "key", "payload"), EXAMPLES,
                         ids=[f"{m}[{k}]" for m, k, _ in EXAMPLES])
def test_every_payload_round_trips(map_name: str, key: str, payload: Any) -> None:
    c = codec()
    text = c.encode(map_name, key, payload)
    assert isinstance(text, str)
    json.loads(text)  # strict JSON: what an existing deployment's json.loads reads
    assert c.decode(map_name, key, text) == payload
    assert c.rejections.total == 0


def test_every_spec_has_an_example() -> None:
    covered = {schema.spec_for(m, k).label for m, k, _ in EXAMPLES}  # type: ignore[union-attr]
    assert covered == {spec.label for spec in schema.SPECS}


def test_bible_field_names_are_on_the_wire() -> None:
    c = codec()
    acb = json.loads(c.encode(schema.FEATURES, schema.ACB_BOOST, EXAMPLES[1][2]))
    assert {"boost", "beta", "_pushed_at"} <= set(acb)
    obf = json.loads(c.encode(schema.FEATURES, schema.OBF_UNIVERSE_LATEST, EXAMPLES[3][2]))
    assert {"_snapshot_utc", "_n_assets", "assets"} <= set(obf)
    assert set(obf["assets"]["BTCUSDT"]) == {"spread_bps", "depth_1pct_usd", "depth_quality", "fill_probability",
                                            "imbalance", "best_bid", "best_ask", "n_bid_levels", "n_ask_levels"}
    safety = json.loads(c.encode(schema.SAFETY, schema.LATEST, EXAMPLES[6][2]))
    assert {"posture", "Rm", "sensors"} <= set(safety)
    scan = json.loads(c.encode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, _scan()))
    assert {"vel_div", "scan_number", "asset_prices", "timestamp_ns", "w50_velocity", "w750_velocity",
            "instability_50", "timestamp", "bridge_ts", "w150_velocity", "w300_velocity", "eigenvalue_gradients",
            "multi_window_results"} <= set(scan)
    assert c.encode(schema.HEARTBEAT, schema.PROBE_TS, p.ProbeTimestamp(ts=1.5e9)) == "1500000000.0"


def test_values_written_by_an_existing_deployment_decode() -> None:
    """Plain json.dumps output of the bible's writers (ints for floats, extra fields) is accepted."""
    c = codec()
    acb = c.decode(schema.FEATURES, schema.ACB_BOOST, json.dumps({"boost": 1, "beta": 0.2}))
    assert acb == p.AcbBoost(boost=1.0, beta=0.2)
    safety = c.decode(schema.SAFETY, schema.LATEST,
                      json.dumps({"posture": "APEX", "Rm": 1, "sensors": {}, "extra": [1, 2]}))
    assert safety.posture == "APEX" and safety.timestamp_s() is None
    exf = c.decode(schema.FEATURES, schema.EXF_LATEST, json.dumps({"_pushed_at": NOW, "fng": 30, "new_factor": 1}))
    assert exf.fng == 30.0


def test_a_meta_health_report_without_dolphin_recovery_fields_decodes() -> None:
    """The bible's MHS writes no recovery record: it reads as "nothing restarted"."""
    doc = {"rm_meta": 0.9, "status": "GREEN", "m4_control_plane": 1.0, "m1_data_infra": 1.0, "m1_trader": 1.0,
           "m2_heartbeat": 1.0, "m3_data_freshness": 1.0, "m5_coherence": 1.0, "service_status": {},
           "hz_key_status": {}, "timestamp": NOW - 1}
    report = codec().decode(schema.META_HEALTH, schema.LATEST, json.dumps(doc))
    assert report.recoveries == {} and report.recent_recoveries == []
    bad = {**doc, "recent_recoveries": [{"service": "scanner", "found": "STOPPED", "at": NOW, "outcome": "maybe"}]}
    with pytest.raises(PayloadError):
        codec().decode(schema.META_HEALTH, schema.LATEST, json.dumps(bad))


SAFE = {"posture": "APEX", "Rm": 0.95, "timestamp": NOW - 1}


@pytest.mark.parametrize(("map_name", "key", "value", "reason"), [
    (schema.SAFETY, schema.LATEST, "{not json", BAD_JSON),
    (schema.SAFETY, schema.LATEST, '{"posture": "APEX", "Rm": NaN}', BAD_JSON),
    (schema.SAFETY, schema.LATEST, '{"posture": "APEX", "Rm": Infinity}', BAD_JSON),
    (schema.SAFETY, schema.LATEST, '{"posture": "APEX", "Rm": 1e999}', SCHEMA),
    (schema.SAFETY, schema.LATEST, '{"posture": "APEX"}', SCHEMA),
    (schema.SAFETY, schema.LATEST, '{"posture": "YOLO", "Rm": 0.5}', SCHEMA),
    (schema.SAFETY, schema.LATEST, '{"posture": "APEX", "Rm": "0.5"}', SCHEMA),
    (schema.SAFETY, schema.LATEST, '{"posture": "APEX", "Rm": 1.5}', SCHEMA),
    (schema.SAFETY, schema.LATEST, '["APEX", 0.5]', SCHEMA),
    (schema.SAFETY, schema.LATEST, json.dumps({**SAFE, "timestamp": NOW + 3600}), FUTURE),
    (schema.SAFETY, schema.LATEST, json.dumps({**SAFE, "timestamp": (NOW - 1) * 1000}), FUTURE),
    (schema.SAFETY, schema.LATEST, json.dumps({**SAFE, "timestamp": 12345.0}), SCHEMA),
    (schema.SAFETY, schema.LATEST, 42, NOT_TEXT),
    (schema.FEATURES, "no_such_key", "{}", UNKNOWN_KEY),
    (schema.FEATURES, schema.ACB_BOOST, '{"boost": -1, "beta": 0.2}', SCHEMA),
    (schema.FEATURES, schema.ACB_BOOST, '{"boost": true, "beta": 0.2}', SCHEMA),
    (schema.FEATURES, schema.LATEST_EIGEN_SCAN, '{"scan_number": 1, "vel_div": 0.1}', SCHEMA),
    (schema.FEATURES, schema.LATEST_EIGEN_SCAN, json.dumps({
        "scan_number": 1, "timestamp_ns": int(NOW * 1e9), "vel_div": 0.1, "w50_velocity": 0.1,
        "w750_velocity": 0.0, "asset_prices": {"BTCUSDT": -5.0}}), SCHEMA),
    (schema.FEATURES, schema.LATEST_EIGEN_SCAN, json.dumps({
        "scan_number": 1, "timestamp_ns": int((NOW + 600) * 1e9), "vel_div": 0.1, "w50_velocity": 0.1,
        "w750_velocity": 0.0, "asset_prices": {}}), FUTURE),
    (schema.FEATURES, schema.LATEST_EIGEN_SCAN, '{"scan_number": 1, "timestamp": "yesterday", "result": '
                                                '{"multi_window_results": {}}}', SCHEMA),
    (schema.FEATURES, schema.EXF_LATEST, '{"fng": 20}', SCHEMA),
    (schema.FEATURES, schema.MC_FOREWARNER_LATEST, json.dumps({
        "status": "PURPLE", "catastrophic_prob": 0.1, "envelope_score": 1.0, "source": "x",
        "timestamp": "2026-01-01T00:00:00+00:00"}), SCHEMA),
    (schema.FEATURES, schema.MC_FOREWARNER_LATEST, json.dumps({
        "status": "GREEN", "catastrophic_prob": 0.1, "envelope_score": 1.0, "source": "MONTE_CARLO",
        "timestamp": "2026-01-01T00:00:00+00:00", "paths": -3}), SCHEMA),
    (schema.FEATURES, schema.MC_FOREWARNER_LATEST, json.dumps({
        "status": "GREEN", "catastrophic_prob": 0.1, "envelope_score": 1.0, "source": "MONTE_CARLO",
        "timestamp": "2026-01-01T00:00:00+00:00", "drawdown_limit": 1.5}), SCHEMA),
    (schema.PNL_BLUE, "2026-13-45", json.dumps({"date": "2026-13-45", "pnl": 0, "capital": 1, "trades": 0,
                                                 "boost": 1, "beta": 0, "mc_status": "GREEN"}), SCHEMA),
    (schema.META_HEALTH, schema.LATEST, json.dumps({"rm_meta": 2.0, "status": "GREEN"}), SCHEMA),
    (schema.HEARTBEAT, schema.PROBE_TS, '"soon"', SCHEMA),
    (schema.SHARD_MAPS[0], "vel_div_BNBUSDT", '"fast"', SCHEMA),
])
def test_malformed_values_are_rejected_with_a_reason(map_name: str, key: str, value: Any, reason: str) -> None:
    c = codec()
    with pytest.raises(PayloadError) as info:
        c.decode(map_name, key, value)
    assert info.value.reason == reason
    assert c.accept(map_name, key, value, source="unit test") is None
    assert c.rejections.total == 1


def test_rejections_are_counted_per_key_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    c = codec()
    with caplog.at_level(logging.WARNING, logger="dolphin.bus"):
        for _ in range(50):
            c.accept(schema.PNL_BLUE, "2026-01-01", "{bad", source="listener on DOLPHIN_PNL_BLUE")
        c.accept(schema.PNL_BLUE, "2026-01-02", '{"date": 1}', source="listener on DOLPHIN_PNL_BLUE")
    assert c.rejections.counts() == {"DOLPHIN_PNL_BLUE[<date>] bad_json": 50, "DOLPHIN_PNL_BLUE[<date>] schema": 1}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # one line per (key pattern, reason), not one per bad value
    assert "listener on DOLPHIN_PNL_BLUE" in lines[0] and "2026-01-01" in lines[0]


def test_future_check_can_be_disabled_for_simulated_time() -> None:
    c = BusCodec(clock=lambda: NOW, max_future_s=None)
    text = json.dumps({**SAFE, "timestamp": NOW + 86400})
    assert c.decode(schema.SAFETY, schema.LATEST, text).timestamp == NOW + 86400


def test_scan_market_time_may_run_ahead_but_its_publish_time_may_not() -> None:
    """Under an accelerated simulator a scan's market time is ahead of the wall clock."""
    c = codec()
    scan = {"scan_number": 7, "timestamp_ns": int((NOW + 3600) * 1e9), "vel_div": -0.01, "w50_velocity": 0.0,
            "w750_velocity": 0.0, "asset_prices": {"BTCUSDT": 70000.0}}
    ok = c.decode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, json.dumps({**scan, "bridge_ts": NOW}))
    assert ok.timestamp_s() == NOW + 3600 and ok.published_s() == NOW
    with pytest.raises(PayloadError) as info:
        c.decode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, json.dumps({**scan, "bridge_ts": NOW + 3600}))
    assert info.value.reason == "future_timestamp"


def test_payloads_refuse_nan_at_construction() -> None:
    with pytest.raises(ValueError):
        p.SafetyState(posture="APEX", rm=float("nan"))
    with pytest.raises(ValueError):
        p.EigenScan(scan_number=1, timestamp_ns=1, vel_div=0.0, w50_velocity=0.0, w750_velocity=0.0,
                    asset_prices={"BTCUSDT": float("inf")})


def test_encode_refuses_the_wrong_payload_for_a_key() -> None:
    c = codec()
    with pytest.raises(TypeError):
        c.encode(schema.FEATURES, schema.ACB_BOOST, p.Heartbeat(ts=NOW))
    with pytest.raises(ValueError):
        c.encode(schema.FEATURES, "nope", p.Heartbeat(ts=NOW))


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
prices = st.dictionaries(st.from_regex(r"[A-Z0-9]{3,12}", fullmatch=True),
                         st.floats(min_value=1e-8, max_value=1e7, allow_nan=False), max_size=60)


@settings(max_examples=60, deadline=None)
@given(scan_number=st.integers(0, 2**40), vel_div=finite, w50=finite, w750=finite, asset_prices=prices,
       age_ns=st.integers(0, 10**15))
def test_scan_round_trip_property(scan_number: int, vel_div: float, w50: float, w750: float,
                                  asset_prices: dict[str, float], age_ns: int) -> None:
    c = codec()
    scan = p.EigenScan(scan_number=scan_number, timestamp_ns=int(NOW * 1e9) - age_ns, vel_div=vel_div,
                       w50_velocity=w50, w750_velocity=w750, asset_prices=asset_prices)
    assert c.decode(schema.FEATURES, schema.LATEST_EIGEN_SCAN,
                    c.encode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, scan)) == scan


@settings(max_examples=60, deadline=None)
@given(posture=st.sampled_from(p.POSTURES), rm=st.floats(0.0, 1.0),
       sensors=st.dictionaries(st.text(min_size=1, max_size=8), st.floats(0.0, 1.0), max_size=5))
def test_safety_round_trip_property(posture: str, rm: float, sensors: dict[str, float]) -> None:
    c = codec()
    state = p.SafetyState(posture=posture, rm=rm, sensors=sensors, timestamp=NOW)  # type: ignore[arg-type]
    assert c.decode(schema.SAFETY, schema.LATEST, c.encode(schema.SAFETY, schema.LATEST, state)) == state


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_bytes_never_raise_from_accept(value: bytes | str) -> None:
    c = codec()
    for map_name, key, _ in EXAMPLES:
        result = c.accept(map_name, key, value, source="fuzz")
        assert result is None or isinstance(result, (p.Payload, float))


def test_times_parse_from_iso_and_unix() -> None:
    assert p.parse_time("2026-01-01T00:00:00Z") == p.parse_time("2026-01-01T00:00:00+00:00") == 1767225600.0
    assert p.parse_time("2026-01-01T00:00:00") == 1767225600.0  # naive means UTC
    assert p.parse_time(5) == 5.0
    with pytest.raises(ValueError):
        p.parse_time("not a time")
    assert p.parse_time(p.iso_utc(time.time() // 1)) == time.time() // 1
