"""Typed reads and writes of schema keys: the everyday bus API of a service.

`Bus` wraps a threaded client and `AsyncBus` an asyncio client. Writes encode through
the schema (a payload of the wrong type for a key is a programming error and raises);
reads validate at the edge (a bad value is a counted, logged rejection and reads as
None), so a service loop never dies on what another process wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from dolphin.bus.codec import BusCodec, default_codec


class Bus:
    """Schema-typed access to the maps of a threaded client."""

    def __init__(self, client: Any, *, codec: BusCodec | None = None, source: str = "bus reader") -> None:
        self.client = client
        self.codec = codec if codec is not None else default_codec
        self._source = source
        self._maps: dict[str, Any] = {}

    def map(self, name: str) -> Any:
        """The blocking map proxy (cached)."""
        m = self._maps.get(name)
        if m is None:
            m = self._maps[name] = self.client.get_map(name).blocking()
        return m

    def put(self, map_name: str, key: str, payload: Any, *, ttl_s: float | None = None) -> None:
        self.map(map_name).set(key, self.codec.encode(map_name, key, payload), ttl=ttl_s)

    def get(self, map_name: str, key: str) -> Any | None:
        raw = self.map(map_name).get(key)
        return None if raw is None else self.codec.accept(map_name, key, raw, source=self._source)

    def delete(self, map_name: str, key: str) -> None:
        self.map(map_name).delete(key)


class AsyncBus:
    """Schema-typed access to the maps of an asyncio client."""

    def __init__(self, client: Any, *, codec: BusCodec | None = None, source: str = "bus reader") -> None:
        self.client = client
        self.codec = codec if codec is not None else default_codec
        self._source = source
        self._maps: dict[str, Any] = {}
        self._writers: dict[str, Any] = {}        # map name → its EagerMapWriter (put_all_now)

    async def map(self, name: str) -> Any:
        m = self._maps.get(name)
        if m is None:
            m = self._maps[name] = await self.client.get_map(name)
        return m

    async def put(self, map_name: str, key: str, payload: Any, *, ttl_s: float | None = None) -> None:
        await (await self.map(map_name)).set(key, self.codec.encode(map_name, key, payload), ttl=ttl_s)

    async def open_maps(self, names: Iterable[str]) -> None:
        """Open (and cache) the proxies of ``names``, so `put_all_now` can write them."""
        for name in names:
            await self.map(name)

    def is_open(self, name: str) -> bool:
        return name in self._maps

    def put_all_now(self, map_name: str, payloads: Mapping[str, Any]) -> asyncio.Future[Any]:
        """Encode ``payloads`` (key → payload of ``map_name``) and send them now, before returning
        (`dolphin.bus.eager_writes`): a future of their acknowledgement. The map must be open
        (`open_maps`): a writer on a hot loop opens its maps once, off the hot path."""
        writer = self._writers.get(map_name)
        if writer is None:
            from dolphin.bus.eager_writes import EagerMapWriter

            writer = self._writers[map_name] = EagerMapWriter(self._maps[map_name])
        encode = self.codec.encode
        return writer.put_all({key: encode(map_name, key, p) for key, p in payloads.items()})

    async def get(self, map_name: str, key: str) -> Any | None:
        raw = await (await self.map(map_name)).get(key)
        return None if raw is None else self.codec.accept(map_name, key, raw, source=self._source)

    async def delete(self, map_name: str, key: str) -> None:
        await (await self.map(map_name)).delete(key)
