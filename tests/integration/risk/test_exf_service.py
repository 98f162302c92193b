"""The ExF daemon against the simulator's four endpoints over HTTP and the embedded member.

It publishes what the venues answer; a source in an HTTP 500 storm or answering garbage
keeps its factor's last value with a growing age, is named stale and its failure logged
once per streak and counted — while the other factors stay fresh — and recovers.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from dolphin.bus import Bus, EmbeddedMember, schema
from dolphin.bus.client import connect
from dolphin.market.sim import SimConfig, SimExchange
from dolphin.market.synthetic import DEFAULT_START_MS
from tests.integration.risk.support import ExfThread, risk_env
from tests.support import wait_until

pytestmark = [pytest.mark.degradation, pytest.mark.data_integrity]

DVOL_PATH = "/api/v2/public/get_volatility_index_data"


def _get(sim: SimExchange, path: str) -> Any:
    with urllib.request.urlopen(sim.rest_url + path) as resp:
        return json.load(resp)


def _admin(sim: SimExchange, method: str, path: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(sim.rest_url + path, method=method)) as resp:
        return json.load(resp)


def test_exf_publishes_the_venues_factors_and_survives_a_500_storm_and_garbage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dolphin.exf")
    start = DEFAULT_START_MS + 86_400_000 + 6 * 3_600_000
    with EmbeddedMember(port=0) as member, SimExchange(SimConfig(port=0, symbols=10, seed=7, start_ms=start)) as sim:
        for var, value in risk_env(tmp_path, member.port, sim).items():
            monkeypatch.setenv(var, value)
        client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
        bus = Bus(client)
        exf = ExfThread(tmp_path)
        exf.start_thread()
        try:
            def latest() -> Any:
                return bus.get(schema.FEATURES, schema.EXF_LATEST)

            first = wait_until(lambda: (x := latest()) is not None and not x.stale and x, 60,
                               what="all four factors fresh")
            premium = _get(sim, "/fapi/v1/premiumIndex?symbol=BTCUSDT")
            assert first.funding_btc == float(premium["lastFundingRate"])
            taker = _get(sim, "/futures/data/takerlongshortRatio?symbol=BTCUSDT&period=5m&limit=1")
            assert first.taker == float(taker[-1]["buySellRatio"])
            assert first.fng == float(_get(sim, "/fng/?limit=1")["data"][0]["value"])
            now = sim.now_ms()
            candles = _get(sim, f"{DVOL_PATH}?currency=BTC&start_timestamp={now - 300_000}&end_timestamp={now}"
                                f"&resolution=60")["result"]["data"]
            assert min(c[3] for c in candles) <= first.dvol_btc <= max(c[2] for c in candles)

            # an HTTP 500 storm on Deribit: DVOL keeps its last value, ages, turns stale; the others stay fresh
            _admin(sim, "POST", f"/sim/v1/faults?spec=error:status=500,path={DVOL_PATH},count=-1")
            kept = latest().dvol_btc
            stormy = wait_until(lambda: (x := latest()) is not None and "dvol_btc" in x.stale and "dvol_btc" in x.errors
                                and x, 60, what="dvol_btc stale and failing in the storm")
            assert stormy.dvol_btc == kept and stormy.ages["dvol_btc"] > 1.5
            assert "HTTP 500" in stormy.errors["dvol_btc"]
            assert set(stormy.stale) == {"dvol_btc"} and stormy.ages["funding_btc"] < 1.5
            later = wait_until(lambda: (x := latest()) is not None and x.ages["dvol_btc"] > stormy.ages["dvol_btc"] + 1
                               and x, 30, what="the kept value to keep ageing")
            assert later.dvol_btc == kept
            _admin(sim, "DELETE", "/sim/v1/faults")
            wait_until(lambda: (x := latest()) is not None and not x.stale and not x.errors, 60,
                       what="DVOL fresh again after the storm")

            # garbage from Fear & Greed: counted and logged once, the last good value kept
            good_fng = latest().fng
            _admin(sim, "POST", "/sim/v1/faults?spec=malformed:path=/fng/,mode=shape,count=3")
            bad = wait_until(lambda: (x := latest()) is not None and "fng" in x.errors and x, 60,
                             what="the malformed answers to be counted")
            assert bad.fng == good_fng and "malformed" in bad.errors["fng"]
            wait_until(lambda: (x := latest()) is not None and "fng" not in x.errors, 60, what="fng recovered")
            assert exf.alive
        finally:
            exf.stop()
            client.shutdown()
    failures = [r.getMessage() for r in caplog.records if "fetch failed" in r.getMessage()]
    assert sum("dvol_btc" in m for m in failures) == 1, failures    # once per failure streak, not once per retry
    assert sum("fng" in m for m in failures) == 1, failures
    assert any("dvol_btc is back" in r.getMessage() for r in caplog.records)
