"""Fixtures: a real embedded member per test (port 0), the bridge pointed at it through DOLPHIN_HZ_PORT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dolphin.bus.member import EmbeddedMember
from tests.integration.bridge._support import BusWatch, ExternalScanner


@pytest.fixture
def member(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedMember]:
    with EmbeddedMember(port=0) as m:
        monkeypatch.delenv("DOLPHIN_HZ_MEMBERS", raising=False)
        monkeypatch.setenv("DOLPHIN_HZ_PORT", str(m.port))
        monkeypatch.setenv("DOLPHIN_HZ_CONNECT_TIMEOUT", "10")
        yield m


@pytest.fixture
def bus_watch(member: EmbeddedMember) -> Iterator[BusWatch]:
    watch = BusWatch(member.address)
    try:
        yield watch
    finally:
        watch.close()


@pytest.fixture
def scanner(runtime_root: Path, tmp_path: Path) -> ExternalScanner:
    return ExternalScanner(root=runtime_root / "arrow_scans", staging=tmp_path / "staging")
