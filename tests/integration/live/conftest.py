"""Fixtures of the live trader's tests: the scans and one bus member per module."""

from __future__ import annotations

import pytest

from dolphin.bus import EmbeddedMember
from dolphin.scan.record import ScanRecord
from tests.integration.live.support import synthetic_records


@pytest.fixture(scope="module")
def records() -> list[ScanRecord]:
    return synthetic_records()


@pytest.fixture(scope="module")
def member():
    with EmbeddedMember(port=0) as m:
        yield m
