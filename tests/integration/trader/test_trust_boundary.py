"""The trader's trust boundary on a real bus: nothing a bus writer sends stops, freezes or steers it.

Each finding of the hardening issue is pinned here against the running trader service
(in-process, on the embedded member through the official client, the simulator as the
market clock): a forged jump, NG7 scans, forged "next" scans, a scan that contradicts its
archived file, and a hypothesis fuzz of thousands of payloads — after each, the next real
scan is stepped and every refused value is counted on the bus.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dolphin.store.arrow_scans import encode_scan, scan_path
from tests.integration.trader.support import ARCHIVED, Harness
from tests.support import wait_until

pytestmark = [pytest.mark.actor, pytest.mark.degradation, pytest.mark.data_integrity]

def test_a_forged_jump_cannot_stop_the_trader_even_across_a_restart(harness: Harness) -> None:
    recs = harness.records
    harness.step(recs[ARCHIVED])
    last = recs[ARCHIVED].scan_number
    forged = recs[ARCHIVED + 1]
    harness.put(forged, scan_number=last + 1_000_000)                      # the forged scan
    harness.put(forged, scan_number=last + 2)                              # next bar's time, a number two on
    harness.put(recs[ARCHIVED - 5], scan_number=last + 1)                  # the next number, an old bar time
    harness.step(recs[ARCHIVED + 1])                                       # the real next scan is stepped
    assert harness.rejected() == {"jump": 2, "backwards": 1}
    harness.stop()
    harness.start()                                                           # a restart keeps the real number
    assert harness.state().last_scan_number == recs[ARCHIVED + 1].scan_number
    harness.step(recs[ARCHIVED + 2])


def test_ng7_scans_are_normalised_and_never_crash_the_trader(harness: Harness) -> None:
    recs = harness.records
    harness.step(recs[ARCHIVED])
    for rec in recs[ARCHIVED + 1: ARCHIVED + 4]:                  # NG7 nested format, the next real numbers
        nested = {"scan_number": rec.scan_number, "timestamp": rec.timestamp_ns / 1e9,
                  "result": {"multi_window_results": {str(w): {"velocity": rec.window(w)[1]}
                                                      for w in (50, 150, 300, 750)},
                             "vel_div": rec.vel_div, "asset_prices": rec.price_map()}}
        harness.put_raw(json.dumps(nested))
        wait_until(lambda rec=rec: (s := harness.state()) is not None and s.last_scan_number == rec.scan_number, 60,
                   what=f"NG7 scan {rec.scan_number} to be stepped")
    assert harness.thread is not None and harness.thread.alive and harness.state().errors == 0


def test_forged_next_scans_are_refused_and_the_real_one_is_journaled(harness: Harness) -> None:
    recs = harness.records
    harness.step(recs[ARCHIVED])
    real = recs[ARCHIVED + 1]
    harness.put(real, asset_prices={})                                         # prices nothing
    harness.put(real, vel_div=-1e300)                                          # outside the math
    harness.put(real, asset_prices={"NOTAPERPUSDT": 1.0})                      # no asset of the universe
    year_2100 = 4_102_444_800 * 1_000_000_000
    harness.put(real, timestamp_ns=year_2100, timestamp=None)                  # a bar that has not closed
    harness.step(real)
    assert harness.rejected() == {"implausible": 3, "future": 1}
    (journaled,) = harness.journaled(real.scan_number)
    assert journaled.vel_div == real.vel_div and journaled.prices == real.price_map()
    assert journaled.ts_ms == real.timestamp_ns // 1_000_000


def test_a_bus_scan_that_contradicts_its_archived_file_is_refused(harness: Harness) -> None:
    recs = harness.records
    harness.step(recs[ARCHIVED])
    real = recs[ARCHIVED + 1]
    path = scan_path(harness.home, real)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_scan(real))                                        # the archive knows scan N
    lied = {a: p * (1.01 if a == "BTCUSDT" else 1.0) for a, p in real.price_map().items()}
    harness.put(real, asset_prices=lied)                                       # the bus lies about it
    harness.step(real)
    assert harness.rejected() == {"archive_mismatch": 1}


PRIORITY = [f"{a}USDT" for a in ("BTC", "ETH", "BNB", "SOL")]
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_number = st.one_of(_finite, st.integers(-10**20, 10**20), st.just(float("nan")), st.just(float("inf")))
_anything = st.one_of(st.none(), st.booleans(), _number, st.text(max_size=8), st.lists(_number, max_size=3))
_prices = st.dictionaries(st.one_of(st.sampled_from(PRIORITY), st.text(max_size=10)),
                          st.one_of(_number, _anything), max_size=6)
_ng8 = st.fixed_dictionaries(
    {"scan_number": st.one_of(st.integers(-5, 2**63), _anything),
     "timestamp_ns": st.one_of(st.integers(-10, 2**63), _anything),
     "vel_div": st.one_of(_number, _anything), "w50_velocity": _number, "w750_velocity": _number,
     "asset_prices": st.one_of(_prices, _anything)},
    optional={"bridge_ts": st.one_of(_number, _anything), "timestamp": st.one_of(st.text(max_size=30), _anything),
              "multi_window_results": st.one_of(st.dictionaries(st.sampled_from(["50", "750", "x"]),
                                                                st.one_of(st.fixed_dictionaries({"velocity": _number}),
                                                                          _anything), max_size=3), _anything),
              "w150_velocity": _number, "instability_50": _number})
_ng7 = st.fixed_dictionaries({"scan_number": st.one_of(st.integers(-5, 2**40), _anything),
                              "timestamp": st.one_of(_number, st.text(max_size=30), _anything),
                              "result": st.one_of(st.fixed_dictionaries(
                                  {"multi_window_results": st.dictionaries(
                                      st.sampled_from(["50", "150", "300", "750"]),
                                      st.fixed_dictionaries({"velocity": _number}), max_size=4),
                                   "asset_prices": _prices}), _anything)})
_payloads = st.one_of(_ng8.map(lambda d: json.dumps(d, allow_nan=True)),
                      _ng7.map(lambda d: json.dumps(d, allow_nan=True)),
                      st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1")))


def test_a_fuzzed_bus_cannot_crash_or_freeze_the_trader(harness: Harness) -> None:
    recs = harness.records
    harness.step(recs[ARCHIVED])
    before = harness.state()
    sent: list[str] = []

    @settings(max_examples=2_000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(value=_payloads)
    def put_one(value: str) -> None:
        harness.put_raw(value)
        sent.append(value)

    put_one()
    assert len(sent) >= 1_000

    def handled() -> int:
        s = harness.state()
        return sum(s.rejected_scans.values()) + s.duplicates - sum(before.rejected_scans.values()) - before.duplicates

    harness.step(recs[ARCHIVED + 1])                        # not frozen: the next real scan is stepped after them
    wait_until(lambda: handled() >= len(sent), 120, what="every fuzzed value to be refused or ignored")
    state = harness.state()
    assert state.errors == 0 and harness.thread is not None and harness.thread.alive
    assert handled() == len(sent)                           # each value counted exactly once, none stepped
    assert state.last_scan_number == recs[ARCHIVED + 1].scan_number
    assert math.isfinite(state.capital)
