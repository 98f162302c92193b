"""The trader service in-process with its own home, bus and market clock (the trader's integration tests).

`Harness` runs `dolphin.services.trader.service.run` on a thread (as SIGTERM would stop it),
feeds scans through the official client, and reads what the trader publishes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from dolphin.bus import Bus, EmbeddedMember, schema
from dolphin.bus.client import connect
from dolphin.bus.scan_codec import payload_from_record
from dolphin.market.sim import SimExchange
from dolphin.market.synthetic import SyntheticConfig, SyntheticMarket
from dolphin.scan import ScanUpdater
from dolphin.scan.record import ScanRecord
from dolphin.services.runtime import ServiceContext
from dolphin.services.trader import service as trader_service
from dolphin.store.journal import Journal, ScanInput
from tests.integration.support import ServiceThread
from tests.support import wait_until

ARCHIVED = 400          # scans 1..400 are archived before the trader starts; the rest are fed live
TOTAL = 520


def synthetic_records(total: int = TOTAL, seed: int = 11, n_symbols: int = 50) -> list[ScanRecord]:
    """Scans of the seeded synthetic market, numbered from the first defined vel_div (1..total)."""
    market = SyntheticMarket(SyntheticConfig(seed=seed, n_symbols=n_symbols))
    bars = market.generate(0, 751 + total)
    updater = ScanUpdater(len(market.symbols))
    out: list[ScanRecord] = []
    for i in range(bars.n_bars):
        features = updater.update(bars.close[i])
        if np.isfinite(features.vel_div):
            out.append(ScanRecord.from_features(len(out) + 1, int(bars.ts_ms[i]) * 1_000_000, list(market.symbols),
                                                bars.close[i], features))
    return out[:total]


class TraderThread(ServiceThread):
    name = "trader"

    async def body(self, ctx: ServiceContext) -> None:
        await trader_service.run(ctx)


class Harness:
    """A trader service with its own home, bus and market clock; scans are put by the test."""

    def __init__(self, home: Path, member: EmbeddedMember, sim: SimExchange, records: list[ScanRecord],
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.home, self.records = home, records
        for var, value in {"DOLPHIN_HOME": str(home), "DOLPHIN_HZ_PORT": str(member.port), "DOLPHIN_HZ_MEMBERS": "",
                           "DOLPHIN_MARKET": "sim", "DOLPHIN_MARKET_REST_URL": sim.rest_url,
                           "DOLPHIN_MARKET_WS_URL": sim.ws_url, "DOLPHIN_TRADER_VENUE": "paper",
                           "DOLPHIN_TRADER_STALE_AFTER_S": "3600"}.items():
            monkeypatch.setenv(var, value)
        self.client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
        self.bus = Bus(self.client)
        self.raw = self.client.get_map(schema.FEATURES).blocking()
        self.bus.delete(schema.STATE_BLUE, schema.LATEST)
        self.thread: TraderThread | None = None

    def start(self) -> None:
        since = time.time()
        self.thread = TraderThread(self.home)
        self.thread.start_thread()
        wait_until(lambda: (s := self.state()) is not None and float(s.updated_at) >= since, 120,
                   what="the trader to listen")

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()

    def close(self) -> None:
        self.client.shutdown()

    def state(self) -> Any:
        return self.bus.get(schema.STATE_BLUE, schema.LATEST)

    def put(self, record: ScanRecord, **changes: Any) -> None:
        payload = payload_from_record(record, bridge_ts=time.time())
        if changes:
            payload = msgspec.structs.replace(payload, **changes)
        self.bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, payload)

    def put_raw(self, value: str) -> None:
        self.raw.put(schema.LATEST_EIGEN_SCAN, value)

    def step(self, record: ScanRecord) -> Any:
        """Put a real scan and wait until the trader has stepped it."""
        self.put(record)
        return wait_until(lambda: (s := self.state()) is not None and s.last_scan_number == record.scan_number
                          and s, 60, what=f"the trader to step scan {record.scan_number}")

    def rejected(self) -> dict[str, int]:
        s = self.state()
        return dict(s.rejected_scans) if s is not None else {}

    def journaled(self, scan_number: int) -> list[ScanInput]:
        return [r for r in Journal(self.home / "journal" / "blue.jsonl").iter_records()
                if isinstance(r, ScanInput) and r.scan_number == scan_number]
