"""Listen keys (60 minutes of wall time, keepalive, expiry, delete) and the shapes of user-data events."""

from __future__ import annotations

import json

import pytest

from dolphin.market.errors import ListenKeyError
from dolphin.market.sim.faults import parse_spec
from dolphin.market.sim.userdata import LISTEN_KEY_TTL_MS
from tests.integration.market.test_conformance import conforms, fixture

from .test_sim_clock import exchange


def test_listen_key_lifecycle() -> None:
    ex, _ = exchange(5)
    ud = ex.userdata
    wall = [1_000.0]
    ud._wall = lambda: wall[0]
    published: list[tuple[str, dict]] = []
    closed: list[str] = []
    ud.publish = lambda key, payload: published.append((key, json.loads(payload)))
    ud.close_readers = closed.append
    key = ud.create({})["listenKey"]
    assert len(key) == 64 and ud.create({}) == {"listenKey": key} and ud.is_active(key)
    wall[0] += LISTEN_KEY_TTL_MS / 1000 - 1
    assert ud.keepalive({}) == {"listenKey": key}  # extended by another 60 minutes
    wall[0] += LISTEN_KEY_TTL_MS / 1000 - 1
    assert ud.on_tick() == [] and ud.is_active(key)
    wall[0] += 2
    assert ud.on_tick() == [key] and not ud.is_active(key)
    assert published[-1] == (key, {"e": "listenKeyExpired", "E": ex.now(), "listenKey": key})
    with pytest.raises(ListenKeyError):
        ud.keepalive({})
    other = ud.create({})["listenKey"]
    assert other != key and ud.close({}) == {} and closed == [other] and ud.active() == []
    ex.faults.add(parse_spec("listenkey:ttl_ms=5s"))  # expire early
    third = ud.create({})["listenKey"]
    wall[0] += 5.001
    assert ud.on_tick() == [third]


def test_margin_call_and_config_events_have_the_documented_shape() -> None:
    ex, _ = exchange(5, balance=1_000_000.0)
    seen: list[dict] = []
    ex.userdata.publish = lambda key, payload: seen.append(json.loads(payload))
    ex.userdata.create({})
    ex.change_leverage({"symbol": "ETHUSDT", "leverage": "9"})
    ex.new_order({"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "1.000"})
    ex.userdata.margin_call(ex.marks(ex.now()), ex.state.wallet_balance)
    by_kind = {e["e"]: e for e in seen}
    conforms(by_kind["ACCOUNT_CONFIG_UPDATE"], fixture("ud_ACCOUNT_CONFIG_UPDATE.json"))
    assert by_kind["ACCOUNT_CONFIG_UPDATE"]["ac"] == {"s": "ETHUSDT", "l": 9}
    conforms(by_kind["MARGIN_CALL"], fixture("ud_MARGIN_CALL.json"))
    conforms(by_kind["TRADE_LITE"], fixture("ud_TRADE_LITE.json"))
    assert [e["o"]["x"] for e in seen if e["e"] == "ORDER_TRADE_UPDATE"][0] == "NEW"


def test_no_listener_no_work() -> None:
    ex, _ = exchange(5)
    sent: list[str] = []
    ex.userdata.publish = lambda key, payload: sent.append(payload)
    ex.new_order({"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.100"})
    assert sent == [] and ex.userdata.events == 0
