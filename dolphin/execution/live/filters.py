"""The venue's trading rules per symbol (``exchangeInfo``): step, tick, minimum quantity and notional.

An order the venue would refuse for its shape (off the step, too small) is caught here
before it leaves: a quantity is floored to the step (never rounded up: the book must not
hold more than the engine sized), and entry and exit of a trade floor the same number,
so an exit closes exactly what its entry opened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dolphin.market.payloads import ExchangeInfo


def floor_to_step(value: float, step: float) -> float:
    """``value`` floored to a multiple of ``step`` (with a 1e-9 step tolerance), printed to the step's decimals."""
    if step <= 0:
        return value
    out = math.floor(value / step + 1e-9) * step
    decimals = max(0, -int(math.floor(math.log10(step)))) if step < 1 else 0
    return round(out, decimals)


@dataclass(frozen=True, slots=True)
class SymbolFilter:
    symbol: str
    step: float
    min_qty: float
    tick: float
    min_notional: float

    def quantity(self, qty: float) -> float:
        """The order quantity for ``qty``: floored to the step (0 when below the minimum quantity)."""
        q = floor_to_step(qty, self.step)
        return q if q >= self.min_qty else 0.0

    def price(self, price: float) -> float:
        return floor_to_step(price, self.tick) if self.tick > 0 else price


def filters_from(info: ExchangeInfo) -> dict[str, SymbolFilter]:
    return {s.symbol: SymbolFilter(s.symbol, s.step_size, s.min_qty, s.tick_size, s.min_notional)
            for s in info.symbols}


__all__ = ["SymbolFilter", "filters_from", "floor_to_step"]
