"""Helpers of the trader's unit tests: bars from a scan table, a trader core on a journal, a driver."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from dolphin.execution.executor import PaperExecutor
from dolphin.execution.trader import ScanBar, TraderCore
from dolphin.store.journal import Journal

WARM = 900
NOW = 1_780_000_000.0


def bars_of(table, start: int, stop: int, published: float | None = NOW) -> list[ScanBar]:
    out = []
    for i in range(start, stop):
        prices = {a: float(p) for a, p in zip(table.assets, table.prices[i]) if math.isfinite(p) and p > 0}
        out.append(ScanBar(scan_number=int(table.scan_number[i]), ts_ms=int(table.ts[i]),
                           vel_div=float(table.vel_div[i]), v50=float(table.v50_lambda_max_velocity[i]),
                           v750=float(table.v750_lambda_max_velocity[i]), prices=prices, published_s=published))
    return out


class CountingExecutor(PaperExecutor):
    """The paper executor, counting real submissions (a restart must never submit twice)."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[str] = []

    async def submit(self, intent):
        if intent.client_order_id not in self._fills:
            self.submitted.append(intent.client_order_id)
        return await super().submit(intent)


def make_core(cfg, table, path: Path, executor=None, fsync: bool = False, **kw) -> TraderCore:
    """fsync off: these tests simulate crashes by cutting the file; real kill -9 is the integration test's."""
    return TraderCore(cfg, list(table.assets), Journal(path, fsync=fsync), executor or CountingExecutor(),
                      clock=lambda: NOW, **kw)


def run(coro):
    return asyncio.run(coro)


async def drive(core: TraderCore, bars: list[ScanBar], warm: list[ScanBar] | None = None, fresh: bool = True):
    recovered = await core.start()
    if fresh and not recovered and warm:
        core.warm(warm)
    for bar in bars:
        await core.process(bar)
    return core
