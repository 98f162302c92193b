"""The simulator's Deribit DVOL and Fear & Greed endpoints, read over HTTP by DOLPHIN's own clients.

The indices follow the simulated market (DVOL rises in a panic's realised volatility, Fear &
Greed falls in its drawdown), are the same for the same seed, can be spiked on purpose
(``/sim/v1/shocks``), and fail the way the real APIs do when a fault is injected.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from dolphin.market.errors import MarketUnavailableError
from dolphin.market.external import DeribitRest, ExternalApiError, FearGreedRest
from dolphin.market.sim import SimConfig, SimExchange
from dolphin.market.synthetic import DEFAULT_START_MS, SyntheticConfig, SyntheticMarket
from tests.integration.market.conftest import run

pytestmark = [pytest.mark.data_integrity, pytest.mark.degradation]

DAY = 86_400_000
START = DEFAULT_START_MS + DAY + 12 * 3_600_000     # day 1, noon: the morning's panics are history


def _panic_ms() -> int:
    """When the most violent downward panic of day 1's morning (seed 7) breaks (the ground-truth schedule)."""
    market = SyntheticMarket(SyntheticConfig(seed=7))
    morning = [e for e in market.episodes(1) if e.kind == "panic" and e.direction < 0
               and DEFAULT_START_MS + e.end_bar * 5_000 < START - 3_600_000]
    worst = max(morning, key=lambda e: e.vol_burst)
    return DEFAULT_START_MS + worst.panic_bar * 5_000


def _admin(sim: SimExchange, method: str, path: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(sim.rest_url + path, method=method)) as resp:
        return json.load(resp)


@pytest.fixture(scope="module")
def sim() -> Any:
    with SimExchange(SimConfig(port=0, symbols=10, seed=7, start_ms=START)) as s:
        yield s


def test_dvol_follows_the_market_and_is_the_same_for_the_same_seed(sim: SimExchange) -> None:
    onset = _panic_ms()

    async def read(s: SimExchange) -> list[Any]:
        api = DeribitRest(s.rest_url)
        try:
            return await api.volatility_index("BTC", onset - 3_600_000, onset + 3_600_000, "60")
        finally:
            await api.close()

    candles = run(read(sim))
    assert len(candles) == 121 and all(c.low <= c.open <= c.high and c.low <= c.close <= c.high for c in candles)
    before = next(c.close for c in candles if c.timestamp >= onset - 60_000)
    after = max(c.high for c in candles if onset <= c.timestamp <= onset + 3_600_000)
    assert after >= before + 3.0, f"DVOL should rise in the panic's volatility: {before} → {after}"
    with SimExchange(SimConfig(port=0, symbols=10, seed=7, start_ms=START)) as twin:
        assert run(read(twin)) == candles                    # deterministic per seed
    with SimExchange(SimConfig(port=0, symbols=10, seed=8, start_ms=START)) as other:
        assert run(read(other)) != candles


def test_fear_and_greed_falls_in_the_panics_drawdown(sim: SimExchange) -> None:
    onset = _panic_ms()
    rows = json.load(urllib.request.urlopen(sim.rest_url + "/fng/?limit=24"))["data"]
    by_hour = {int(r["timestamp"]) * 1000: int(r["value"]) for r in rows}
    hour = onset - onset % 3_600_000
    assert by_hour[hour + 3_600_000] < by_hour[hour], by_hour   # the first value published after the panic fell
    latest = run(FearGreedRest(sim.rest_url).latest())
    assert 0 <= latest.value <= 100 and latest.classification and latest.time_until_update_s is not None


def test_a_scripted_shock_spikes_dvol_and_faults_fail_like_the_real_apis(sim: SimExchange) -> None:
    async def latest() -> float:
        api = DeribitRest(sim.rest_url, max_retries=1)
        try:
            return (await api.latest_dvol("BTC", sim.now_ms())).close
        finally:
            await api.close()

    calm = run(latest())
    shock = _admin(sim, "POST", "/sim/v1/shocks?dvol=40&duration=30m")["shock"]
    assert shock["dvol"] == 40.0
    deadline = time.monotonic() + 30
    while (spiked := run(latest())) < calm + 30:   # the next bar close carries it
        assert time.monotonic() < deadline, f"DVOL did not spike: {calm} → {spiked}"
        time.sleep(0.2)
    assert _admin(sim, "DELETE", "/sim/v1/shocks") == {"cleared": 1}

    _admin(sim, "POST", "/sim/v1/faults?spec=error:status=500,path=/api/v2/public/get_volatility_index_data,count=-1")
    with pytest.raises(MarketUnavailableError, match="HTTP 500"):
        run(latest())
    _admin(sim, "DELETE", "/sim/v1/faults")
    _admin(sim, "POST", "/sim/v1/faults?spec=malformed:path=/fng/,mode=shape,count=1")
    _admin(sim, "POST", "/sim/v1/faults?spec=malformed:path=/fng/,count=1")
    for _ in range(2):
        with pytest.raises(MarketUnavailableError, match="malformed"):
            run(FearGreedRest(sim.rest_url).latest())
    assert 0 <= run(FearGreedRest(sim.rest_url).latest()).value <= 100   # and then it answers again

    async def bad_currency() -> None:
        api = DeribitRest(sim.rest_url)
        try:
            await api.volatility_index("XRP", 1, 2, "60")
        finally:
            await api.close()

    with pytest.raises(ExternalApiError, match="Invalid params"):
        run(bad_currency())
