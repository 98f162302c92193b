"""Fault rules: the --fault spec language, consumption by count, standing settings."""

from __future__ import annotations

import pytest

from dolphin.market.errors import SimConfigError
from dolphin.market.sim.config import SimConfig
from dolphin.market.sim.faults import Faults, parse_spec


def test_specs_parse_with_defaults_and_durations() -> None:
    rule = parse_spec("error:status=503,code=-1001,path=/fapi/v1/order,count=2")
    assert (rule.kind, rule.status, rule.code, rule.path, rule.count) == ("error", 503, -1001, "/fapi/v1/order", 2)
    assert rule.msg == "Internal error; unable to process your request. Please try again."
    assert parse_spec("ack:mode=drop").matches("POST", "/fapi/v1/order")
    assert not parse_spec("ack:mode=drop").matches("GET", "/fapi/v1/order")
    assert parse_spec("partial:ratio=0.25,delay_ms=2s").delay_ms == 2000
    assert parse_spec("ws_drop:every_ms=1.5m,target=user").every_ms == 90_000
    assert parse_spec("listenkey:ttl_ms=30s").ttl_ms == 30_000


@pytest.mark.parametrize("spec", ["boom", "error:status=200", "ack:mode=maybe", "partial:ratio=1.5",
                                  "listenkey", "error:nosuch=1", "error:count=0", "error:status=abc",
                                  "ws_drop:target=everyone"])
def test_bad_specs_are_one_clear_error(spec: str) -> None:
    with pytest.raises(SimConfigError, match="fault"):
        parse_spec(spec)
    with pytest.raises(SimConfigError):
        SimConfig(faults=(spec,))


def test_rules_are_consumed_by_count_and_standing_rules_stay() -> None:
    faults = Faults([parse_spec("error:path=/fapi/v1/order,count=2"), parse_spec("listenkey:ttl_ms=10s,count=-1")])
    assert faults.take("error", "POST", "/fapi/v1/depth") is None
    assert faults.take("error", "POST", "/fapi/v1/order") is not None
    assert faults.take("error", "GET", "/fapi/v1/order") is not None
    assert faults.take("error", "POST", "/fapi/v1/order") is None
    assert faults.setting("listenkey", "ttl_ms") == 10_000 and faults.setting("ws_drop", "every_ms") == 0
    assert faults.describe()["fired"]["error"] == 2 and len(faults.rules()) == 1
    assert faults.clear() == 1 and faults.setting("listenkey", "ttl_ms") == 0


def test_periodic_ws_drops_and_the_admin_endpoint_answers_loopback_only() -> None:
    from types import SimpleNamespace

    from dolphin.market.sim.engine import StreamEngine
    from dolphin.market.sim.rest_server import RestApi
    from dolphin.market.sim.ws_server import Client, StreamHub

    from .test_sim_clock import exchange

    ex, _ = exchange(5)
    hub = StreamHub(ex)
    engine = StreamEngine(ex, hub)
    clients = [Client(n, None, False, None) for n in range(3)]  # type: ignore[arg-type]
    for c in clients:
        hub.clients[c.id] = c
        assert hub.subscribe(c, ["btcusdt@aggTrade"]) == []
    ex.faults.add(parse_spec("ws_drop:every_ms=1,count=-1"))
    engine._last_drop = float("-inf")
    engine.tick(ex.now())
    assert all(c.closed for c in clients) and hub.kills == 3 and ex.faults.fired["ws_drop"] == 1
    assert RestApi._loopback(SimpleNamespace(remote="127.0.0.1"))  # type: ignore[arg-type]
    assert RestApi._loopback(SimpleNamespace(remote="::1"))  # type: ignore[arg-type]
    assert not RestApi._loopback(SimpleNamespace(remote="192.168.1.7"))  # type: ignore[arg-type]
