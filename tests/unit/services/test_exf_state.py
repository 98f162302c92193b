"""ExF's per-factor bookkeeping: last value kept with its age, backoff, stale list, one log per failure streak."""

from __future__ import annotations

import logging

import pytest

from dolphin.config.services import ExfSection
from dolphin.services.exf.service import ExfState

pytestmark = [pytest.mark.degradation]

T0 = 1_780_000_000.0


def test_a_failing_source_keeps_its_value_backs_off_and_turns_stale(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dolphin.exf")
    state = ExfState.of(ExfSection(poll_s=60.0, fng_poll_s=300.0, stale_polls=3.0, max_backoff_s=300.0))
    assert state.stale_names(T0) == ["funding_btc", "dvol_btc", "fng", "taker"]     # never fetched: stale
    for f in state.factors.values():
        assert f.succeeded(1.0 if f.name != "fng" else 40.0, T0)
    assert state.stale_names(T0 + 1) == []
    dvol = state.factors["dvol_btc"]
    waits = []
    for i in range(8):
        now = T0 + 10 + i
        dvol.failed("HTTPError: HTTP 500", now, 300.0)
        waits.append(dvol.next_at - now)
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]    # doubling, never later than the next poll
    assert dvol.total_failures == 8 and dvol.value == 1.0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "keeping the last value 1" in warnings[0]

    payload = state.payload(T0 + 100)
    assert payload.dvol_btc == 1.0 and payload.ages["dvol_btc"] == 100.0 and payload.stale == []
    assert payload.errors == {"dvol_btc": "8 failed fetch(es): HTTPError: HTTP 500"}
    later = state.payload(T0 + 181)                 # 3 polls of 60 s without a good fetch
    assert "dvol_btc" in later.stale and "fng" not in later.stale      # F&G polls every 300 s
    assert later.dvol_btc == 1.0                    # still the last good value, marked stale

    assert not dvol.succeeded(1.0, T0 + 200)        # back, unchanged value
    assert dvol.failures == 0 and dvol.error is None and state.payload(T0 + 200).errors == {}
    assert any("is back after 8 failed fetch(es)" in r.getMessage() for r in caplog.records)
    dvol.failed("ValueError: no data", T0 + 300, 300.0)
    assert dvol.next_at - (T0 + 300) == 2.0         # a new streak starts the backoff again
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 2
