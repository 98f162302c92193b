"""The simulator's one clock, anchored to the wall, and its persistence across restarts.

``sim_time = anchor_sim + (wall − anchor_wall) × speed``. Every timestamp the simulator
hands out — ``/fapi/v1/time``, kline open/close times, event times of every WebSocket
message, funding times, order times — comes from this clock, so REST and streams always
agree. The wall is read once, when the clock is built; after that elapsed time is
measured on the monotonic clock, so an NTP step on the host cannot make simulated time
jump or run backwards.

The anchor is what a restart needs to carry on without rewinding: `ClockStore` keeps it
(with the identity of the market it belongs to) in the state directory, written once
when a market starts. Because simulated time is a function of wall time, a simulator
killed with ``kill -9`` and started again finds its market where it would have been had
it never stopped — nothing needs saving while it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from dolphin.market.errors import SimStateError
from dolphin.store.atomic import atomic_write_bytes

CLOCK_FILE = "clock.json"


class SimClock:
    """Simulated milliseconds since the epoch, running ``speed`` times faster than the wall.

    ``start_ms`` is the simulated time at the wall instant ``anchor_wall_ms`` (default:
    the moment the clock is built). A clock anchored at ``(T, T)`` with speed 1 *is*
    the wall clock.
    """

    def __init__(self, start_ms: int, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic, *,
                 anchor_wall_ms: int | None = None, wall: Callable[[], float] = time.time) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.start_ms = int(start_ms)
        self.speed = float(speed)
        self._mono = monotonic
        self._mono_start = monotonic()
        self._offset_ms = 0.0 if anchor_wall_ms is None else (wall() * 1000.0 - anchor_wall_ms) * self.speed

    def now_ms(self) -> int:
        """Current simulated time in ms UTC."""
        return self.start_ms + int(self._offset_ms + (self._mono() - self._mono_start) * 1000.0 * self.speed)

    def wall_seconds_until(self, sim_ms: int) -> float:
        """Wall seconds until the clock reaches ``sim_ms`` (≤ 0 if already past)."""
        return (sim_ms - self.now_ms()) / (1000.0 * self.speed)

    def sim_ms_of_wall_span(self, wall_ms: float) -> float:
        """How much simulated time passes in ``wall_ms`` of wall time."""
        return wall_ms * self.speed


class MarketIdentity(msgspec.Struct, frozen=True):
    """What makes a market the same market across restarts (listening address and speed do not)."""

    source: str
    seed: int
    bar_seconds: int
    start_ms: int | None


class ClockState(msgspec.Struct):
    """A market's clock anchor: simulated ``anchor_sim_ms`` at wall ``anchor_wall_ms``, at ``speed``.

    ``origin_ms`` is where a wall-clock ("live") synthetic market was placed in time (the
    open of its bar 0); None for markets whose time axis is fixed (replays, explicit starts).
    """

    version: int
    identity: MarketIdentity
    anchor_sim_ms: int
    anchor_wall_ms: int
    speed: float
    origin_ms: int | None = None

    def sim_at(self, wall_ms: int) -> int:
        """Simulated time at wall time ``wall_ms``."""
        return self.anchor_sim_ms + int((wall_ms - self.anchor_wall_ms) * self.speed)


class ClockStore:
    """The clock anchor of a state directory (None directory: nothing is kept)."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = None if state_dir is None else state_dir.expanduser().resolve() / CLOCK_FILE

    def load(self) -> ClockState | None:
        if self.path is None or not self.path.is_file():
            return None
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=ClockState)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SimStateError(f"{self.path}: cannot read the simulator clock state: {exc}") from None

    def save(self, state: ClockState) -> None:
        if self.path is not None:
            atomic_write_bytes(self.path, msgspec.json.encode(state))
