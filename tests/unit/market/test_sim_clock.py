"""The simulator clock — and the helpers the other simulator unit tests share (a hand-driven clock, small markets)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from dolphin.market.sim.account import AccountStore
from dolphin.market.sim.clock import SimClock
from dolphin.market.sim.config import SimConfig
from dolphin.market.sim.exchange import Exchange
from dolphin.market.sim.source import MarketSource, make_source

DAY_MS = 86_400_000


class HandClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance_ms(self, ms: float, speed: float = 1.0) -> None:
        self.t += ms / 1000.0 / speed


@lru_cache(maxsize=4)
def source(symbols: int = 10, seed: int = 7) -> MarketSource:
    return make_source(SimConfig(symbols=symbols, seed=seed))


def exchange(symbols: int = 10, seed: int = 7, state_dir: Path | None = None, start_offset_ms: int = DAY_MS,
             **overrides: object) -> tuple[Exchange, HandClock]:
    src = source(symbols, seed)
    hand = HandClock()
    clock = SimClock(src.first_ms + start_offset_ms, 1.0, monotonic=hand)
    cfg = SimConfig(symbols=symbols, seed=seed, state_dir=state_dir, **overrides)  # type: ignore[arg-type]
    return Exchange(cfg, src, clock, AccountStore(state_dir)), hand


def test_clock_runs_at_speed_from_its_start() -> None:
    hand = HandClock()
    clock = SimClock(1_767_657_600_000, 60.0, monotonic=hand)
    assert clock.now_ms() == 1_767_657_600_000
    hand.t += 2.0
    assert clock.now_ms() == 1_767_657_600_000 + 120_000
    assert clock.wall_seconds_until(1_767_657_600_000 + 180_000) == 1.0
    assert clock.sim_ms_of_wall_span(100) == 6000


def test_clock_refuses_a_non_positive_speed() -> None:
    import pytest

    with pytest.raises(ValueError):
        SimClock(0, 0.0)
