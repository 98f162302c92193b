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


def test_an_anchored_clock_is_the_wall_clock_at_speed_1() -> None:
    from dolphin.market.sim.clock import ClockState, MarketIdentity

    hand = HandClock()
    clock = SimClock(1_000_000, 1.0, monotonic=hand, anchor_wall_ms=990_000, wall=lambda: 1_000.0)
    assert clock.now_ms() == 1_010_000  # 10 s of wall since the anchor
    hand.t += 1.5
    assert clock.now_ms() == 1_011_500
    state = ClockState(version=1, identity=MarketIdentity("synthetic", 7, 5, None), anchor_sim_ms=5_000,
                       anchor_wall_ms=1_000, speed=60.0)
    assert state.sim_at(2_000) == 65_000


def test_the_clock_anchor_survives_and_a_live_market_keeps_its_place(tmp_path: Path) -> None:
    import pytest

    from dolphin.market.errors import SimStateError
    from dolphin.market.sim.app import Simulator
    from dolphin.market.sim.clock import ClockStore

    cfg = SimConfig(symbols=5, state_dir=tmp_path / "s")
    first = Simulator(cfg)
    src = make_source(cfg)
    anchor = first._anchor(src)
    assert anchor.origin_ms == src.first_ms and anchor.anchor_sim_ms == anchor.anchor_wall_ms  # live: sim = wall
    assert src.default_start_ms() == anchor.anchor_sim_ms
    ClockStore(cfg.state_dir).save(anchor)
    again = Simulator(cfg)
    src2 = make_source(cfg)
    assert again._anchor(src2) == anchor and again.resumed and src2.first_ms == src.first_ms
    faster = Simulator(SimConfig(symbols=5, state_dir=tmp_path / "s", speed=10.0))
    moved = faster._anchor(make_source(cfg))
    assert moved.speed == 10.0 and moved.origin_ms == anchor.origin_ms and moved.anchor_sim_ms >= anchor.anchor_sim_ms
    other = Simulator(SimConfig(symbols=5, state_dir=tmp_path / "s", seed=8))  # another market: a new clock
    other._anchor(make_source(SimConfig(symbols=5, seed=8)))
    assert not other.resumed
    (tmp_path / "s" / "clock.json").write_text("{oops")
    with pytest.raises(SimStateError):
        ClockStore(cfg.state_dir).load()
