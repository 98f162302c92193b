"""Shared by the scanner and bridge tests: a member per test, and a listener on the scan key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from dolphin.bus import Bus, BusSettings, EigenScan, ThreadQueue, connect, schema, subscribe
from dolphin.bus.member import EmbeddedMember
from tests.support import wait_until


def member_for_services(monkeypatch: pytest.MonkeyPatch, connect_timeout_s: float) -> Iterator[EmbeddedMember]:
    """An embedded member on a free port, and the environment a service uses to find it."""
    with EmbeddedMember(port=0) as m:
        monkeypatch.delenv("DOLPHIN_HZ_MEMBERS", raising=False)
        monkeypatch.setenv("DOLPHIN_HZ_PORT", str(m.port))
        monkeypatch.setenv("DOLPHIN_HZ_CONNECT_TIMEOUT", str(connect_timeout_s))
        yield m


@dataclass
class ScanWatch:
    """A separate threaded client listening to latest_eigen_scan: every write, in order."""

    address: str
    source: str = "test listener"
    client: Any = None
    queue: ThreadQueue = field(default_factory=ThreadQueue)
    scans: list[EigenScan] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = connect(BusSettings(members=(self.address,), connect_timeout_s=10.0))
        self.subscription = subscribe(self.client, schema.FEATURES, self.queue, key=schema.LATEST_EIGEN_SCAN,
                                      source=self.source)

    def numbers(self) -> list[int]:
        while self.queue.qsize():
            event = self.queue.get(timeout=1.0)
            if event.payload is not None:
                self.scans.append(event.payload)
        return [s.scan_number for s in self.scans]

    def wait_numbers(self, expected: list[int], timeout: float = 20.0) -> list[EigenScan]:
        wait_until(lambda: self.numbers() == expected or len(self.numbers()) > len(expected), timeout)
        assert self.numbers() == expected
        return self.scans

    def get(self, map_name: str, key: str) -> Any:
        return Bus(self.client).get(map_name, key)

    def close(self) -> None:
        self.subscription.close()
        self.client.shutdown()


def scan_watch(member: EmbeddedMember, source: str) -> Iterator[ScanWatch]:
    watch = ScanWatch(member.address, source)
    try:
        yield watch
    finally:
        watch.close()
