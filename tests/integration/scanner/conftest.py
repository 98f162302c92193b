"""One accelerated 50-symbol simulator for the module's tests; a fresh embedded member per test (port 0)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dolphin.bus.member import EmbeddedMember
from dolphin.market.sim import SimConfig, SimExchange
from tests.integration.support import ScanWatch, member_for_services, scan_watch

SPEED = 60.0


@pytest.fixture(scope="module")
def sim() -> Iterator[SimExchange]:
    with SimExchange(SimConfig(port=0, symbols=50, speed=SPEED)) as s:
        yield s


@pytest.fixture
def member(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedMember]:
    yield from member_for_services(monkeypatch, connect_timeout_s=5)


@pytest.fixture
def bus_watch(member: EmbeddedMember) -> Iterator[ScanWatch]:
    yield from scan_watch(member, "scanner test listener")
