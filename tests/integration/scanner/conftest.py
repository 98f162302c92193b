"""One accelerated 50-symbol simulator for the module's tests; a fresh embedded member per test (port 0)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dolphin.bus.member import EmbeddedMember
from dolphin.market.sim import SimConfig, SimExchange
from tests.integration.support import ScanWatch, member_for_services, scan_watch

# A bar every 250 ms of wall time. The simulator, the scanner, the member and the listener
# share this process: at 60× (a bar every 83 ms) a loaded machine could not keep the market
# in real time (REST timeouts, WebSocket keepalive timeouts) and the backfill never ended.
SPEED = 20.0


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
