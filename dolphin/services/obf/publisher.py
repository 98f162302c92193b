"""OBF bus writes off the hot loop: latest-value coalescing, a circuit breaker, the fallback file.

The bar worker `offer`s each bar's per-asset features (shards), the macro, and every
snapshot interval the universe and the daemon's status; `offer` only stores them (a
newer value of a key replaces an older one not yet pushed — the bus holds the latest
only) and wakes `run`, the one task that talks to the bus. So the hot loop never waits
on the bus, and a slow or absent bus costs memory for one value per key, not a queue.

A push writes the pending shard documents (one ``put_all`` per shard map, §15.2) and the
pending keys concurrently, bounded by ``timeout_s``. A failed push is counted, its values
go back to pending (unless something newer came), and it is retried shortly; after
`CircuitBreaker.threshold` failures in a row the circuit opens (bible §15.6): no push
until the back-off has passed, then one probe. While the circuit is not closed the
latest features, macro and universe go to the local fallback file
(``<home>/ob_cache/latest_ob_features.json``, `dolphin.store.ob_cache`) whenever they
change (at most every `fallback_every_s`), so consumers read it during the outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dolphin.bus import schema
from dolphin.bus.payloads import ObFeatures, ObfStatus, ObfUniverse, ObMacro
from dolphin.bus.shards import shard_map_name
from dolphin.enums import CircuitState
from dolphin.services.obf.breaker import CircuitBreaker
from dolphin.store.ob_cache import ObCacheFile, write_cache

RETRY_DELAY_S = 0.2           # between failed pushes while the circuit is still closed
CONNECT_GRACE_S = 5.0         # at start, no bus client yet is the first connect under way, not a failure


@dataclass
class _Batch:
    features: dict[str, ObFeatures] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)       # DOLPHIN_FEATURES key → payload
    bar_ms: int | None = None                                # the latest bar whose features are in it

    def __bool__(self) -> bool:
        return bool(self.features or self.keys)


class ObfPublisher:
    """The OBF daemon's only bus writer (see the module doc)."""

    def __init__(self, get_bus: Callable[[], Any], log: logging.Logger, *, home: Path, breaker: CircuitBreaker,
                 timeout_s: float = 2.0, fallback_every_s: float = 1.0, connect_grace_s: float = CONNECT_GRACE_S,
                 monotonic: Callable[[], float] = time.monotonic, clock: Callable[[], float] = time.time) -> None:
        self._get_bus = get_bus
        self.log = log
        self.home = home
        self.breaker = breaker
        self.timeout_s = timeout_s
        self.fallback_every_s = fallback_every_s
        self.connect_grace_s = connect_grace_s
        self._monotonic = monotonic
        self._created = monotonic()
        self._clock = clock
        self._pending = _Batch()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._acked = asyncio.Event()           # set after each push attempt (wait_pushed re-checks)
        self.acked_bar_ms: int | None = None     # the latest bar whose features a push got on the bus
        # the latest of everything, for the fallback file
        self.latest_features: dict[str, ObFeatures] = {}
        self.latest_macro: ObMacro | None = None
        self.latest_universe: ObfUniverse | None = None
        self.latest_bar_ms: int | None = None
        self._fallback_dirty = False
        self._fallback_last = -1e18
        # counters
        self.pushes = 0
        self.pushed_documents = 0
        self.coalesced = 0
        self.fallback_writes = 0
        self.fallback_failures = 0
        self._failing = False

    # ---------------------------------------------------------------- offered values (non-blocking)
    def offer_features(self, features: dict[str, ObFeatures], bar_ms: int | None = None) -> None:
        pending = self._pending.features
        before = len(pending)
        pending.update(features)
        self.coalesced += before + len(features) - len(pending)
        self.latest_features.update(features)
        if bar_ms is not None:
            if self.latest_bar_ms is None or bar_ms > self.latest_bar_ms:
                self.latest_bar_ms = bar_ms
            if self._pending.bar_ms is None or bar_ms > self._pending.bar_ms:
                self._pending.bar_ms = bar_ms
        self._changed()

    def offer_macro(self, macro: ObMacro) -> None:
        self._offer_key(schema.OB_MACRO_LATEST, macro)
        self.latest_macro = macro
        self._changed()

    def offer_universe(self, universe: ObfUniverse) -> None:
        self._offer_key(schema.OBF_UNIVERSE_LATEST, universe)
        self.latest_universe = universe
        self._changed()

    def offer_status(self, status: ObfStatus) -> None:
        self._offer_key(schema.OBF_STATUS, status)
        self._idle.clear()
        self._wake.set()

    def _offer_key(self, key: str, payload: Any) -> None:
        if key in self._pending.keys:
            self.coalesced += 1
        self._pending.keys[key] = payload

    def _changed(self) -> None:
        if not self.breaker.is_closed:
            self._fallback_dirty = True
        self._idle.clear()
        self._wake.set()

    @property
    def state(self) -> CircuitState:
        return self.breaker.state

    @property
    def push_failures(self) -> int:
        return self.breaker.failures

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending (tests, shutdown); False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
            return True
        except TimeoutError:
            return False

    async def wait_pushed(self, bar_ms: int, timeout: float) -> bool:
        """Wait until a push carrying features of ``bar_ms`` (or later) is on the bus; False on timeout, and
        at once while there is no bus client or the circuit is not closed (nothing to wait for).

        The bar worker waits here after the priority symbols' features are offered, so their push has
        the process (and the member) to itself before the rest of the universe is computed.
        """
        deadline = self._monotonic() + timeout
        while self.acked_bar_ms is None or self.acked_bar_ms < bar_ms:
            left = deadline - self._monotonic()
            if left <= 0 or not self.breaker.is_closed or self._get_bus() is None:
                return False
            self._acked.clear()
            try:
                async with asyncio.timeout(left):
                    await self._acked.wait()
            except TimeoutError:
                return False
        return True

    # ---------------------------------------------------------------- the writer task
    async def run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self.breaker.allow():
                await self._write_fallback()
                self._wake.clear()
                await self._wait_wake(min(self.breaker.seconds_until_retry(), self.fallback_every_s))
                continue
            if self._get_bus() is None and self._monotonic() - self._created < self.connect_grace_s:
                self._wake.clear()
                await self._wait_wake(RETRY_DELAY_S)   # the first connect is still under way
                continue
            batch, self._pending = self._pending, _Batch()
            ok = await self._push(batch)
            if ok and batch.bar_ms is not None and (self.acked_bar_ms is None or batch.bar_ms > self.acked_bar_ms):
                self.acked_bar_ms = batch.bar_ms
            self._acked.set()
            if ok:
                before = self.breaker.record_success()
                self.pushes += 1
                self.pushed_documents += len(batch.features) + len(batch.keys)
                if before is not CircuitState.CLOSED or self._failing:
                    self.log.info("obf: bus writes work again (circuit %s → closed after %d failed pushes, %d "
                                  "opening(s))", before, self.breaker.failures, self.breaker.opens)
                self._failing = False
                if before is not CircuitState.CLOSED:      # the file says the bus is back (its values stop here)
                    self._fallback_dirty = True
                    await self._write_fallback(force=True)
                continue
            self._restore(batch)
            was_closed = self.breaker.is_closed
            state = self.breaker.record_failure()
            if state is CircuitState.OPEN:
                if was_closed:
                    self.log.error("obf: %d bus pushes in a row failed: circuit open — features go to %s until a "
                                   "probe push works (next in %.1f s)", self.breaker.threshold,
                                   self.home / "ob_cache", self.breaker.seconds_until_retry())
                self._fallback_dirty = True
                await self._write_fallback(force=True)
            else:
                self._wake.clear()
                await self._wait_wake(RETRY_DELAY_S)

    async def _wait_wake(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _restore(self, batch: _Batch) -> None:
        """Put a failed batch back under what is pending now (newer values win)."""
        batch.features.update(self._pending.features)
        batch.keys.update(self._pending.keys)
        if self._pending.bar_ms is not None and (batch.bar_ms is None or self._pending.bar_ms > batch.bar_ms):
            batch.bar_ms = self._pending.bar_ms
        self._pending = batch

    async def _push(self, batch: _Batch) -> bool:
        bus = self._get_bus()
        try:
            if bus is None:
                raise ConnectionError("not connected to the bus")
            by_shard: dict[str, dict[str, str]] = {}
            codec = bus.codec
            for symbol, features in batch.features.items():
                name = shard_map_name(symbol)
                by_shard.setdefault(name, {})[symbol] = codec.encode(name, symbol, features)
            async with asyncio.timeout(self.timeout_s):
                writes = [(await bus.map(name)).put_all(entries) for name, entries in by_shard.items()]
                writes += [bus.put(schema.FEATURES, key, payload) for key, payload in batch.keys.items()]
                await asyncio.gather(*writes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the bus being away must not stop ingestion: counted, retried, then the breaker
            if not self._failing:
                self._failing = True
                self.log.warning("obf: bus push failed (%s: %s); ingestion goes on, the latest values are retried",
                                 type(exc).__name__, exc or "timed out")
            return False
        return True

    async def _write_fallback(self, force: bool = False) -> None:
        if not self._fallback_dirty:
            return
        now = self._monotonic()
        if not force and now - self._fallback_last < self.fallback_every_s:
            return
        self._fallback_dirty = False
        self._fallback_last = now
        cache = ObCacheFile(written_at=self._clock(), bar_ms=self.latest_bar_ms, circuit=str(self.breaker.state),
                            features=dict(self.latest_features), macro=self.latest_macro,
                            universe=self.latest_universe)
        try:
            await asyncio.to_thread(write_cache, self.home, cache)
        except OSError as exc:
            self.fallback_failures += 1
            self._fallback_dirty = True
            if self.fallback_failures == 1:
                self.log.error("obf: cannot write the fallback file under %s (%s); retrying", self.home / "ob_cache",
                               exc.strerror or exc)
            return
        self.fallback_writes += 1
        if self.fallback_writes == 1:
            self.log.warning("obf: fallback file %s written (the bus is away)", self.home / "ob_cache")


__all__ = ["RETRY_DELAY_S", "ObfPublisher"]
