"""BinanceRest against the simulator over real sockets: history, trading, account, signatures, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from dolphin.market.errors import (
    ApiKeyError,
    BadPrecisionError,
    BadSymbolError,
    DuplicateClientOrderIdError,
    InsufficientMarginError,
    InvalidSignatureError,
    RateLimitError,
    UnknownOrderError,
)
from dolphin.market.limiter import RequestLimiter
from dolphin.market.rest import BinanceRest
from dolphin.market.sim import SimExchange
from dolphin.market.sync import SyncBinanceRest

from .conftest import KEY, SECRET, run, small_sim


@pytest.fixture(scope="module")
def sim20() -> Iterator[SimExchange]:
    with small_sim() as sim:
        yield sim


def test_klines_backfill_pages_through_a_day_of_history(sim20: SimExchange) -> None:
    async def go() -> None:
        async with BinanceRest(sim20.rest_url) as rest:
            now = await rest.server_time()
            start = now - 3 * 3600_000
            rows = await rest.klines_range("ETHUSDT", "5s", start, page_limit=1000)  # 3 h of 5 s bars: 3 pages
            opens = [k.open_time for k in rows]
            assert opens[0] == start - start % 5000 + (5000 if start % 5000 else 0)
            assert opens == list(range(opens[0], opens[0] + 5000 * len(opens), 5000))
            assert len(rows) >= 2160 and rows[-1].open_time <= now < rows[-1].close_time + 5000
            assert all(r.low <= min(r.open, r.close) <= max(r.open, r.close) <= r.high for r in rows)
            assert all(a.close == b.open for a, b in zip(rows, rows[1:]))
            closed = await rest.klines_range("ETHUSDT", "1m", now - 86_400_000, closed_only=True)
            assert 1430 <= len(closed) <= 1440 and closed[-1].close_time < now
            day = await rest.klines("ETHUSDT", "1d", limit=5)
            # history starts about a day back: two UTC days, or three just after midnight (the market is placed
            # a few minutes before "a day ago" so its first panic comes soon after the start)
            assert 2 <= len(day) <= 3 and all(b.open_time - a.open_time == 86_400_000 for a, b in zip(day, day[1:]))
            assert day[-1].open_time <= now < day[-1].open_time + 86_400_000
            again = await rest.klines("ETHUSDT", "5s", start_ms=opens[10], limit=5)
            assert [k.open_time for k in again] == opens[10:15] and again[0] == rows[10]

    run(go())


def test_market_data_endpoints(sim540: SimExchange) -> None:
    async def go() -> None:
        async with BinanceRest(sim540.rest_url) as rest:
            await rest.ping()
            info = await rest.exchange_info()
            assert len(info.symbols) == 540 and info.symbols[0].symbol == "BTCUSDT"
            btc = info.symbol("BTCUSDT")
            assert btc is not None and btc.tick_size == 0.1 and btc.step_size == 0.001 and btc.min_notional == 5.0
            book = await rest.depth("BTCUSDT", 20)
            assert len(book.bids) == 20 and book.asks[0][0] > book.bids[0][0]
            mark = await rest.premium_index("SOLUSDT")
            assert mark.next_funding_time > mark.time and mark.mark_price > 0
            assert len(await rest.premium_index_all()) == 540
            funding = await rest.funding_rate("BTCUSDT", limit=10)
            assert [f.funding_time for f in funding] == sorted(f.funding_time for f in funding) and funding
            ratio = await rest.taker_long_short_ratio("BTCUSDT", "15m", limit=4)
            assert len(ratio) == 4 and all(r.buy_vol > 0 and r.sell_vol > 0 for r in ratio)
            with pytest.raises(BadSymbolError):
                await rest.depth("NOPEUSDT")

    run(go())


def test_orders_positions_and_pnl() -> None:
    with small_sim(speed=10.0) as sim:
        async def go() -> None:
            async with BinanceRest(sim.rest_url, KEY, SECRET) as rest:
                before = await rest.account()
                assert before.total_wallet_balance == 25_000.0 and before.position("BTCUSDT").position_amt == 0
                book = await rest.depth("BTCUSDT")
                resting = await rest.new_order("BTCUSDT", "BUY", "LIMIT", 0.01, price=book.bids[-1][0] - 100.0,
                                               new_client_order_id="rest-1")
                assert resting.status == "NEW" and resting.client_order_id == "rest-1"
                queried = await rest.query_order("BTCUSDT", orig_client_order_id="rest-1")
                assert queried.order_id == resting.order_id and queried.time > 0
                assert [o.order_id for o in await rest.open_orders("BTCUSDT")] == [resting.order_id]
                cancelled = await rest.cancel_order("BTCUSDT", order_id=resting.order_id)
                assert cancelled.status == "CANCELED" and await rest.open_orders() == []
                with pytest.raises(UnknownOrderError):
                    await rest.cancel_order("BTCUSDT", order_id=resting.order_id)

                buy = await rest.new_order("BTCUSDT", "BUY", "MARKET", 0.05)
                assert buy.status == "FILLED" and buy.executed_qty == 0.05 and buy.avg_price > 0
                risk = (await rest.position_risk("BTCUSDT"))[0]
                assert risk.position_amt == 0.05 and risk.entry_price == pytest.approx(buy.avg_price, abs=1e-5)
                assert risk.un_realized_profit == pytest.approx(0.05 * (risk.mark_price - risk.entry_price), abs=1e-6)
                acct = await rest.account()
                assert acct.total_wallet_balance == pytest.approx(25_000.0 - buy.cum_quote * 0.0005, abs=1e-6)
                assert acct.total_margin_balance == pytest.approx(
                    acct.total_wallet_balance + acct.total_unrealized_profit, abs=1e-6)
                sell = await rest.new_order("BTCUSDT", "SELL", "MARKET", 0.05, reduce_only=True)
                realized = (sell.avg_price - buy.avg_price) * 0.05
                after = await rest.account()
                fees = (buy.cum_quote + sell.cum_quote) * 0.0005
                assert after.total_wallet_balance == pytest.approx(25_000.0 + realized - fees, abs=1e-4)
                assert after.position("BTCUSDT").position_amt == 0  # type: ignore[union-attr]

                lev = await rest.change_leverage("BTCUSDT", 5)
                assert lev.leverage == 5 and (await rest.position_risk("BTCUSDT"))[0].leverage == 5
                with pytest.raises(InsufficientMarginError):
                    await rest.new_order("BTCUSDT", "BUY", "MARKET", 2.0)
                with pytest.raises(BadPrecisionError):
                    await rest.new_order("BTCUSDT", "BUY", "MARKET", 0.0105)
                with pytest.raises(DuplicateClientOrderIdError):
                    await rest.new_order("BTCUSDT", "BUY", "MARKET", 0.01, new_client_order_id="rest-1")

        run(go())


def test_bad_signatures_and_keys_are_rejected() -> None:
    with small_sim() as sim:
        async def go() -> None:
            async with BinanceRest(sim.rest_url, KEY, "wrong-secret") as rest:
                with pytest.raises(InvalidSignatureError) as bad:
                    await rest.account()
                assert bad.value.code == -1022 and bad.value.status == 400
                assert bad.value.msg == "Signature for this request is not valid."
            async with BinanceRest(sim.rest_url, "unknown-key", SECRET) as rest:
                with pytest.raises(ApiKeyError) as key:
                    await rest.open_orders()
                assert key.value.code == -2015 and key.value.status == 401

        run(go())


def test_signed_requests_follow_a_fast_simulated_clock() -> None:
    # a market far from the wall clock: the simulator also accepts a stamp near the host's wall time (stock
    # clients), and a synthetic market placed at "now" would let a rate-unaware stamp pass for a while
    with small_sim(speed=60.0, start_ms=1_767_744_000_000) as sim:
        async def go() -> None:
            async with BinanceRest(sim.rest_url, KEY, SECRET, recv_window_ms=1000) as rest:
                await rest.account()
                clock = rest.clock
                # each request after 90 s of simulated time would be -1021 to a rate-unaware clock; it succeeds
                # (the client resyncs on -1021) and the rate is learned once two samples are far enough apart in
                # local time — on a loaded machine that may take more than two rounds, so wait for it
                deadline = time.monotonic() + 60.0
                while clock.rate_error == 0.0:
                    assert time.monotonic() < deadline, "the client never learned the simulated clock's rate"
                    await asyncio.sleep(1.5)
                    await rest.account()
                # learned from /time samples, as exact as their round trips allow (wide on a loaded machine)
                assert abs(clock.rate - 60.0) / 60.0 <= clock.rate_error + 0.01, (clock.rate, clock.rate_error)

        run(go())


def test_weight_limit_is_enforced_and_the_limiter_follows_the_server() -> None:
    with small_sim() as sim:
        async def go() -> None:
            limiter = RequestLimiter(weight_per_minute=100_000, headroom=1.0)  # a client that trusts too much
            async with BinanceRest(sim.rest_url, limiter=limiter) as rest:
                await rest.exchange_info()
                assert limiter.state().used_weight_1m >= 1
                with pytest.raises(RateLimitError) as err:
                    for _ in range(300):
                        await rest.depth("BTCUSDT", limit=1000)  # weight 20 each: 2,400 is passed at the 121st
                assert err.value.code == -1003 and err.value.status == 429
                assert limiter.state().blocked_for_s > 0 and limiter.state().used_weight_1m > 2400

        run(go())


def test_sync_facade_against_the_simulator(sim20: SimExchange) -> None:
    with SyncBinanceRest(sim20.rest_url) as rest:
        assert rest.server_time() > 1_767_000_000_000
        assert rest.depth("XRPUSDT").bids
