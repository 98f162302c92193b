"""OBF shard routing (§15.2) and shard-key parsing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dolphin.bus import schema
from dolphin.bus.shards import SHARD_COUNT, shard_index, shard_map_name, symbols_in_keys
from tests.support import PROJECT_ROOT


@pytest.mark.parametrize(("symbol", "code_point_sum", "shard"), [
    ("BTCUSDT", 537, 7),
    ("ETHUSDT", 545, 5),
    ("SOLUSDT", 558, 8),
    ("BNBUSDT", 530, 0),
    ("XRPUSDT", 570, 0),
    ("1000PEPEUSDT", 811, 1),
])
def test_known_symbols_route_as_the_bible_says(symbol: str, code_point_sum: int, shard: int) -> None:
    assert sum(ord(c) for c in symbol) == code_point_sum  # the §15.2 formula, by hand
    assert shard_index(symbol) == shard
    assert shard_map_name(symbol) == f"DOLPHIN_FEATURES_SHARD_{shard:02d}"


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=2, max_size=20))
def test_every_symbol_lands_in_one_of_ten_shards(symbol: str) -> None:
    assert 0 <= shard_index(symbol) < SHARD_COUNT
    assert shard_map_name(symbol) in schema.SHARD_MAPS


def test_routing_is_stable_across_processes_and_hash_seeds() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "1000PEPEUSDT", "STXUSDT"]
    code = ("import json, sys; from dolphin.bus.shards import shard_map_name; "
            "print(json.dumps([shard_map_name(s) for s in sys.argv[1:]]))")
    results = []
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(PROJECT_ROOT)}
        out = subprocess.run([sys.executable, "-c", code, *symbols], env=env, capture_output=True, text=True,
                             check=True, timeout=60).stdout
        results.append(json.loads(out))
    assert results[0] == results[1] == results[2] == [shard_map_name(s) for s in symbols]


def test_feature_keys_follow_section_15_3() -> None:
    assert schema.feature_key("BTCUSDT", "vel_div") == "vel_div_BTCUSDT"
    assert schema.parse_feature_key("vel_div_BTCUSDT") == ("vel_div", "BTCUSDT")
    assert schema.parse_feature_key("imbalance_ma5_1000PEPEUSDT") == ("imbalance_ma5", "1000PEPEUSDT")
    assert schema.parse_feature_key("BTCUSDT") is None
    for bad_symbol in ("btcusdt", "BTC-USDT", ""):
        with pytest.raises(ValueError):
            schema.feature_key(bad_symbol, "vel_div")
    with pytest.raises(ValueError):
        schema.feature_key("BTCUSDT", "VelDiv")


def test_discovery_reads_both_key_kinds() -> None:
    keys = ["BTCUSDT", "vel_div_ETHUSDT", "imbalance_ma5_SOLUSDT", "garbage key", 42, "lower_case"]
    assert symbols_in_keys(keys) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
