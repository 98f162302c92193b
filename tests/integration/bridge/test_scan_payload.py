"""The one scan → bus mapping (NG5 record → NG8 flat EigenScan), shared by the scanner and the bridge."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from dolphin.bus import BusCodec, EigenScan, schema
from dolphin.bus.scan_codec import (
    UnpublishableScan,
    payload_from_record,
    record_from_payload,
    unpublishable_reason,
)
from dolphin.scan import ScanUpdater
from dolphin.scan.record import ScanRecord
from tests.integration.bridge.support import make_record

pytestmark = [pytest.mark.data_integrity]


def test_the_payload_carries_the_ng8_flat_fields() -> None:
    record = make_record(42, vel_div=-0.025)
    payload = payload_from_record(record, bridge_ts=1_775_390_700.5)
    assert payload.scan_number == 42 and payload.timestamp_ns == record.timestamp_ns
    assert payload.timestamp == "2026-04-05T12:03:30+00:00" and payload.bridge_ts == 1_775_390_700.5
    assert payload.vel_div == -0.025
    assert payload.w50_velocity == record.w50_velocity and payload.w750_velocity == 0.001
    assert payload.w150_velocity == 0.4 and payload.w300_velocity == 0.4
    assert payload.instability_50 == 0.4 and payload.instability_150 == 0.4
    assert payload.asset_prices == {"BTCUSDT": 70_000.0, "ETHUSDT": 3_500.0}  # SOLUSDT: no price, left out
    assert set(payload.multi_window_results) == {"50", "150", "300", "750"}
    assert payload.multi_window_results["750"].velocity == 0.001
    assert payload.multi_window_results["50"].lambda_max == 0.4
    assert payload.eigenvalue_gradients == {"50": 0.4, "150": 0.4, "750": 0.4}  # w300 acceleration is NaN

    wire = BusCodec().encode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload)
    fields = msgspec.json.decode(wire)
    for name in ("scan_number", "timestamp", "bridge_ts", "vel_div", "w50_velocity", "w150_velocity",
                 "w300_velocity", "w750_velocity", "eigenvalue_gradients", "multi_window_results"):
        assert name in fields  # bible §27.5
    assert fields["multi_window_results"]["50"]["velocity"] == record.w50_velocity  # what the TUI reads (§28.5)
    decoded = BusCodec(max_future_s=None).decode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, wire)
    assert decoded == payload


def test_undefined_optional_statistics_are_left_out() -> None:
    record = msgspec.structs.replace(make_record(7), w150_velocity=math.nan, w150_lambda_max=math.nan,
                                     w50_lambda_max=math.nan, w50_instability=math.nan, w150_instability=math.nan)
    payload = payload_from_record(record, bridge_ts=1_775_390_700.0)
    assert payload.w150_velocity is None and payload.instability_50 is None and payload.instability_150 is None
    assert "150" not in payload.multi_window_results
    assert payload.multi_window_results["50"].lambda_max is None
    assert payload.multi_window_results["50"].instability is None


@pytest.mark.parametrize("field", ["vel_div", "w50_velocity", "w750_velocity"])
def test_warm_up_scans_are_not_publishable(field: str) -> None:
    record = msgspec.structs.replace(make_record(3), **{field: math.nan})
    assert field in (unpublishable_reason(record) or "")
    with pytest.raises(UnpublishableScan, match="scan 3"):
        payload_from_record(record, bridge_ts=1_775_390_700.0)
    assert unpublishable_reason(make_record(3)) is None


@pytest.mark.scan
def test_a_live_scan_reaches_the_bus_as_the_scanner_will_send_it() -> None:
    rng = np.random.default_rng(5)
    assets = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (760, len(assets))), axis=0))
    updater = ScanUpdater(len(assets))
    records = []
    for i, row in enumerate(close):
        records.append(ScanRecord.from_features(i + 1, 1_775_390_400_000_000_000 + i * 5_000_000_000, assets, row,
                                                updater.update(row)))
    assert unpublishable_reason(records[749]) is not None  # vel_div first defined at bar 751
    live = records[-1]
    payload = payload_from_record(live, bridge_ts=1_775_394_200.0)
    assert isinstance(payload, EigenScan)
    back = record_from_payload(payload)
    assert back.vel_div == live.vel_div == live.w50_velocity - live.w750_velocity
    for w in (50, 150, 300, 750):
        assert back.window(w) == live.window(w)
    assert back.price_map() == dict(zip(assets, close[-1].tolist(), strict=True))
