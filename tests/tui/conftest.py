"""Fixtures for the TUI tests: a real embedded member per test, a writer client, a controllable clock.

Helpers the tests import (FakeClock, panel_text, the pilot's wait_for) are in support.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dolphin.bus import Bus, BusSettings, EmbeddedMember, connect
from tests.tui.support import FakeClock


@pytest.fixture
def member() -> Iterator[EmbeddedMember]:
    with EmbeddedMember() as m:
        yield m


@pytest.fixture
def settings(member: EmbeddedMember) -> BusSettings:
    return BusSettings(members=(member.address,), connect_timeout_s=10.0)


@pytest.fixture
def bus(settings: BusSettings) -> Iterator[Bus]:
    client = connect(settings, client_name="tui-test-writer")
    try:
        yield Bus(client)
    finally:
        client.shutdown()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
