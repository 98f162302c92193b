"""The OB features a consumer sees, kept current by listeners (bible §15.4, §20.1).

`ObFeed` is a bus `EventSink` on the ten shard maps and on
``DOLPHIN_FEATURES["ob_macro_latest"]``. It discovers the assets from what the shards
hold (no static list, §15.4): at start it reads every shard's entries once, then
listeners keep each symbol's last few feature bars and the last few macro bars, each
stamped with the market time of its OB bar (`bar_ms`).

`at(close_ms)` answers what a step of the bar closing at `close_ms` may use: per symbol
the latest bar at or before that time and not older than `max_age_ms`, and the macro
likewise — never a bar from the step's future (the §20.1 per-timestamp rule), so a
lagging trader cannot read features the market had not produced yet.

`at_or_fallback` adds the bus-outage path (§15.6): when the bus's freshest usable bar
is more than `STALE_MS` behind the step's close (OBF's circuit is open, the listeners
hear nothing), it reads OBF's fallback file and uses it — with the same as-of rule — if
that gives a newer bar than the bus does; the bus wins whenever it answers.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dolphin.bus import schema
from dolphin.bus.listeners import BusEvent, subscribe_async
from dolphin.bus.payloads import ObFeatures, ObMacro

KEEP_BARS = 8
MAX_AGE_MS = 60_000
STALE_MS = 15_000
"""The bus is behind when its freshest usable bar is older than this at a step's close (three OB bars)."""


@dataclass(frozen=True, slots=True)
class ObView:
    """What a step may use: features by symbol, the macro (or None), and the newest bar time seen."""

    features: dict[str, ObFeatures]
    macro: ObMacro | None
    newest_bar_ms: int | None


def _pick(bars: Iterable[Any], close_ms: int, max_age_ms: int) -> Any | None:
    best = None
    for bar in bars:
        t = bar.bar_ms
        if t is not None and t <= close_ms and close_ms - t <= max_age_ms and (best is None or t > best.bar_ms):
            best = bar
    return best


def view_of(features: Mapping[str, ObFeatures], macro: ObMacro | None, close_ms: int, max_age_ms: int) -> ObView:
    """The view of one set of latest values (OBF's fallback file) for a step closing at ``close_ms``."""
    picked = {s: f for s, f in features.items() if _pick((f,), close_ms, max_age_ms) is not None}
    newest = max((f.bar_ms for f in features.values() if f.bar_ms is not None), default=None)
    return ObView(features=picked, macro=None if macro is None else _pick((macro,), close_ms, max_age_ms),
                  newest_bar_ms=newest)


def freshest(view: ObView) -> int | None:
    """The market time of the newest bar a view actually offers its step (features or macro)."""
    times = [f.bar_ms for f in view.features.values() if f.bar_ms is not None]
    if view.macro is not None:
        times.append(view.macro.bar_ms)
    return max(times, default=None)


class FallbackValues(Protocol):
    """What OBF's fallback file holds (`dolphin.store.ob_cache.ObFallback`)."""

    @property
    def features(self) -> dict[str, ObFeatures]: ...

    @property
    def macro(self) -> ObMacro | None: ...


class ObFeed:
    """Latest OB feature bars per symbol and macro bars (thread-safe; listeners write, steps read)."""

    def __init__(self, *, max_age_ms: int = MAX_AGE_MS) -> None:
        self.max_age_ms = max_age_ms
        self._lock = threading.Lock()
        self._assets: dict[str, deque[ObFeatures]] = {}
        self._macro: deque[ObMacro] = deque(maxlen=KEEP_BARS)
        self.events = 0

    # ------------------------------------------------------------ writing (listener threads)
    def note(self, symbol: str, features: ObFeatures) -> None:
        if features.bar_ms is None:
            return
        with self._lock:
            bars = self._assets.get(symbol)
            if bars is None:
                bars = self._assets[symbol] = deque(maxlen=KEEP_BARS)
            if not bars or features.bar_ms >= bars[-1].bar_ms:  # type: ignore[operator]
                bars.append(features)
            self.events += 1

    def note_macro(self, macro: ObMacro) -> None:
        with self._lock:
            if not self._macro or macro.bar_ms >= self._macro[-1].bar_ms:
                self._macro.append(macro)
            self.events += 1

    def deliver(self, event: BusEvent) -> None:
        payload = event.payload
        if isinstance(payload, ObFeatures) and schema.SYMBOL_RE.match(event.key):
            self.note(event.key, payload)
        elif isinstance(payload, ObMacro):
            self.note_macro(payload)

    # ------------------------------------------------------------ reading
    @property
    def symbols(self) -> list[str]:
        """The assets discovered so far (§15.4)."""
        with self._lock:
            return sorted(self._assets)

    def at(self, close_ms: int) -> ObView:
        with self._lock:
            features = {s: f for s, bars in self._assets.items()
                        if (f := _pick(bars, close_ms, self.max_age_ms)) is not None}
            macro = _pick(self._macro, close_ms, self.max_age_ms)
            newest = max((bars[-1].bar_ms for bars in self._assets.values() if bars and bars[-1].bar_ms is not None),
                         default=None)
        return ObView(features=features, macro=macro, newest_bar_ms=newest)

    def at_or_fallback(self, close_ms: int,
                       fallback: Callable[[], FallbackValues | None]) -> tuple[ObView, bool]:
        """The bus's view, or the fallback file's when the bus is behind and the file is newer (flag: fallback used).

        ``fallback`` reads the file (None when absent or invalid); it is called only while
        the bus is behind, so a healthy bus costs no file read.
        """
        view = self.at(close_ms)
        bus_latest = freshest(view)
        if bus_latest is not None and close_ms - bus_latest <= STALE_MS:
            return view, False
        values = fallback()
        if values is None:
            return view, False
        file_view = view_of(values.features, values.macro, close_ms, self.max_age_ms)
        file_latest = freshest(file_view)
        if file_latest is not None and (bus_latest is None or file_latest > bus_latest):
            return file_view, True
        return view, False

    # ------------------------------------------------------------ wiring (asyncio client)
    async def start(self, client: Any, bus: Any) -> None:
        """Load what the shards hold now, then follow them and the macro key."""
        for name in schema.SHARD_MAPS:
            await subscribe_async(client, name, self, kinds=frozenset({"ADDED", "UPDATED"}), source="ob feed")
        await subscribe_async(client, schema.FEATURES, self, key=schema.OB_MACRO_LATEST,
                              kinds=frozenset({"ADDED", "UPDATED"}), source="ob feed")
        for name in schema.SHARD_MAPS:
            m = await bus.map(name)
            for key in await m.key_set():
                if isinstance(key, str) and schema.SYMBOL_RE.match(key):
                    value = await bus.get(name, key)
                    if isinstance(value, ObFeatures):
                        self.note(key, value)
        macro = await bus.get(schema.FEATURES, schema.OB_MACRO_LATEST)
        if isinstance(macro, ObMacro):
            self.note_macro(macro)


__all__ = ["MAX_AGE_MS", "STALE_MS", "FallbackValues", "ObFeed", "ObView", "freshest", "view_of"]
