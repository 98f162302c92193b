"""MHS watches the OBF daemon once it is in the family: critical data, its universe key's freshness (M3)."""

from __future__ import annotations

import pytest

from dolphin.bus import ObfAssetHealth, ObfUniverse, schema
from dolphin.config.services import ServicesConfig, override
from dolphin.services.mhs.service import KeyObservation, Observation, build_report, family_view
from dolphin.supervision.programs import BY_NAME, DATA_GROUP, publisher_of

pytestmark = [pytest.mark.degradation]

NOW = 1_780_000_000.0
KEY = (schema.FEATURES, schema.OBF_UNIVERSE_LATEST)


def _universe(n: int) -> ObfUniverse:
    a = ObfAssetHealth(spread_bps=1.0, depth_1pct_usd=1e6, depth_quality=1.0, fill_probability=0.5, imbalance=0.0,
                       best_bid=1.0, best_ask=1.0001, n_bid_levels=5, n_ask_levels=5)
    return ObfUniverse(snapshot_utc=NOW, n_assets=n, assets={f"S{i:03d}USDT": a for i in range(n)})


def _report(obf_age: float | None, cfg: ServicesConfig | None = None):
    fam = family_view(cfg if cfg is not None else ServicesConfig())
    states = {p.name: "RUNNING" for p in fam.programs}
    keys = {k: KeyObservation(present=True, age_s=2.0) for k in fam.watched_keys()}
    keys[KEY] = (KeyObservation(present=False, age_s=None) if obf_age is None
                 else KeyObservation(present=True, age_s=obf_age, payload=_universe(50)))
    return fam, build_report(Observation(True, True, states, keys), fam, NOW)


def test_obf_is_a_critical_data_service_whose_universe_key_is_watched() -> None:
    obf = BY_NAME["obf"]
    assert obf.group == DATA_GROUP and obf.autostart and obf.critical_data
    assert publisher_of(*KEY) == "obf" and publisher_of(schema.SHARD_MAPS[3], "BTCUSDT") == "obf"
    fam, fresh = _report(5.0)
    assert "obf" in fam.critical and KEY in fam.watched_keys()
    assert fresh.hz_key_status[schema.OBF_UNIVERSE_LATEST].status == "fresh"


@pytest.mark.parametrize(("age", "label", "score"), [(100.0, "stale", 0.5), (300.0, "dead", 0.0), (None, "absent", 0.0)])
def test_a_stale_universe_degrades_m3(age: float | None, label: str, score: float) -> None:
    _, fresh = _report(5.0)
    _, report = _report(age)
    assert report.hz_key_status[schema.OBF_UNIVERSE_LATEST].status == label
    n = len(report.hz_key_status)
    assert report.m3_data_freshness == pytest.approx((n - 1 + score) / n) and report.m3_data_freshness < 1.0
    assert fresh.m3_data_freshness == 1.0 and fresh.status == "GREEN"
    assert report.status == "DEGRADED" and any("obf_universe_latest" in f for f in report.faults)


@pytest.mark.parametrize(("interval", "fresh_until", "stale_until"), [(60.0, 90.0, 180.0), (10.0, 30.0, 120.0),
                                                                        (300.0, 450.0, 900.0)])
def test_the_universe_is_fresh_for_its_snapshot_cadence(interval: float, fresh_until: float,
                                                        stale_until: float) -> None:
    """Snapshots every `obf.snapshot_interval_s` (60 s by default): a snapshot is fresh until half an interval
    late and dead after two are missed, never tighter than the default 30 / 120 s (a family run at 10 s)."""
    cfg = override(ServicesConfig(), "obf", snapshot_interval_s=interval)
    for age, label in ((interval - 1.0, "fresh"), (fresh_until - 0.5, "fresh"), (fresh_until + 0.5, "stale"),
                       (stale_until - 0.5, "stale"), (stale_until + 0.5, "dead")):
        _, report = _report(age, cfg)
        assert report.hz_key_status[schema.OBF_UNIVERSE_LATEST].status == label, (interval, age)
        assert (report.status == "GREEN") is (label == "fresh"), (interval, age)
