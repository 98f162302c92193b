"""The ExF loop: poll each factor when it is due, keep the last good value, publish `exf_latest`.

Each factor is polled by its own task and keeps its own state: the last good value and
when it was fetched (wall clock), its consecutive failures and when to try next. A failed
fetch is retried with exponential backoff (2, 4, 8 … s, never later than its next regular
poll: a source down at start-up is not waited on for a whole poll interval) and is logged
once per failure streak with its cause; the recovery is logged once too.

`exf_latest` is written when a factor's value or staleness changes and at least every
`publish_s`, so its ``_pushed_at`` tells MHS the daemon is alive even when the factors
stand still; the payload's `ages`, `stale` and `errors` say how old each factor is and
which sources are failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dolphin.bus import ExfLatest, schema
from dolphin.bus.payloads import EXF_FACTORS
from dolphin.config.services import ExfSection, ServicesConfig, load_services_config
from dolphin.market.clock import MarketClock
from dolphin.market.external import DeribitRest, FearGreedRest, exf_urls
from dolphin.market.rest import BinanceRest
from dolphin.services.exf.sources import ExfSources
from dolphin.services.runtime import ServiceContext

log = logging.getLogger("dolphin.exf")

MIN_SLEEP_S = 0.05
RETRY_BASE_S = 2.0      # a failed fetch is retried after 2, 4, 8 … s, never later than its next regular poll


@dataclass
class FactorState:
    """One factor's last good value and its source's health."""

    name: str
    poll_s: float
    value: float | None = None
    ok_at: float | None = None          # wall time of the last good fetch
    failures: int = 0                   # consecutive
    total_failures: int = 0
    fetches: int = 0
    next_at: float = 0.0
    error: str | None = None

    def age(self, now: float) -> float | None:
        return None if self.ok_at is None else max(0.0, now - self.ok_at)

    def stale(self, now: float, stale_polls: float) -> bool:
        age = self.age(now)
        return age is None or age > stale_polls * self.poll_s

    def succeeded(self, value: float, now: float) -> bool:
        """Record a good fetch; True when the value changed."""
        changed = value != self.value
        if self.failures:
            log.info("exf: %s is back after %d failed fetch(es): %.6g", self.name, self.failures, value)
        self.value, self.ok_at, self.failures, self.error = value, now, 0, None
        self.fetches += 1
        self.next_at = now + self.poll_s
        return changed

    def failed(self, error: str, now: float, max_backoff_s: float) -> None:
        """Record a failure: back off, and say so once per streak (with the value kept and its age)."""
        self.failures += 1
        self.total_failures += 1
        self.error = error
        wait = min(max_backoff_s, self.poll_s, RETRY_BASE_S * 2 ** (self.failures - 1))
        self.next_at = now + wait
        if self.failures == 1:
            kept = ("no value yet" if self.value is None
                    else f"keeping the last value {self.value:.6g} ({self.age(now) or 0:.0f} s old)")
            log.warning("exf: %s fetch failed (%s); %s; retrying with backoff (next in %.1f s)", self.name, error,
                        kept, wait)


@dataclass
class ExfState:
    """Every factor's state, and the payload they make."""

    settings: ExfSection
    factors: dict[str, FactorState] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: ExfSection) -> ExfState:
        polls = {"fng": settings.fng_poll_s}
        return cls(settings, {name: FactorState(name, polls.get(name, settings.poll_s)) for name in EXF_FACTORS})

    def stale_names(self, now: float) -> list[str]:
        return [f.name for f in self.factors.values() if f.stale(now, self.settings.stale_polls)]

    def payload(self, now: float) -> ExfLatest:
        f = self.factors
        ages = {n: round(a, 3) for n, s in f.items() if (a := s.age(now)) is not None}
        errors = {n: f"{s.failures} failed fetch(es): {s.error}" for n, s in f.items() if s.failures and s.error}
        return ExfLatest(pushed_at=now, funding_btc=f["funding_btc"].value, dvol_btc=f["dvol_btc"].value,
                         fng=f["fng"].value, taker=f["taker"].value, ages=ages, stale=self.stale_names(now),
                         errors=errors)


Fetch = Callable[[], Awaitable[float]]


