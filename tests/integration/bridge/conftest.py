"""Fixtures: a real embedded member per test (port 0), the bridge pointed at it through DOLPHIN_HZ_PORT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dolphin.bus.member import EmbeddedMember
from tests.integration.bridge.support import ExternalScanner
from tests.integration.support import ScanWatch, member_for_services, scan_watch


@pytest.fixture
def member(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedMember]:
    yield from member_for_services(monkeypatch, connect_timeout_s=10)


@pytest.fixture
def bus_watch(member: EmbeddedMember) -> Iterator[ScanWatch]:
    yield from scan_watch(member, "bridge test listener")


@pytest.fixture
def scanner(runtime_root: Path, tmp_path: Path) -> ExternalScanner:
    # an external scanner's folder: never the family's own archive (the bridge refuses that one)
    return ExternalScanner(root=tmp_path / "external" / "arrow_scans", staging=tmp_path / "staging")
