"""The trading posture (bible §11.5, §14.6): read CP first, IMap second, APEX last.

Read order:
1. CP AtomicReference ``DOLPHIN_SAFETY`` — linearizable;
2. IMap ``DOLPHIN_SAFETY["latest"]`` — eventually consistent fallback;
3. ``APEX`` when the bus has neither (the bible's non-fatal default).

Writes go to both, CP first. When CP fails (no CP subsystem, unsafe mode trouble,
timeout) reads and writes go on through the IMap; `CpHealth` says so once in the log
and retries CP every minute. A bad value in either place is a counted rejection and
the next source is used.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import msgspec

from dolphin.bus import schema
from dolphin.bus.codec import BusCodec, default_codec
from dolphin.bus.cp_health import CpHealth, wait_future
from dolphin.bus.payloads import SafetyState
from dolphin.enums import Posture

log = logging.getLogger("dolphin.bus")

DEFAULT_POSTURE = Posture.APEX
PostureSource = Literal["cp", "imap", "default"]


class PostureReading(msgspec.Struct, frozen=True):
    """A posture and where it came from; `state` is None only for the default."""

    posture: Posture
    source: PostureSource
    state: SafetyState | None = None


_DEFAULT = PostureReading(DEFAULT_POSTURE, "default", None)


class _PostureAccess:
    """What the threaded and the asyncio store share: settings, CP health, decoding a read."""

    def __init__(self, client: Any, *, codec: BusCodec | None = None, cp_timeout_s: float = 2.0,
                 cp_retry_s: float = 60.0, source: str = "posture") -> None:
        self._client = client
        self._codec = codec if codec is not None else default_codec
        self._cp_timeout_s = cp_timeout_s
        self._source = source
        self.cp = CpHealth("posture (DOLPHIN_SAFETY)", "the IMap DOLPHIN_SAFETY[latest]", retry_s=cp_retry_s)
        self._ref: Any = None
        self._map: Any = None

    def _reading(self, raw: Any, origin: PostureSource) -> PostureReading | None:
        """A valid stored state as a reading; None for absent or rejected (counted by the codec)."""
        if raw is None:
            return None
        where = "CP" if origin == "cp" else "IMap"
        state = self._codec.accept(schema.SAFETY, schema.LATEST, raw, source=f"{self._source} ({where})")
        return None if state is None else PostureReading(state.posture, origin, state)


class PostureStore(_PostureAccess):
    """Posture for threaded-client processes. Safe to share between threads."""

    def __init__(self, client: Any, **options: Any) -> None:
        super().__init__(client, **options)
        self._map = client.get_map(schema.SAFETY).blocking()

    def _cp_ref(self) -> Any:
        if self._ref is None:
            self._ref = self._client.cp_subsystem.get_atomic_reference(schema.SAFETY_REF)
        return self._ref

    def read(self) -> PostureReading:
        if self.cp.should_try():
            try:
                raw = wait_future(self._cp_ref().get(), self._cp_timeout_s)
                self.cp.succeeded()
                if (reading := self._reading(raw, "cp")) is not None:
                    return reading
            except Exception as exc:
                self.cp.failed(exc)
        try:
            raw = self._map.get(schema.LATEST)
        except Exception as exc:
            log.warning("posture: IMap %s unreadable (%s); defaulting to %s", schema.SAFETY, exc, DEFAULT_POSTURE)
            return _DEFAULT
        return self._reading(raw, "imap") or _DEFAULT

    def write(self, state: SafetyState) -> bool:
        """Write to CP and the IMap; returns whether CP took it. IMap failures raise."""
        text = self._codec.encode(schema.SAFETY, schema.LATEST, state)
        cp_ok = False
        if self.cp.should_try():
            try:
                wait_future(self._cp_ref().set(text), self._cp_timeout_s)
                self.cp.succeeded()
                cp_ok = True
            except Exception as exc:
                self.cp.failed(exc)
        self._map.set(schema.LATEST, text)
        return cp_ok


class AsyncPostureStore(_PostureAccess):
    """The same read/write contract for asyncio-client processes (e.g. the TUI)."""

    async def _cp_ref(self) -> Any:
        if self._ref is None:
            self._ref = await self._client.cp_subsystem.get_atomic_reference(schema.SAFETY_REF)
        return self._ref

    async def _imap(self) -> Any:
        if self._map is None:
            self._map = await self._client.get_map(schema.SAFETY)
        return self._map

    async def read(self) -> PostureReading:
        if self.cp.should_try():
            try:
                ref = await asyncio.wait_for(self._cp_ref(), self._cp_timeout_s)
                raw = await asyncio.wait_for(ref.get(), self._cp_timeout_s)
                self.cp.succeeded()
                if (reading := self._reading(raw, "cp")) is not None:
                    return reading
            except Exception as exc:
                self.cp.failed(exc)
        try:
            raw = await (await self._imap()).get(schema.LATEST)
        except Exception as exc:
            log.warning("posture: IMap %s unreadable (%s); defaulting to %s", schema.SAFETY, exc, DEFAULT_POSTURE)
            return _DEFAULT
        return self._reading(raw, "imap") or _DEFAULT

    async def write(self, state: SafetyState) -> bool:
        text = self._codec.encode(schema.SAFETY, schema.LATEST, state)
        cp_ok = False
        if self.cp.should_try():
            try:
                ref = await asyncio.wait_for(self._cp_ref(), self._cp_timeout_s)
                await asyncio.wait_for(ref.set(text), self._cp_timeout_s)
                self.cp.succeeded()
                cp_ok = True
            except Exception as exc:
                self.cp.failed(exc)
        await (await self._imap()).set(schema.LATEST, text)
        return cp_ok
