"""The bridge when the bus fails: a failed push is counted and retried, the loop never dies."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from dolphin.services.bridge import Bridge, BridgeOptions
from tests.integration.bridge.support import ExternalScanner, make_record

pytestmark = [pytest.mark.degradation]


class FlakyBus:
    """An AsyncBus stand-in whose reads and first writes fail, as a bus that is restarting does."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.values: list[Any] = []

    async def get(self, map_name: str, key: str) -> Any:
        raise ConnectionError("member restarting")

    async def put(self, map_name: str, key: str, payload: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("member restarting")
        self.values.append(payload)


def test_a_failed_push_is_retried_and_superseded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scanner = ExternalScanner(root=tmp_path / "arrow_scans", staging=tmp_path / "staging")
    bus = FlakyBus(failures=3)
    bridge = Bridge(scanner.root, bus, logging.getLogger("dolphin.bridge"), BridgeOptions(poll_s=0.01))

    async def run() -> None:
        await bridge.start()  # the bus cannot be read: start anyway, push only what arrives
        scanner.drop(make_record(1))
        await bridge.poll_once()  # push fails (1)
        await bridge.poll_once()  # retry fails (2)
        scanner.drop(make_record(2))
        await bridge.poll_once()  # retry of 1 fails (3), then 2 goes through and supersedes it
        await bridge.poll_once()

    with caplog.at_level(logging.INFO, logger="dolphin.bridge"):
        asyncio.run(run())
    assert [p.scan_number for p in bus.values] == [2]
    assert bridge.stats.bus_errors == 3 and bridge.stats.pushed == 1
    assert "could not read" in caplog.text and "push of scan 1 failed" in caplog.text
    assert "bus writes work again" in caplog.text
