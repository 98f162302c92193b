"""The market's own clock, for every consumer of market time (staleness, the future check).

Market time is the venue's: Binance's ``/fapi/v1/time``, or the simulator's clock, which
runs `speed` times faster than the wall and resumes where it stopped after a restart.
`MarketClock` samples the venue and extrapolates between samples at the market's rate.
The rate is the one source of truth for the simulator's speed: the simulator states it
(``/sim/v1/status``), Binance runs at 1. Nothing is taken from a config file, so a
program can never disagree with the market about how fast time passes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from dolphin.market.errors import MarketError
from dolphin.market.rest import BinanceRest

log = logging.getLogger("dolphin.market")

RESYNC_S = 10.0


class MarketClock:
    """`now_ms()` is the venue's time extrapolated from the last sample; None before the first."""

    def __init__(self, rest: BinanceRest, *, resync_s: float = RESYNC_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rest = rest
        self.resync_s = resync_s
        self._mono = monotonic
        self._server_ms: float | None = None
        self._local_s = 0.0
        self.rate = 1.0
        self.uncertainty_ms = 0.0
        self.failures = 0
        self._failing = False

    @property
    def synced(self) -> bool:
        return self._server_ms is not None

    def now_ms(self) -> int | None:
        if self._server_ms is None:
            return None
        return int(self._server_ms + (self._mono() - self._local_s) * 1000.0 * self.rate)

    async def sync(self) -> bool:
        """One sample of the venue's time (and, on the simulator, its speed); False when it is unreachable."""
        try:
            rate = await self.rest.venue_speed()
            sent = self._mono()
            server = await self.rest.server_time()
            received = self._mono()
        except (TimeoutError, MarketError, OSError) as exc:
            self.failures += 1
            if not self._failing:
                log.warning("market clock: %s unreachable (%s); market time is extrapolated meanwhile",
                            self.rest.base_url, exc)
                self._failing = True
            return False
        if self._failing:
            log.info("market clock: %s answers again", self.rest.base_url)
            self._failing = False
        self.rate = rate
        self._server_ms = float(server)
        self._local_s = (sent + received) / 2.0
        # the venue read its clock somewhere in [sent, received]: the estimate is good to half the round trip
        self.uncertainty_ms = (received - sent) / 2.0 * 1000.0 * rate
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Resync every `resync_s` of wall time until `stop` is set."""
        while not stop.is_set():
            await self.sync()
            try:
                await asyncio.wait_for(stop.wait(), self.resync_s)
            except TimeoutError:
                pass


__all__ = ["RESYNC_S", "MarketClock"]
