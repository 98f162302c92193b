"""The circuit breaker's state machine (bible §15.6, §20.1) on a hand clock."""

from __future__ import annotations

import pytest

from dolphin.enums import CircuitState
from dolphin.services.obf.breaker import CircuitBreaker
from tests.support import ManualClock

pytestmark = [pytest.mark.degradation]


def test_five_failures_open_then_a_probe_after_the_backoff_decides() -> None:
    clock = ManualClock()
    b = CircuitBreaker(5, backoff_s=1.0, backoff_max_s=4.0, clock=clock)
    for _ in range(4):
        assert b.allow() and b.record_failure() is CircuitState.CLOSED
    b.record_success()                                            # a success resets the run of failures
    for _ in range(4):
        b.record_failure()
    assert b.state is CircuitState.CLOSED
    assert b.record_failure() is CircuitState.OPEN and b.opens == 1 and b.failures == 9
    assert not b.allow() and b.seconds_until_retry() == pytest.approx(1.0)
    clock.t += 1.0
    assert b.allow() and b.state is CircuitState.HALF_OPEN and b.probes == 1
    assert b.record_failure() is CircuitState.OPEN                # a failed probe: open again, back-off doubled
    assert b.seconds_until_retry() == pytest.approx(2.0)
    clock.t += 2.0
    assert b.allow() and b.record_failure() is CircuitState.OPEN and b.seconds_until_retry() == pytest.approx(4.0)
    clock.t += 4.0
    assert b.allow() and b.record_failure() is CircuitState.OPEN and b.seconds_until_retry() == pytest.approx(4.0)
    clock.t += 4.0
    assert b.allow()
    assert b.record_success() is CircuitState.HALF_OPEN           # the state it closed from
    assert b.state is CircuitState.CLOSED and b.backoff_s == 1.0 and b.opens == 1
    for _ in range(4):
        b.record_failure()
    assert b.state is CircuitState.CLOSED                         # five more needed to open again


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0)
    with pytest.raises(ValueError):
        CircuitBreaker(5, backoff_s=2.0, backoff_max_s=1.0)
