"""One accelerated 50-symbol simulator for the module's tests; a fresh embedded member per test (port 0)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dolphin.bus.member import EmbeddedMember
from dolphin.market.sim import SimConfig, SimExchange
from tests.integration.scanner._support import BusWatch

SPEED = 60.0


@pytest.fixture(scope="module")
def sim() -> Iterator[SimExchange]:
    with SimExchange(SimConfig(port=0, symbols=50, speed=SPEED)) as s:
        yield s


@pytest.fixture
def member(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedMember]:
    with EmbeddedMember(port=0) as m:
        monkeypatch.delenv("DOLPHIN_HZ_MEMBERS", raising=False)
        monkeypatch.setenv("DOLPHIN_HZ_PORT", str(m.port))
        monkeypatch.setenv("DOLPHIN_HZ_CONNECT_TIMEOUT", "5")
        yield m


@pytest.fixture
def bus_watch(member: EmbeddedMember) -> Iterator[BusWatch]:
    watch = BusWatch(member.address)
    try:
        yield watch
    finally:
        watch.close()
