"""How long numba spent compiling (or loading compiled code from its cache) while a clock was running.

Why: a stage timer that silently contains a compile lies about the stage. Numba holds
its global compiler lock for every compile and cache load and announces it as the event
``numba:compiler_lock``; summing the outermost of those events gives the compile time
inside any span, so the report can take it out of the engine's or a stage's seconds and
show it on its own line.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from numba.core import event

_KIND = "numba:compiler_lock"


class CompileClock(event.Listener):
    """Seconds numba held its compiler lock while installed (use as a context manager)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._seconds = 0.0

    @property
    def seconds(self) -> float:
        """Compile (and cache-load) seconds so far."""
        with self._lock:
            return self._seconds

    def on_start(self, ev: event.Event) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.started = time.perf_counter()
        self._local.depth = depth + 1

    def on_end(self, ev: event.Event) -> None:
        depth = getattr(self._local, "depth", 0) - 1
        self._local.depth = max(depth, 0)
        if depth == 0:
            elapsed = time.perf_counter() - self._local.started
            with self._lock:
                self._seconds += elapsed

    def __enter__(self) -> CompileClock:
        event.register(_KIND, self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        event.unregister(_KIND, self)
