"""The shared request-weight limiter and Binance's weight tables."""

from __future__ import annotations

import asyncio

import pytest

from dolphin.market.limiter import RequestLimiter, depth_weight, klines_weight, shared_limiter


class FakeClock:
    def __init__(self, t: float = 1_000_040.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_weight_fits_then_waits_for_the_next_minute() -> None:
    clock = FakeClock()
    lim = RequestLimiter(weight_per_minute=100, headroom=1.0, clock=clock)
    assert lim._reserve(60, 0) == 0.0
    assert lim._reserve(40, 0) == 0.0
    wait = lim._reserve(1, 0)
    assert 39.9 < wait <= 40.01  # the minute window [1_000_020, 1_000_080)
    clock.t += wait
    assert lim._reserve(1, 0) == 0.0
    assert lim.state().used_weight_1m == 1


def test_orders_have_their_own_windows() -> None:
    clock = FakeClock()
    lim = RequestLimiter(orders_per_minute=1000, orders_per_10s=3, headroom=1.0, clock=clock)
    for _ in range(3):
        assert lim._reserve(1, 1) == 0.0
    assert lim._reserve(1, 1) > 0
    assert lim._reserve(1, 0) == 0.0  # non-order requests are not held back by the order budget


def test_server_counts_win_and_retry_after_blocks_everyone() -> None:
    clock = FakeClock()
    lim = RequestLimiter(weight_per_minute=100, headroom=1.0, clock=clock)
    lim.observe(used_weight_1m=95)
    assert lim._reserve(10, 0) > 0
    lim.observe(used_weight_1m=10)  # lower than ours: ignored
    assert lim.state().used_weight_1m == 95
    lim.block_for(5.0)
    assert lim._reserve(1, 0) == pytest.approx(5.0)
    assert lim.state().blocked_for_s == pytest.approx(5.0)


def test_a_request_heavier_than_the_budget_still_goes_once() -> None:
    lim = RequestLimiter(weight_per_minute=10, headroom=1.0, clock=FakeClock())
    assert lim._reserve(50, 0) == 0.0
    assert lim._reserve(1, 0) > 0


def test_acquire_waits_asynchronously() -> None:
    clock = FakeClock(1_000_079.99)
    lim = RequestLimiter(weight_per_minute=1, headroom=1.0, clock=clock)

    async def go() -> None:
        await lim.acquire(1)
        waiter = asyncio.create_task(lim.acquire(1))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        clock.t += 1.0
        await asyncio.wait_for(waiter, 2.0)

    asyncio.run(go())
    assert lim.state().waits >= 1


def test_one_limiter_per_venue() -> None:
    a = shared_limiter("http://127.0.0.1:8790")
    assert shared_limiter("http://127.0.0.1:8790/") is a
    assert shared_limiter("http://127.0.0.1:8791") is not a
    assert shared_limiter("https://fapi.binance.com") is shared_limiter("https://FAPI.binance.com:443")


def test_published_weight_tables() -> None:
    assert [klines_weight(n) for n in (1, 99, 100, 499, 500, 1000, 1500)] == [1, 1, 2, 2, 5, 5, 10]
    assert [depth_weight(n) for n in (5, 50, 100, 500, 1000)] == [2, 2, 5, 10, 20]


def test_bad_headroom_is_refused() -> None:
    with pytest.raises(ValueError):
        RequestLimiter(headroom=2.0)
