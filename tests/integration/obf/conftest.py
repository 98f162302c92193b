"""A fresh embedded member per test (the OBF tests stop it on purpose)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dolphin.bus.member import EmbeddedMember
from tests.integration.scan_bus import member_for_services


@pytest.fixture
def member(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedMember]:
    yield from member_for_services(monkeypatch, connect_timeout_s=5)
