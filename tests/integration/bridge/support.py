"""Helpers for the bridge tests: an external scanner that drops files, an in-process bridge, a bus listener."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from dolphin.scan.record import WINDOW_COLUMNS, ScanRecord, iso_from_ns, regime_signal
from dolphin.services.bridge import BridgeOptions, BridgeStats, run_bridge
from dolphin.services.runtime import ServiceContext
from dolphin.store.arrow_scans import encode_scan, scan_path
from tests.integration.support import ServiceThread
from tests.support import wait_until

T0_NS = 1_775_390_400_000_000_000  # 2026-04-05 12:00:00 UTC, market time
STEP_NS = 5_000_000_000


def make_record(n: int, *, at_ns: int | None = None, vel_div: float = -0.03, btc: float = 70_000.0) -> ScanRecord:
    """A scan as an external scanner would write it (w50 − w750 = vel_div)."""
    ts = T0_NS + n * STEP_NS if at_ns is None else at_ns
    stats = {c: 0.4 for c in WINDOW_COLUMNS}
    stats["w750_velocity"] = 0.001
    stats["w50_velocity"] = vel_div + 0.001 if not math.isnan(vel_div) else math.nan
    stats["w300_acceleration"] = math.nan
    return ScanRecord(scan_number=n, timestamp_ns=ts, timestamp=iso_from_ns(ts), **stats, vel_div=vel_div,
                      regime_signal=regime_signal(vel_div), instability_composite=0.4, n_assets=3,
                      assets=("BTCUSDT", "ETHUSDT", "SOLUSDT"), prices=(btc, 3_500.0, None),
                      loadings={"50": (0.6, 0.5, None)})


@dataclass
class ExternalScanner:
    """Drops files the way a scanner on another host does: written aside, then renamed into place.

    Each drop gets a strictly later mtime than the previous one (never earlier than the
    wall clock), so the order the bridge sees is the order of the test; `advance`
    moves the writer's clock forward, as if time had passed between two drops.
    """

    root: Path  # the arrow_scans directory
    staging: Path
    _last_ns: int = 0

    def advance(self, seconds: float) -> None:
        self._last_ns = max(time.time_ns(), self._last_ns) + int(seconds * 1e9)

    def _place(self, data: bytes, target: Path) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.staging / target.name
        tmp.write_bytes(data)
        self._last_ns = max(time.time_ns(), self._last_ns + 2_000_000)
        os.utime(tmp, ns=(self._last_ns, self._last_ns))
        os.replace(tmp, target)
        return target

    def drop(self, record: ScanRecord) -> Path:
        return self._place(encode_scan(record), scan_path(self.root, record))

    def drop_bytes(self, record: ScanRecord, data: bytes) -> Path:
        """A file named for `record` holding `data` (garbage, a truncated file, a foreign schema)."""
        return self._place(data, scan_path(self.root, record))


class BridgeThread(ServiceThread):
    """The bridge service body in-process (its heartbeat quickened), stopped like SIGTERM would."""

    name = "bridge"

    def __init__(self, home: Path, options: BridgeOptions, *, heartbeat_s: float = 0.2) -> None:
        super().__init__(home)
        self.options = options
        self.heartbeat_s = heartbeat_s
        self.stats = BridgeStats()

    async def body(self, ctx: ServiceContext) -> None:
        ctx.spawn(ctx.heartbeat_forever(self.heartbeat_s), "heartbeat")
        await run_bridge(ctx, self.options, stats=self.stats)

    def start(self) -> BridgeThread:
        self.start_thread()
        wait_until(lambda: self.ctx is not None and self.ctx.phase.startswith("watching") or self.error, 60.0,
                   what="the bridge to watch")
        assert self.error is None, self.error
        return self
