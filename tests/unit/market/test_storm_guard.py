"""`ConnectStormGuard`: at most N connection attempts in any sliding minute, a storm logged once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dolphin.market.storm_guard import ConnectStormGuard
from tests.support import ManualClock


def test_the_cap_holds_the_attempt_past_it_until_the_oldest_is_a_minute_old() -> None:
    clock = ManualClock(1_000.0)
    guard = ConnectStormGuard(3, clock=clock)
    for _ in range(3):
        assert guard.check() is None
        guard.record()
        clock.t += 5.0
    wait = guard.check()                      # 3 attempts at 1000, 1005, 1010; now 1015
    assert wait is not None and wait.seconds == 45.0 and wait.attempts == 3 and wait.first
    assert "3 connection attempts within a minute" in wait.describe() and "storm guard" in wait.describe()
    again = guard.check()
    assert again is not None and not again.first and guard.waits == 2          # logged once per storm
    clock.t += wait.seconds                 # the caller slept the wait
    guard.record()
    assert guard.check() is not None          # 1005, 1010, 1060: still three in the minute
    clock.t = 1_070.0
    assert guard.check() is None and not guard.in_storm   # 1005 and 1010 aged out: the storm is over


@given(st.integers(1, 8), st.lists(st.floats(0.0, 30.0), min_size=1, max_size=60))
def test_no_minute_ever_holds_more_attempts_than_the_cap(cap: int, gaps: list[float]) -> None:
    """Whatever the caller's pace, obeying the guard keeps every 60 s window at ≤ cap attempts."""
    clock = ManualClock(1_000.0)
    guard = ConnectStormGuard(cap, clock=clock)
    attempts: list[float] = []
    for gap in gaps:
        clock.t += gap
        wait = guard.check()
        if wait is not None:
            clock.t += wait.seconds
        guard.record()
        attempts.append(clock.t)
    for i, start in enumerate(attempts):
        assert sum(1 for t in attempts[i:] if t - start < 60.0 - 1e-6) <= cap     # (float sums of the waits)
