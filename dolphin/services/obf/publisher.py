"""OBF bus writes off the hot loop: latest-value coalescing, a circuit breaker, the fallback file.

The bar worker `offer`s each bar's per-asset features (shards), the macro, and every
snapshot interval the universe and the daemon's status; `offer` only stores them (a
newer value of a key replaces an older one not yet pushed — the bus holds the latest
only) and wakes `run`, the one task that talks to the bus. So the hot loop never waits
on the bus, and a slow or absent bus costs memory for one value per key, not a queue.

A push writes the pending shard documents (one ``put_all`` per shard map, §15.2) and the
pending keys concurrently, bounded by ``timeout_s``; its requests are all sent before the
push first waits (`AsyncBus.put_all_now`). At a bar close the daemon calls `push_now`
right after offering the priority symbols and the macro: when the writer is idle with the
circuit closed, the push is sent from that frame, before the hot loop reads another
update, and the writer task only waits for its acknowledgement. A failed push is counted, its values
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
WRITTEN_MAPS = (*schema.SHARD_MAPS, schema.FEATURES)


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
        self.pushed_now = 0                       # pushes sent from the bar close's own frame (`push_now`)
        self._writer_idle = False                 # the writer task waits for something to push
        self._started: tuple[_Batch, asyncio.Future[Any]] | None = None   # a push `push_now` sent

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

    # ---------------------------------------------------------------- push now (the bar close)
    def push_now(self) -> bool:
        """Send what is pending now, from the caller's frame, if the writer is idle with the circuit closed and
        the bus's maps open; else leave it to the writer's next turn. True if the requests were sent.

        The bar close calls it right after offering the priority symbols' documents and the macro, so their
        requests are in the client's write buffer before the hot loop reads another frame: on a loop busy
        with a burst of depth updates each hop through a task would wait a loop iteration (docs/obf.md).
        """
        if self._started is not None or not self._writer_idle or not self._pending or not self.breaker.is_closed:
            return False
        bus = self._get_bus()
        if bus is None or not all(bus.is_open(name) for name in WRITTEN_MAPS):
            return False
        batch, self._pending = self._pending, _Batch()
        self._started = (batch, self._send(bus, batch))
        self.pushed_now += 1
        self._wake.set()
        return True

    # ---------------------------------------------------------------- the writer task
    async def run(self) -> None:
        while True:
            if self._started is None:
                if not self._pending:
                    self._idle.set()
                    self._wake.clear()
                    self._writer_idle = True
                    try:
                        await self._wake.wait()
                    finally:
                        self._writer_idle = False
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
            else:
                batch, sent = self._started
                ok = await self._settle(sent)
                self._started = None
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
        """The writer's own push: open the maps (once per client), send, wait for the acknowledgement."""
        bus = self._get_bus()
        if bus is None:
            return self._failed(ConnectionError("not connected to the bus"))
        try:
            async with asyncio.timeout(self.timeout_s):
                await bus.open_maps(WRITTEN_MAPS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the bus being away: counted, retried, then the breaker
            return self._failed(exc)
        return await self._settle(self._send(bus, batch))

    def _send(self, bus: Any, batch: _Batch) -> asyncio.Future[Any]:
        """Send a batch now: one ``put_all`` per shard map (§15.2) and one for the DOLPHIN_FEATURES keys, all
        requests written before this returns (`AsyncBus.put_all_now`); a future of all their acknowledgements
        (failed, not raised, if the client cannot send)."""
        by_shard: dict[str, dict[str, ObFeatures]] = {}
        for symbol, features in batch.features.items():
            by_shard.setdefault(shard_map_name(symbol), {})[symbol] = features
        sent = []
        try:
            sent += [bus.put_all_now(name, docs) for name, docs in by_shard.items()]
            if batch.keys:
                sent.append(bus.put_all_now(schema.FEATURES, batch.keys))
        except Exception as exc:  # noqa: BLE001 - e.g. the client shut down: a failed push like any other
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            sent.append(failed)
        return asyncio.gather(*sent)

    async def _settle(self, sent: asyncio.Future[Any]) -> bool:
        """Wait (at most ``timeout_s``) for a sent batch's acknowledgement; False if it failed."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await sent
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a timeout, the bus away: ingestion goes on (see _failed)
            return self._failed(exc)
        return True

    def _failed(self, exc: BaseException) -> bool:
        """A push that failed: logged once per failing spell (ingestion goes on; the values are retried)."""
        if not self._failing:
            self._failing = True
            self.log.warning("obf: bus push failed (%s: %s); ingestion goes on, the latest values are retried",
                             type(exc).__name__, exc or "timed out")
        return False

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
