"""Fixtures of the trader's integration tests: scans, a member, and a running trader (`Harness`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.bus import EmbeddedMember
from dolphin.market.sim import SimConfig, SimExchange
from dolphin.scan.record import ScanRecord
from dolphin.store.arrow_scans import write_scan
from tests.integration.trader.support import ARCHIVED, Harness, synthetic_records


@pytest.fixture(scope="module")
def records() -> list[ScanRecord]:
    return synthetic_records()


@pytest.fixture(scope="module")
def member():
    with EmbeddedMember(port=0) as m:
        yield m


@pytest.fixture
def harness(records, member, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    home.mkdir()
    for rec in records[:ARCHIVED]:
        write_scan(home, rec)
    start_ms = records[-1].timestamp_ns // 1_000_000 + 60_000   # every scan has closed on the market's clock
    with SimExchange(SimConfig(port=0, symbols=50, seed=7, start_ms=start_ms)) as sim:
        h = Harness(home, member, sim, records, monkeypatch)
        h.start()
        try:
            yield h
        finally:
            h.stop()
            h.close()
