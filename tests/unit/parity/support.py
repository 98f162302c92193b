"""Hand-built trading sessions for the parity tests: a trader core on a journal, with injected faults.

The synthetic day (seed 7) trades, from scan 901 on: BNBUSDT 1404→1524 (MAX_HOLD), THETAUSDT
1536→1630, XRPUSDT 3267→3277 (FIXED_TP). A gap over the BNB exit delays it past 1536 and the
THETA entry is lost to the cascade; a gap or a pause over 3267 loses the XRP trade.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import msgspec

from dolphin.enums import KillLevel, OrderSide
from dolphin.execution.executor import PaperExecutor
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.orders import Fill, OrderIntent
from dolphin.execution.trader import TraderCore
from dolphin.store.journal import Journal
from tests.unit.trader.support import NOW, WARM, bars_of

ROWS = 3500           # scans 1..3500 of the synthetic day
STOP = 3400           # the session's last scan
STALE = NOW - 3600.0  # published an hour ago: a stale scan (histories only)


class VenueExecutor(PaperExecutor):
    """A venue whose fills drift from the engine's reference price (adverse bps) and charge their own fee rate."""

    name = "sim"

    def __init__(self, price_bps: float = 0.0, fee_rate: float = 0.0005) -> None:
        super().__init__()
        self.price_bps = price_bps
        self.fee_rate = fee_rate

    async def submit(self, intent: OrderIntent) -> Fill:
        existing = self._fills.get(intent.client_order_id)
        if existing is not None:
            return existing
        sign = 1.0 if intent.side == OrderSide.BUY else -1.0
        price = intent.reference_price * (1.0 + sign * self.price_bps / 1e4)
        fill = Fill(client_order_id=intent.client_order_id, price=price, quantity=intent.quantity,
                    fee=price * intent.quantity * self.fee_rate, venue=self.name)
        self._fills[intent.client_order_id] = fill
        return fill


def session(market, cfg, home: Path, *, skip: range | None = None, stale: range | None = None,
            kill: dict[int, KillLevel] | None = None, executor: PaperExecutor | None = None,
            stop: int = STOP) -> Path:
    """Drive a trader core over scans WARM+1..stop (warmed on the ones before) and return its journal.

    `skip`: scans never stepped (a restart the archive did not fill); `stale`: scans stepped stale;
    `kill`: the kill switch level set before the step of a scan.
    """
    path = home / "journal" / f"{cfg.name}.jsonl"
    venue = executor.name if executor is not None else "paper"
    switch = KillSwitch.under(home, "KILL")
    core = TraderCore(cfg, list(market.assets), Journal(path, fsync=False), executor or PaperExecutor(),
                      clock=lambda: NOW, kill_switch=switch, venue=venue)

    async def go() -> None:
        await core.start()
        core.warm(bars_of(market, 0, WARM, published=None))
        for bar in bars_of(market, WARM, stop):
            n = bar.scan_number
            if kill and n in kill:
                switch.engage(kill[n], reason="test", by="tester")
            if skip is not None and n in skip:
                continue
            if stale is not None and n in stale:
                bar = msgspec.structs.replace(bar, published_s=STALE)
            await core.process(bar)

    asyncio.run(go())
    core.journal.close()
    return path


def edit_journal(path: Path, change: Callable[[dict], dict | None]) -> None:
    """Rewrite each JSON line through `change` (None drops the line): a hand-made corruption of the books."""
    import json

    lines = []
    for line in path.read_text().splitlines():
        record = change(json.loads(line))
        if record is not None:
            lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
