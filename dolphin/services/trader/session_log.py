"""Per-session audit files (bible §8.4): ``settings_<ts>.json`` and ``trades_<ts>.csv``.

Independent of the journal on purpose: the journal is the trader's books (replayable),
these are what an operator or auditor opens in a spreadsheet. Every execution event is a
CSV row, flushed as it happens.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from dolphin.execution.orders import Fill, OrderIntent
from dolphin.store.atomic import atomic_write_bytes

FILL_COLUMNS = ("market_time", "scan_number", "trade_id", "leg", "symbol", "side", "quantity", "price", "fee",
                "notional", "engine_price", "client_order_id", "venue", "venue_order_id", "pnl", "exit_reason")


class SessionLog:
    def __init__(self, directory: Path, settings: dict[str, Any], now: datetime | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%d_%H%M%S")
        self.settings_path = directory / f"settings_{stamp}.json"
        self.trades_path = directory / f"trades_{stamp}.csv"
        atomic_write_bytes(self.settings_path, msgspec.json.format(msgspec.json.encode(settings), indent=2) + b"\n")
        self._fh = open(self.trades_path, "a", newline="")
        self._csv = csv.writer(self._fh, lineterminator="\n")
        if self._fh.tell() == 0:
            self._csv.writerow(FILL_COLUMNS)
            self._fh.flush()

    def fill(self, scan_number: int, intent: OrderIntent, fill: Fill, pnl: float | None = None,
             exit_reason: str = "") -> None:
        when = datetime.fromtimestamp(intent.ts_ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        self._csv.writerow([when, scan_number, intent.trade_id, intent.leg, intent.symbol, intent.side,
                            repr(fill.quantity), repr(fill.price), repr(fill.fee), repr(intent.notional),
                            repr(intent.reference_price), fill.client_order_id, fill.venue, fill.venue_order_id or "",
                            "" if pnl is None else repr(pnl), exit_reason])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
