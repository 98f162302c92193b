"""The executor interface the trader talks to, and the paper executor.

Executors are idempotent by client order id: `submit` of an id the venue already has
returns that order's fill instead of placing a second one; `lookup` finds an earlier
submission after a crash.
"""

from __future__ import annotations

from typing import Protocol

from dolphin.execution.orders import Fill, OrderIntent


class Executor(Protocol):
    name: str

    async def submit(self, intent: OrderIntent) -> Fill: ...

    async def lookup(self, intent: OrderIntent) -> Fill | None: ...

    async def close(self) -> None: ...


class PaperExecutor:
    """Fills at the engine's own price and fee model — the backtest's fill, by construction.

    The engine's price for an entry is the bar's close, for an exit the close with the
    §7.4 slippage; its fee is the §8.1 blend. Filling there keeps a paper session
    trade-for-trade identical to `dolphin backtest` on the same scans.
    """

    name = "paper"

    def __init__(self) -> None:
        self._fills: dict[str, Fill] = {}

    async def submit(self, intent: OrderIntent) -> Fill:
        existing = self._fills.get(intent.client_order_id)
        if existing is not None:
            return existing
        fill = Fill(client_order_id=intent.client_order_id, price=intent.reference_price, quantity=intent.quantity,
                    fee=intent.engine_fee, venue=self.name)
        self._fills[intent.client_order_id] = fill
        return fill

    async def lookup(self, intent: OrderIntent) -> Fill | None:
        return self._fills.get(intent.client_order_id)

    def remember(self, fill: Fill) -> None:
        """Fills recovered from the journal, so a replayed step reuses them."""
        self._fills[fill.client_order_id] = fill

    async def close(self) -> None:
        return None
