"""Replaying real klines: the simulator serves the file's bars, closes exact at every bar boundary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dolphin.market.rest import BinanceRest
from dolphin.market.sim import SimConfig, SimExchange

from .conftest import run

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
FILE = DATA / "binance_spot_1m_2021-04-06_2021-04-19.parquet"

pytestmark = pytest.mark.skipif(not FILE.is_file(), reason=f"real kline data not present at {DATA}")


@pytest.fixture(scope="module")
def replay() -> Iterator[SimExchange]:
    with SimExchange(SimConfig(port=0, source=str(FILE), symbols=("BTCUSDT", "ETHUSDT", "DOGEUSDT"))) as sim:
        yield sim


def test_replayed_closes_equal_the_file_at_every_bar(replay: SimExchange) -> None:
    from dolphin.store.klines import read_klines

    table = read_klines(FILE)
    sym = table.column("symbol").to_numpy(zero_copy_only=False)
    ts = table.column("ts").to_numpy()
    cols = {name: table.column(name).to_numpy() for name in ("open", "high", "low", "close", "volume")}

    async def go() -> None:
        async with BinanceRest(replay.rest_url) as rest:
            now = await rest.server_time()
            assert now >= int(ts.min()) + 86_400_000  # a day of history before the start
            for symbol in ("BTCUSDT", "ETHUSDT", "DOGEUSDT"):
                rows = await rest.klines_range(symbol, "1m", int(ts.min()), closed_only=True)
                assert len(rows) >= 1440
                mask = sym == symbol
                by_ts = {int(t): int(i) for t, i in zip(ts[mask], np.flatnonzero(mask))}
                for k in rows:
                    i = by_ts[k.open_time]
                    assert (k.open, k.high, k.low, k.close) == (cols["open"][i], cols["high"][i], cols["low"][i],
                                                                cols["close"][i])
                    assert k.volume == pytest.approx(cols["volume"][i], rel=1e-12, abs=1e-9)
                five = await rest.klines(symbol, "5m", start_ms=int(ts.min()), limit=50)
                for k in five:
                    last = by_ts[k.open_time + 4 * 60_000]
                    assert k.close == cols["close"][last]

    run(go())


def test_replay_serves_books_and_trades_around_the_real_price(replay: SimExchange) -> None:
    async def go() -> None:
        async with BinanceRest(replay.rest_url) as rest:
            book = await rest.depth("BTCUSDT")
            last = (await rest.klines("BTCUSDT", "1m", limit=1))[0]
            assert book.bids[0][0] < book.asks[0][0]
            assert abs(book.bids[0][0] / last.close - 1) < 0.01
            info = await rest.exchange_info()
            assert [s.symbol for s in info.symbols] == ["BTCUSDT", "ETHUSDT", "DOGEUSDT"]
            assert info.symbol("BTCUSDT").tick_size == 0.01  # type: ignore[union-attr]
            with pytest.raises(Exception, match="-1120"):
                await rest.klines("BTCUSDT", "5s")  # finer than the file's 1 m bars

    run(go())
