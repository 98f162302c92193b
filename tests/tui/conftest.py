"""Fixtures for the TUI tests: a real embedded member per test, a writer client, a controllable clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rich.console import Console

from dolphin.bus import Bus, BusSettings, EmbeddedMember, connect


class FakeClock:
    """Wall time plus an offset the test advances (the codec still checks real time)."""

    def __init__(self, frozen: float | None = None) -> None:
        self.offset = 0.0
        self.frozen = frozen

    def __call__(self) -> float:
        return (self.frozen if self.frozen is not None else time.time()) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


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


def plain(renderable: Any, width: int = 60) -> str:
    """A panel body as plain text."""
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def panel_text(app: Any, panel_id: str, width: int = 60) -> str:
    panel = app.query_one(f"#{panel_id}")
    return plain(panel.body_widget.content, width)


async def wait_for(pilot: Any, predicate: Callable[[], Any], timeout: float = 15.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(step)
