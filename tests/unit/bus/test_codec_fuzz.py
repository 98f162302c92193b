"""A hypothesis fuzz of every bus codec: any value, for any key, is a payload or a counted `PayloadError`.

Listeners and readers decode whatever a local process writes. The codec must turn each
value into its validated payload or a `PayloadError` with a reason — never another
exception (which would reach a listener thread), never a payload that breaks its own
checks (NaN, negative prices, out-of-range fields).
"""

from __future__ import annotations

import json
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolphin.bus import BusCodec, PayloadError
from dolphin.bus.payloads import Payload

pytestmark = [pytest.mark.data_integrity, pytest.mark.degradation]

NOW = 1_780_000_000.0

# one concrete key per schema entry (patterns get a matching example)
KEYS: list[tuple[str, str]] = [
    ("DOLPHIN_FEATURES", "latest_eigen_scan"), ("DOLPHIN_FEATURES", "acb_boost"), ("DOLPHIN_FEATURES", "exf_latest"),
    ("DOLPHIN_FEATURES", "obf_universe_latest"), ("DOLPHIN_FEATURES", "mc_forewarner_latest"),
    ("DOLPHIN_SAFETY", "latest"), ("DOLPHIN_STATE_BLUE", "latest"), ("DOLPHIN_STATE_BLUE", "latest_nautilus"),
    ("DOLPHIN_STATE_BLUE", "state_blue_2026-04-05"), ("DOLPHIN_PNL_BLUE", "2026-04-05"),
    ("DOLPHIN_PNL_GREEN", "2026-04-05"), ("DOLPHIN_HEARTBEAT", "probe_ts"), ("DOLPHIN_HEARTBEAT", "latest"),
    ("DOLPHIN_HEARTBEAT", "scanner_heartbeat"), ("DOLPHIN_META_HEALTH", "latest"), ("DOLPHIN_OB", "BTCUSDT"),
    ("DOLPHIN_FEATURES_SHARD_03", "BTCUSDT"), ("DOLPHIN_FEATURES_SHARD_03", "vel_div_BTCUSDT"),
]

_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                  st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
_json = st.recursive(_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(st.text(max_size=12), inner, max_size=6)),
                     max_leaves=12)
_field_names = st.sampled_from(["scan_number", "timestamp_ns", "vel_div", "w50_velocity", "w750_velocity",
                                "asset_prices", "boost", "beta", "_pushed_at", "posture", "Rm", "status", "result",
                                "timestamp", "ts", "capital", "updated_at", "bids", "asks", "imbalance"])
_shaped = st.dictionaries(_field_names, _json, max_size=10)
_values = st.one_of(_shaped.map(lambda d: json.dumps(d, allow_nan=True)),
                    _json.map(lambda d: json.dumps(d, allow_nan=True)),
                    st.text(max_size=60), st.binary(max_size=60))


def _finite_everywhere(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite_everywhere(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite_everywhere(v) for v in value)
    return True


@settings(max_examples=1_000, deadline=None, database=None)
@given(key=st.sampled_from(KEYS), value=_values)
def test_every_codec_gives_a_payload_or_a_payload_error(key: tuple[str, str], value: str | bytes) -> None:
    codec = BusCodec(clock=lambda: NOW)
    try:
        decoded = codec.decode(*key, value)
    except PayloadError as exc:
        assert exc.reason and exc.detail
        return
    if isinstance(decoded, Payload):
        assert _finite_everywhere(msgspec.to_builtins(decoded))
        # what was accepted encodes and decodes to itself: a value the bus holds stays readable
        assert codec.decode(*key, codec.encode(*key, decoded)) == decoded


@settings(max_examples=200, deadline=None, database=None)
@given(key=st.sampled_from(KEYS), value=_values)
def test_the_edge_never_raises_and_counts_every_refusal(key: tuple[str, str], value: str | bytes) -> None:
    codec = BusCodec(clock=lambda: NOW)
    before = codec.rejections.total
    result = codec.accept(*key, value, source="fuzz")
    assert (result is None) == (codec.rejections.total == before + 1)
