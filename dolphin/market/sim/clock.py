"""The simulator's one clock: ``sim_time = sim_start + (wall − wall_start) × speed``.

Every timestamp the simulator hands out — ``/fapi/v1/time``, kline open/close times,
event times of every WebSocket message, funding times, order times — comes from this
clock, so REST and streams always agree. Elapsed wall time is measured on the monotonic
clock, so an NTP step on the host cannot make simulated time jump or run backwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Simulated milliseconds since the epoch, running ``speed`` times faster than the wall."""

    def __init__(self, start_ms: int, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.start_ms = int(start_ms)
        self.speed = float(speed)
        self._mono = monotonic
        self._mono_start = monotonic()

    def now_ms(self) -> int:
        """Current simulated time in ms UTC."""
        return self.start_ms + int((self._mono() - self._mono_start) * 1000.0 * self.speed)

    def wall_seconds_until(self, sim_ms: int) -> float:
        """Wall seconds until the clock reaches ``sim_ms`` (≤ 0 if already past)."""
        return (sim_ms - self.now_ms()) / (1000.0 * self.speed)

    def sim_ms_of_wall_span(self, wall_ms: float) -> float:
        """How much simulated time passes in ``wall_ms`` of wall time."""
        return wall_ms * self.speed
