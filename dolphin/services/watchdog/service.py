"""The watchdog loop: observe the bus each market bar, update the survival stack, publish the posture.

Time: the stack's bounded recovery (≤ 5 %/minute) and Cat4's recovery run on the
market's clock (`MarketClock`: the simulator's accelerated time, Binance's real one),
one evaluation per market bar, so hysteresis counts bars (2 down, 5 up) as the bible's
bar loop does; liveness (heartbeat and data ages) is measured on the wall clock.

Restarts reconcile: a new watchdog resumes from the posture and Rm on the bus, so a
crash cannot jump a HIBERNATE back to APEX — recovery stays bounded across the restart.
When the bus is unreachable, Cat1 reads 0 nodes and the posture falls to HIBERNATE at
once; it is published as soon as the bus answers again, and kept meanwhile in
``<home>/safety.json`` (where `dolphin risk status` finds it).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from dolphin.bus import SafetyState, schema
from dolphin.bus.codec import default_codec
from dolphin.bus.posture import AsyncPostureStore
from dolphin.config import load_config
from dolphin.config.services import ServicesConfig, WatchdogSection, load_services_config
from dolphin.engine.codes import posture_code
from dolphin.engine.survival import SurvivalStack
from dolphin.engine.survival_inputs import (
    DvolSpikeDetector,
    Observation,
    explain,
    median_quality,
    trader_heartbeat_age,
)
from dolphin.enums import McSource, Posture
from dolphin.market.clock import MarketClock
from dolphin.market.rest import BinanceRest
from dolphin.market.symbols import universe
from dolphin.market.urls import market_rest_url
from dolphin.services.runtime import ServiceContext
from dolphin.store.atomic import atomic_write_bytes

log = logging.getLogger("dolphin.watchdog")

PROBE_TIMEOUT_S = 2.0
FILE_EVERY_S = 5.0
REPUBLISH_S = 10.0       # the posture is written at least this often (MHS calls it stale after 30 s)
SAFETY_FILE = "safety.json"


def safety_file(home: Path) -> Path:
    """Where the watchdog keeps its latest state on disk (read by `dolphin risk status` without a bus)."""
    return home / SAFETY_FILE


@dataclass
class _Cached:
    """The last good value of one key: absent clears it, a rejected value keeps it."""

    payload: Any = None


class Watchdog:
    """One watchdog: reads through an asyncio client, scores with the engine's `SurvivalStack`."""

    def __init__(self, ctx: ServiceContext, settings: WatchdogSection, stack: SurvivalStack, *,
                 bar_ms: int, assets: Sequence[str], ob_sensor: bool, clock: MarketClock | None = None,
                 wall: Any = time.time, mc_no_history_neutral: bool = False) -> None:
        self.ctx = ctx
        self.settings = settings
        self.stack = stack
        self.bar_ms = bar_ms
        self.assets = list(assets)
        self.ob_sensor = ob_sensor
        self.mc_no_history_neutral = mc_no_history_neutral
        self.clock = clock
        self.wall = wall
        self.started_at = wall()
        self.detector = DvolSpikeDetector(settings.dvol_spike_points, settings.dvol_window_min)
        self.cache: dict[tuple[str, str], _Cached] = {}
        self.seq = 0
        self.last_market_ms: int | None = None
        self.last: SafetyState | None = None
        self.published = 0
        self.publish_failures = 0
        self._store: AsyncPostureStore | None = None
        self._store_client: Any = None
        self._publish_failing = False
        self._file_at = 0.0
        self._file_posture: str | None = None

    # ------------------------------------------------------------------ time
    def market_ms(self) -> int:
        now = self.clock.now_ms() if self.clock is not None else None
        return int(now) if now is not None else int(self.wall() * 1000)

    def bar_due(self) -> bool:
        """Whether `interval_bars` market bars have passed since the last evaluation."""
        if self.last is None or self.last_market_ms is None:
            return True
        return self.market_ms() - self.last_market_ms >= self.settings.interval_bars * self.bar_ms * 0.999

    def interval_s(self) -> float:
        """Wall seconds per evaluation: `interval_bars` market bars at the market's rate."""
        rate = self.clock.rate if self.clock is not None and self.clock.rate > 0 else 1.0
        return max(0.02, self.settings.interval_bars * self.bar_ms / 1000.0 / rate)

    # ------------------------------------------------------------------ reading the bus
    async def _probe(self) -> int:
        """Members the bus client sees, if the bus answers (0 when it does not)."""
        client = self.ctx.client
        if client is None or self.ctx.bus is None:
            return 0
        try:
            m = await self.ctx.bus.map(schema.HEARTBEAT)
            await asyncio.wait_for(m.size(), PROBE_TIMEOUT_S)
            return max(1, len(client.cluster_service.get_members()))
        except Exception:
            return 0

    async def _read(self, map_name: str, key: str) -> Any:
        slot = self.cache.setdefault((map_name, key), _Cached())
        try:
            m = await self.ctx.bus.map(map_name)
            raw = await asyncio.wait_for(m.get(key), PROBE_TIMEOUT_S)
        except Exception:
            return slot.payload                 # unreadable now: the last good value stands
        if raw is None:
            slot.payload = None
            return None
        payload = default_codec.accept(map_name, key, raw, source="watchdog")
        if payload is not None:
            slot.payload = payload              # a rejected value is counted by the codec; the last good stays
        return slot.payload

    def _cached(self, map_name: str, key: str) -> Any:
        slot = self.cache.get((map_name, key))
        return None if slot is None else slot.payload

    async def observe(self, market_ms: int) -> Observation:
        now = self.wall()
        nodes = await self._probe()
        keys = [(schema.HEARTBEAT, schema.heartbeat_key("trader")), (schema.FEATURES, schema.MC_FOREWARNER_LATEST),
                (schema.FEATURES, schema.EXF_LATEST), (schema.FEATURES, schema.OBF_UNIVERSE_LATEST),
                (schema.STATE_BLUE, schema.LATEST), (schema.FEATURES, schema.LATEST_EIGEN_SCAN)]
        if nodes:
            for map_name, key in keys:
                await self._read(map_name, key)
        beat, mc, exf, obf, state, scan = (self._cached(m, k) for m, k in keys)

        def age(payload: Any) -> float | None:
            if payload is None:
                return None
            ts = payload.published_s()
            return None if ts is None else max(0.0, now - ts)

        dvol = None if exf is None else exf.dvol_btc
        spike, since = self.detector.observe(market_ms / 60_000.0, dvol)
        quality: tuple[float, float] | None = None
        if self.ob_sensor:
            quality = (math.nan, math.nan) if obf is None else median_quality(
                {a: (h.depth_quality, h.fill_probability) for a, h in obf.assets.items()}, self.assets or None)
        return Observation(
            hz_nodes=nodes,
            heartbeat_age_s=trader_heartbeat_age(None if beat is None else beat.ts, None if beat is None else beat.phase,
                                                 now, self.started_at, self.settings.trader_grace_s),
            mc_status=self._mc_status(mc), data_ages_s=(age(mc), age(exf), age(scan)),
            ob_quality=quality, ob_age_s=age(obf), ob_stale_s=self.settings.ob_stale_s, dvol=dvol, dvol_spike=spike,
            minutes_since_spike=since, drawdown=None if state is None else float(state.drawdown))

    def _mc_status(self, mc: Any) -> str | None:
        """The MC status Cat2 reads: a no-history fallback counts as no report where configured neutral."""
        if mc is None:
            return None
        if self.mc_no_history_neutral and str(mc.source) == McSource.FALLBACK_NO_DATA:
            return None
        return str(mc.status)

    # ------------------------------------------------------------------ the stack
    def resume(self, state: SafetyState | None) -> None:
        """Continue from the posture on the bus: bounded recovery holds across a restart."""
        if state is None:
            return
        self.stack.rm = float(state.rm)
        self.stack.posture = posture_code(str(state.posture))
        self.last_market_ms = state.market_ms
        self.seq = state.seq or 0
        self.last = state
        log.info("resuming from the standing posture %s (Rm %.3f)", state.posture, state.rm)

    async def evaluate(self) -> SafetyState:
        market_ms = self.market_ms()
        obs = await self.observe(market_ms)
        dt_min = 0.0 if self.last_market_ms is None else max(0.0, (market_ms - self.last_market_ms) / 60_000.0)
        self.last_market_ms = market_ms
        reading = self.stack.update(obs.inputs(), dt_min)
        self.seq += 1
        state = SafetyState(posture=Posture(reading.posture), rm=round(reading.rm, 9),
                            sensors={k: round(v, 6) for k, v in reading.categories.items()},
                            timestamp=self.wall(), reason=explain(reading, self.stack, obs),
                            r_target=round(reading.r_target, 9), inputs=obs.readings(), mc_status=obs.inputs().mc_status,
                            seq=self.seq, market_ms=market_ms)
        if self.last is None or self.last.posture != state.posture:
            log.warning("posture %s → %s: %s", "—" if self.last is None else self.last.posture, state.posture,
                        state.reason)
        self.last = state
        return state

    # ------------------------------------------------------------------ publishing
    def _posture_store(self) -> AsyncPostureStore | None:
        client = self.ctx.client
        if client is None:
            return None
        if self._store is None or self._store_client is not client:
            self._store, self._store_client = AsyncPostureStore(client, source="watchdog"), client
        return self._store

    async def publish(self, state: SafetyState) -> None:
        store = self._posture_store()
        try:
            if store is None or self.ctx.bus is None:
                raise ConnectionError("no bus client")
            if state.inputs.get("hz_nodes", 1.0) < 1:   # this evaluation found no member: do not wait on one
                raise ConnectionError("no bus member reachable")
            await asyncio.wait_for(store.write(state), 10.0)
        except Exception as exc:
            self.publish_failures += 1
            if not self._publish_failing:
                log.error("posture %s not published (%s); kept in %s and retried every bar", state.posture, exc,
                          safety_file(self.ctx.home))
                self._publish_failing = True
        else:
            self.published += 1
            if self._publish_failing:
                log.info("posture published again (%s, Rm %.3f)", state.posture, state.rm)
                self._publish_failing = False
        await self._write_file(state)

    async def _write_file(self, state: SafetyState) -> None:
        now = self.wall()
        if state.posture == self._file_posture and now - self._file_at < FILE_EVERY_S:
            return
        self._file_at, self._file_posture = now, str(state.posture)
        try:
            await asyncio.to_thread(atomic_write_bytes, safety_file(self.ctx.home),
                                    msgspec.json.format(msgspec.json.encode(state), indent=2) + b"\n")
        except OSError as exc:
            log.debug("safety file not written: %s", exc)