class ExfPoller:
    """Polls each factor on its own task (a slow or failing source never delays another) and publishes.

    `fetchers` and `publish` are the service's wiring; `sleep(seconds)` returns True when the
    service stops.
    """

    def __init__(self, settings: ExfSection, fetchers: dict[str, Fetch],
                 publish: Callable[[ExfLatest], Awaitable[None]], clock: Callable[[], float] = time.time) -> None:
        self.state = ExfState.of(settings)
        self.fetchers = fetchers
        self.publish = publish
        self.clock = clock
        self.published = 0
        self.publish_failures = 0
        self._changed = asyncio.Event()
        self._last_publish = 0.0
        self._last_stale: list[str] | None = None
        self._publish_failing = False

    async def _fetch(self, state: FactorState) -> None:
        try:
            value = await self.fetchers[state.name]()
        except asyncio.CancelledError:
            raise
        except Exception as exc:   # any source failure: counted, logged once per streak, last value kept
            state.failed(f"{type(exc).__name__}: {exc}", self.clock(), self.state.settings.max_backoff_s)
            return
        if state.succeeded(value, self.clock()) or state.fetches == 1:
            self._changed.set()

    async def factor_loop(self, state: FactorState, sleep: Callable[[float], Awaitable[bool]]) -> None:
        """Fetch one factor whenever it is due, until stopped."""
        while True:
            wait = state.next_at - self.clock()
            if wait > 0 and await sleep(wait):
                return
            await self._fetch(state)

    def _next_wake(self, now: float) -> float:
        """Seconds until the payload is due or a factor turns stale (whichever is first)."""
        limit = self.state.settings.stale_polls
        due = [self._last_publish + self.state.settings.publish_s]
        for f in self.state.factors.values():
            if f.ok_at is not None and not f.stale(now, limit):
                due.append(f.ok_at + limit * f.poll_s + 1e-3)
        return max(MIN_SLEEP_S, min(due) - now)

    async def publish_loop(self, stopped: Callable[[], bool]) -> None:
        """Write `exf_latest` when a value or the stale list changes, and every `publish_s` regardless."""
        while not stopped():
            now = self.clock()
            stale = self.state.stale_names(now)
            changed = self._changed.is_set()
            if changed or stale != self._last_stale or now - self._last_publish >= self.state.settings.publish_s:
                self._changed.clear()
                await self._publish(now)
                self._last_stale = stale
            try:
                await asyncio.wait_for(self._changed.wait(), self._next_wake(self.clock()))
            except TimeoutError:
                pass

    async def _publish(self, now: float) -> None:
        try:
            await self.publish(self.state.payload(now))
        except Exception as exc:   # the bus may be down: the next wake tries again
            self.publish_failures += 1
            if not self._publish_failing:
                log.warning("exf: exf_latest not written (%s); retrying", exc)
                self._publish_failing = True
            self._last_publish = now - self.state.settings.publish_s + 1.0   # retry within a second
            return
        if self._publish_failing:
            log.info("exf: exf_latest written again")
            self._publish_failing = False
        self.published += 1
        self._last_publish = now


def make_sources(scfg: ServicesConfig) -> tuple[ExfSources, MarketClock]:
    binance_url, deribit_url, fng_url = exf_urls(scfg)
    binance = BinanceRest(binance_url)
    clock = MarketClock(binance)
    return ExfSources(binance, DeribitRest(deribit_url), FearGreedRest(fng_url), clock, scfg.exf.symbol), clock


async def run(ctx: ServiceContext) -> None:
    scfg = load_services_config()
    ctx.reconnect_bus = True          # a writer without listeners: rebuild the client in place
    sources, clock = make_sources(scfg)
    binance_url, deribit_url, fng_url = exf_urls(scfg)
    ctx.log.info("sources: Binance %s (funding, taker %s), Deribit %s (DVOL), Fear & Greed %s", binance_url,
                 scfg.exf.symbol, deribit_url, fng_url)
    try:
        if await ctx.connect_bus() is None:
            return
        await clock.sync()
        ctx.spawn(clock.run(ctx.stop), "market-clock")

        async def publish(payload: ExfLatest) -> None:
            if ctx.bus is None:
                raise ConnectionError("no bus client")
            await ctx.bus.put(schema.FEATURES, schema.EXF_LATEST, payload)

        poller = ExfPoller(scfg.exf, sources.fetchers(), publish)
        for state in poller.state.factors.values():
            ctx.spawn(poller.factor_loop(state, ctx.sleep), f"poll {state.name}")
        ctx.phase = "running"
        publisher = asyncio.ensure_future(poller.publish_loop(ctx.stop.is_set))
        try:
            await ctx.stop.wait()
        finally:
            publisher.cancel()
            try:
                await publisher
            except asyncio.CancelledError:
                pass
    finally:
        await sources.close()
