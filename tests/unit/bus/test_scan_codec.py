"""The scan codec: every conversion of the canonical `ScanRecord`, and NG7/NG8 read-normalisation (§28.5)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolphin.bus import BusCodec, EigenScan, EigenScanNG7, schema
from dolphin.bus.scan_codec import (
    bar_from_input,
    bar_from_payload,
    bar_from_record,
    bars_from_table,
    input_from_bar,
    payload_from_record,
    record_from_payload,
    record_from_row,
    record_to_row,
    records_from_table,
)
from dolphin.scan import ScanUpdater
from dolphin.scan.definitions import DEFAULT_WINDOWS
from dolphin.scan.record import ScanRecord
from dolphin.scan.table import build_scan_table

pytestmark = [pytest.mark.data_integrity]

NOW = 1_780_000_000.0
T0_NS = 1_775_390_400_000_000_000
ASSETS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")


def _live_records(n: int = 760, seed: int = 5) -> tuple[np.ndarray, list[ScanRecord]]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, len(ASSETS))), axis=0))
    close[-1, 2] = np.nan  # one asset without a price in the last bar
    updater = ScanUpdater(len(ASSETS))
    return close, [ScanRecord.from_features(i + 1, T0_NS + i * 5_000_000_000, ASSETS, row, updater.update(row))
                   for i, row in enumerate(close)]


def test_the_arrow_row_round_trips_exactly() -> None:
    _, records = _live_records()
    for record in (records[3], records[-1]):  # a warm-up scan (NaN statistics) and a live one
        row = record_to_row(record)
        assert list(row) == list(record.__struct_fields__)
        assert isinstance(row["prices"], str) and json.loads(row["assets"]) == list(ASSETS)
        back = record_from_row(row)
        for name in record.__struct_fields__:
            a, b = getattr(record, name), getattr(back, name)
            assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), name


def test_a_malformed_row_is_a_value_error_naming_the_fault() -> None:
    _, records = _live_records(20)
    row = record_to_row(records[-1])
    with pytest.raises(ValueError, match="n_assets"):
        record_from_row({**row, "n_assets": 3})
    with pytest.raises(ValueError):
        record_from_row({**row, "prices": "[1, 2"})
    with pytest.raises(ValueError, match="not an NG5 row"):
        record_from_row({k: v for k, v in row.items() if k != "vel_div"})


def test_bus_payload_round_trip_keeps_every_published_statistic() -> None:
    _, records = _live_records()
    live = records[-1]
    payload = payload_from_record(live, bridge_ts=NOW)
    text = BusCodec(clock=lambda: NOW).encode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload)
    decoded = BusCodec(clock=lambda: NOW).decode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, text)
    back = record_from_payload(decoded)
    assert back.scan_number == live.scan_number and back.timestamp_ns == live.timestamp_ns
    assert back.vel_div == live.vel_div == live.w50_velocity - live.w750_velocity
    for w in DEFAULT_WINDOWS:
        assert back.window(w) == live.window(w)
    assert back.price_map() == live.price_map() and "SOLUSDT" not in back.price_map()
    assert back.loadings == {}  # the bus does not carry loadings


def test_ng7_nested_and_ng8_flat_scans_normalise_to_the_same_record() -> None:
    c = BusCodec(clock=lambda: NOW)
    ng8 = EigenScan(scan_number=7315, timestamp_ns=int((NOW - 1) * 1e9), vel_div=-0.0058, w50_velocity=-0.01,
                    w150_velocity=0.002, w300_velocity=0.003, w750_velocity=-0.0042, instability_50=0.31,
                    asset_prices={"BTCUSDT": 71281.03}, bridge_ts=NOW - 0.5)
    ng7_text = json.dumps({"scan_number": 7315, "timestamp": NOW - 1,
                           "result": {"multi_window_results": {
                               "50": {"velocity": -0.01, "instability": 0.31},
                               "150": {"velocity": 0.002}, "300": {"velocity": 0.003},
                               "750": {"velocity": -0.0042}}, "asset_prices": {"BTCUSDT": 71281.03}}})
    ng7 = c.decode(schema.FEATURES, schema.LATEST_EIGEN_SCAN, ng7_text)
    assert isinstance(ng7, EigenScanNG7)
    r8, r7 = record_from_payload(ng8), record_from_payload(ng7)
    for w in DEFAULT_WINDOWS:
        assert r8.window(w)[1] == r7.window(w)[1]
    assert r7.vel_div == pytest.approx(-0.01 - -0.0042)  # v50 − v750 when NG7 omits it
    assert r8.vel_div == -0.0058
    assert r8.w50_instability == r7.w50_instability == 0.31
    assert r7.price_map() == r8.price_map() == {"BTCUSDT": 71281.03}
    assert r7.timestamp_ns == r8.timestamp_ns
    # both reach the engine as the same kind of bar: NG7 never crashes a consumer
    b7, b8 = bar_from_payload(ng7), bar_from_payload(ng8)
    assert b7.scan_number == b8.scan_number and b7.ts_ms == b8.ts_ms and b7.v50 == b8.v50 == -0.01
    assert b8.published_s == NOW - 0.5


def test_engine_bars_agree_whichever_way_the_scan_arrived() -> None:
    close, records = _live_records()
    table = build_scan_table(np.array([r.timestamp_ns // 1_000_000 for r in records]), ASSETS, close)
    from_table = bars_from_table(table)
    for record, bar in zip(records, from_table, strict=True):
        direct = bar_from_record(record)
        assert direct.scan_number == bar.scan_number and direct.ts_ms == bar.ts_ms
        assert direct.prices == bar.prices
        for name in ("vel_div", "v50", "v750"):
            a, b = getattr(direct, name), getattr(bar, name)
            assert a == b or (math.isnan(a) and math.isnan(b))
    live = bar_from_record(records[-1])
    assert bar_from_payload(payload_from_record(records[-1], bridge_ts=NOW)).prices == live.prices
    selected = bars_from_table(table, table.scan_number > 755)
    assert [b.scan_number for b in selected] == [756, 757, 758, 759, 760]
    rows = list(records_from_table(table))
    assert rows[-1].vel_div == records[-1].vel_div and rows[-1].w750_velocity == records[-1].w750_velocity


@settings(max_examples=200, deadline=None)
@given(vel_div=st.one_of(st.floats(-1, 1), st.just(math.nan)), v50=st.floats(-1, 1),
       price=st.floats(1e-6, 1e9), trade=st.booleans(), kill=st.booleans())
def test_the_journal_input_round_trips(vel_div: float, v50: float, price: float, trade: bool, kill: bool) -> None:
    bar = bar_from_record(_live_records(2)[1][0])
    bar = type(bar)(scan_number=9, ts_ms=1_000, vel_div=vel_div, v50=v50, v750=math.nan, prices={"BTCUSDT": price})
    record = input_from_bar(bar, seq=3, vol_ok=True, trade=trade, acb=(1.3, 0.2), posture="APEX", kill_switch=kill)
    assert record.v750 is None and (record.vel_div is None) == math.isnan(vel_div)
    back = bar_from_input(record)
    assert back.scan_number == 9 and back.prices == bar.prices and back.v50 == v50
    assert back.vel_div == vel_div or (math.isnan(back.vel_div) and math.isnan(vel_div))
