"""Real orders on a venue speaking Binance USD-M (the simulator exchange by default).

Each leg is a MARKET order carrying the trade's deterministic client order id: the venue
refuses a second order with the same id (the adapter then returns the existing one), and
`lookup` finds it after a crash, so a restarted trader never double-submits. Quantities
are rounded to the symbol's step size; entry and exit of a trade round the same number,
so the exit closes exactly what the entry opened.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from dolphin.execution.live.filters import floor_to_step
from dolphin.execution.orders import Fill, OrderIntent
from dolphin.market.errors import UnknownOrderError
from dolphin.market.rest import BinanceRest
from dolphin.market.urls import API_KEY_ENV, API_SECRET_ENV, REST_URL_ENV, endpoints

log = logging.getLogger("dolphin.execution")

TAKER_FEE = 0.0005  # Binance USD-M default taker rate; the venue's own commission is not in the order reply


class VenueExecutor:
    name = "sim"

    def __init__(self, rest: BinanceRest, venue: str = "sim") -> None:
        self.rest = rest
        self.name = venue
        self._steps: dict[str, tuple[float, float]] = {}

    @classmethod
    def from_environment(cls) -> VenueExecutor:
        """The market of `DOLPHIN_MARKET_REST_URL` with keys from the environment.

        Without keys the simulator's documented default key pair is used; real Binance
        without keys is refused by the venue itself.
        """
        from dolphin.market.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET

        base = os.environ.get(REST_URL_ENV) or endpoints("sim").rest_url
        key = os.environ.get(API_KEY_ENV) or DEFAULT_API_KEY
        secret = os.environ.get(API_SECRET_ENV) or DEFAULT_API_SECRET
        return cls(BinanceRest(base, key, secret))

    async def _step(self, symbol: str) -> tuple[float, float]:
        if not self._steps:
            info = await self.rest.exchange_info()
            self._steps = {s.symbol: (s.step_size, s.min_qty) for s in info.symbols}
        return self._steps.get(symbol, (0.0, 0.0))

    async def quantity(self, intent: OrderIntent) -> float:
        step, min_qty = await self._step(intent.symbol)
        return max(floor_to_step(intent.quantity, step), min_qty)

    async def _fill(self, intent: OrderIntent, order: Any) -> Fill:
        """The venue's fill: its average price, quantity and the commission it charged (its own trades)."""
        price = order.avg_price or intent.reference_price
        qty = order.executed_qty or order.orig_qty
        fee = await self._commission(intent.symbol, int(order.order_id))
        if fee is None:
            fee = price * qty * TAKER_FEE
            log.warning("%s: the venue reported no trades for order %s yet; fee estimated at the taker rate",
                        intent.client_order_id, order.order_id)
        return Fill(client_order_id=intent.client_order_id, price=price, quantity=qty, fee=fee,
                    venue=self.name, venue_order_id=str(order.order_id))

    async def _commission(self, symbol: str, order_id: int) -> float | None:
        """Σ commission (in the quote asset) of the order's fills; None when the venue lists none."""
        trades = await self.rest.user_trades(symbol, order_id=order_id)
        if not trades:
            return None
        return math.fsum(t.commission for t in trades)

    async def submit(self, intent: OrderIntent) -> Fill:
        order = await self.rest.new_order(intent.symbol, intent.side, "MARKET", await self.quantity(intent),
                                          reduce_only=intent.reduce_only,
                                          new_client_order_id=intent.client_order_id)
        return await self._fill(intent, order)

    async def lookup(self, intent: OrderIntent) -> Fill | None:
        try:
            order = await self.rest.query_order(intent.symbol, orig_client_order_id=intent.client_order_id)
        except UnknownOrderError:      # -2013: the venue never received it
            return None
        return await self._fill(intent, order)

    async def position(self, symbol: str) -> float:
        """Signed position amount on the venue (negative = short), for reconciliation."""
        for p in await self.rest.position_risk(symbol):
            if p.symbol == symbol:
                return p.position_amt
        return 0.0

    async def close(self) -> None:
        await self.rest.close()
