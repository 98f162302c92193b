"""Where each external factor comes from: one fetch per factor, returning a validated number.

A fetch raises on anything that is not a plausible value of its factor (transport
failure, error status, malformed answer, a number out of range); the service counts it
and keeps the last good value. The bounds are sanity limits of each quantity, not
trading thresholds (those are ACB's, `dolphin.engine.acb`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dolphin.market.clock import MarketClock
from dolphin.market.external import DeribitRest, FearGreedRest
from dolphin.market.rest import BinanceRest

#: sanity bounds of each factor's value (a value outside is a malformed answer)
BOUNDS: dict[str, tuple[float, float]] = {
    "funding_btc": (-0.05, 0.05),    # per 8 h; Binance caps funding far inside this
    "taker": (0.0, 100.0),           # buy/sell volume ratio
    "dvol_btc": (0.0, 1_000.0),      # annualised implied volatility, %
    "fng": (0.0, 100.0),
}


class BadValue(ValueError):
    """A source answered, but not with a plausible value of its factor."""


def checked(name: str, value: float) -> float:
    lo, hi = BOUNDS[name]
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise BadValue(f"{name}={value!r} is not a plausible value (expected {lo:g} … {hi:g})")
    return float(value)


@dataclass
class ExfSources:
    """The four fetchers over their clients; `clock` dates the DVOL window in market time."""

    binance: BinanceRest
    deribit: DeribitRest
    fng_api: FearGreedRest
    clock: MarketClock
    symbol: str = "BTCUSDT"

    def fetchers(self) -> dict[str, Callable[[], Awaitable[float]]]:
        return {"funding_btc": self.funding_btc, "taker": self.taker, "dvol_btc": self.dvol_btc, "fng": self.fng}

    async def funding_btc(self) -> float:
        """The current funding rate (``premiumIndex``); the last settled one if that endpoint fails."""
        try:
            return checked("funding_btc", (await self.binance.premium_index(self.symbol)).last_funding_rate)
        except BadValue:
            raise
        except Exception:
            rows = await self.binance.funding_rate(self.symbol, limit=1)
            if not rows:
                raise
            return checked("funding_btc", rows[-1].funding_rate)

    async def taker(self) -> float:
        """Taker buy/sell volume ratio of the last closed 5-minute period."""
        rows = await self.binance.taker_long_short_ratio(self.symbol, period="5m", limit=1)
        if not rows:
            raise BadValue("takerlongshortRatio returned no closed period")
        return checked("taker", rows[-1].buy_sell_ratio)

    async def dvol_btc(self) -> float:
        """DVOL now: the close of the newest one-minute candle on the market's clock."""
        now = self.clock.now_ms()
        candle = await self.deribit.latest_dvol("BTC", now if now is not None else int(time.time() * 1000))
        return checked("dvol_btc", candle.close)

    async def fng(self) -> float:
        return checked("fng", (await self.fng_api.latest()).value)

    async def close(self) -> None:
        await self.binance.close()
        await self.deribit.close()
        await self.fng_api.close()
