"""CP up/down bookkeeping: one log line per transition, retries after the pause."""

from __future__ import annotations

import logging

import pytest

from dolphin.bus.cp_health import CpHealth


def test_degrades_once_retries_later_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    health = CpHealth("posture", "the IMap", retry_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="dolphin.bus"):
        assert health.should_try()
        for _ in range(5):
            health.failed(RuntimeError("no CP"))
        assert health.degraded and not health.should_try()
        now[0] += 61
        assert health.should_try()
        health.succeeded()
        health.succeeded()
    assert not health.degraded and health.failures == 5
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "CP subsystem unavailable for posture" in messages[0] and "the IMap" in messages[0]
    assert "reachable again" in messages[1]
