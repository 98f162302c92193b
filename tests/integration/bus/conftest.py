"""Fixtures: one shared in-process member for the plain contract tests, clients per test.

Tests that need special member settings (credentials, no CP, short CP sessions, a
subprocess to kill) start their own. Map and object names carry a per-test suffix, so
the shared member never leaks state from one test into another.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from dolphin.bus.member import EmbeddedMember
from tests.integration.bus._support import KIND_IDS, KINDS, Driver


@pytest.fixture(scope="session")
def member() -> Iterator[EmbeddedMember]:
    with EmbeddedMember(session_ttl_s=300.0) as m:
        yield m


@pytest.fixture
def name() -> str:
    """A fresh object name per test."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=KINDS, ids=KIND_IDS)
def driver(request: pytest.FixtureRequest, member: EmbeddedMember) -> Iterator[Driver]:
    kind, smart = request.param
    d = Driver(kind, smart, member.address)
    try:
        yield d
    finally:
        d.shutdown()


@pytest.fixture
def observer(member: EmbeddedMember) -> Iterator[Driver]:
    """A second, independent client (threaded, smart) that listens."""
    d = Driver("threaded", True, member.address)
    try:
        yield d
    finally:
        d.shutdown()