def ob_sensor_on(scfg: ServicesConfig) -> bool:
    """Cat3 reads OBF when configured so, or (auto) when the family runs an OBF program."""
    mode = scfg.watchdog.ob_sensor
    if mode != "auto":
        return mode == "on"
    from dolphin.supervision.programs import enabled_programs

    return any(p.name.startswith("obf") for p in enabled_programs(scfg))


def mc_no_history_neutral(scfg: ServicesConfig) -> bool:
    """Whether a FALLBACK_NO_DATA MC report is read as no report (`watchdog.mc_no_history`)."""
    mode = scfg.watchdog.mc_no_history
    return mode == "neutral" or (mode == "auto" and scfg.market.source == "sim")


async def run(ctx: ServiceContext) -> None:
    scfg = load_services_config()
    params = load_config(scfg.trader.strategy).survival
    ctx.reconnect_bus = True           # reads and writes, no listeners: rebuild the client in place
    clock = MarketClock(BinanceRest(market_rest_url(scfg)))
    watchdog = Watchdog(ctx, scfg.watchdog, SurvivalStack(params), bar_ms=scfg.scanner.bar_seconds * 1000,
                        assets=universe(scfg.scanner.symbols), ob_sensor=ob_sensor_on(scfg), clock=clock,
                        mc_no_history_neutral=mc_no_history_neutral(scfg))
    ctx.log.info("Cat3 (OB) sensor %s; one evaluation per %g market bar(s)", "on" if watchdog.ob_sensor else
                 "off (no OBF in this family)", scfg.watchdog.interval_bars)
    if watchdog.mc_no_history_neutral:
        ctx.log.info("Cat2: an MC report without history (FALLBACK_NO_DATA) counts as no report "
                     "(watchdog.mc_no_history: %s)", scfg.watchdog.mc_no_history)
    try:
        if await ctx.connect_bus() is None:
            return
        await clock.sync()
        ctx.spawn(clock.run(ctx.stop), "market-clock")
        store = watchdog._posture_store()
        if store is not None:
            reading = await store.read()
            watchdog.resume(reading.state)
        ctx.phase = "running"
        while not ctx.stop.is_set():
            started = time.monotonic()
            last = watchdog.last
            if last is None or watchdog.bar_due():
                state = await watchdog.evaluate()
            else:   # a slow market (speed < 1): the standing posture is rewritten, not re-scored
                state = msgspec.structs.replace(last, timestamp=watchdog.wall())
            await watchdog.publish(state)
            wait = min(watchdog.interval_s(), REPUBLISH_S) - (time.monotonic() - started)
            if await ctx.sleep(max(0.0, wait)):
                break
    finally:
        await clock.rest.close()
