"""Pre-trade risk checks: nothing adds exposure on the venue without passing them (pure, no I/O).

Entries are checked; exits (reduce-only) are never refused — refusing to reduce risk is
itself a risk — only paced by the throttle. A refusal names its check and its numbers,
and the trader journals it (`RejectRecord`) and voids the entry: nothing is silently
dropped.

* **max notional** of one order at the venue's mark;
* **leverage ceiling**: the venue's open notional plus this order, over the wallet balance;
* **max open positions** on the venue after the order (the engine holds one at a time: a
  position it does not know, a phantom, blocks new entries until reconciled);
* **price band**: the engine's price within ``price_band_pct`` of the venue's mark — a stale
  scan or a wrong symbol must not become an order;
* **unknown is never flat**: a symbol whose position the venue has not confirmed (all of
  them before the first reconciliation) or where books and venue disagree takes no entry;
* **order rate**: a token bucket, default 10 orders/s with a burst of 10. The engine's own
  peak is 4 orders per 5 s bar (an exit and an entry, each possibly a post-only order and
  its market remainder), so the throttle never touches legitimate flow, while a runaway
  loop is held to a third of Binance's 300 orders/10 s account limit and can never get
  the account's order rate banned (-1015, HTTP 418). Nautilus's default of 100/s suits
  market making, not a strategy that trades a few times an hour.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dolphin.execution.live.kinds import RiskCheck


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_notional_usdt: float
    leverage_ceiling: float
    max_open_positions: int
    price_band_pct: float

    @classmethod
    def from_settings(cls, live: Any) -> RiskLimits:
        return cls(max_notional_usdt=float(live.max_notional_usdt), leverage_ceiling=float(live.leverage_ceiling),
                   max_open_positions=int(live.max_open_positions), price_band_pct=float(live.price_band_pct))


@dataclass(frozen=True, slots=True)
class Exposure:
    """What the venue holds, as the books know it, when an entry is checked."""

    wallet: float | None                       # USDT wallet balance (None: never reported)
    notional: dict[str, float]                 # symbol → |open position notional| at the mark
    unknown: frozenset[str] | None             # symbols whose position is UNKNOWN; None: every symbol
    disputed: frozenset[str] = frozenset()     # symbols where books and venue disagree


def check_entry(symbol: str, qty: float, reference_price: float, mark: float | None, min_notional: float,
                limits: RiskLimits, exposure: Exposure) -> tuple[RiskCheck, str] | None:
    """None when the entry may go out; else the failed check and the operator's line."""
    if exposure.unknown is None:
        return RiskCheck.UNKNOWN_POSITION, "the venue's positions are UNKNOWN (not reconciled yet): no entries"
    if symbol in exposure.unknown:
        return RiskCheck.UNKNOWN_POSITION, f"{symbol}'s position is UNKNOWN (the venue did not report it)"
    if symbol in exposure.disputed:
        return RiskCheck.DISPUTED, f"books and venue disagree on {symbol}: reconcile it first"
    if mark is None or not mark > 0:
        return RiskCheck.NO_MARK, f"no mark price for {symbol} to check the order against"
    notional = qty * mark
    if qty <= 0 or notional < min_notional:
        return RiskCheck.MIN_NOTIONAL, (f"{qty:g} {symbol} is {notional:,.2f} USDT after rounding to the venue's "
                                        f"step, under its minimum of {min_notional:g}")
    band = abs(reference_price / mark - 1.0) * 100.0
    if band > limits.price_band_pct:
        return RiskCheck.PRICE_BAND, (f"the engine's price {reference_price:.6g} is {band:.2f} % from the mark "
                                      f"{mark:.6g} (band {limits.price_band_pct:g} %)")
    if notional > limits.max_notional_usdt:
        return RiskCheck.MAX_NOTIONAL, (f"{notional:,.2f} USDT is above the per-order maximum of "
                                        f"{limits.max_notional_usdt:,.2f}")
    held = {s for s, n in exposure.notional.items() if n > 0}
    after = len(held | {symbol})
    if after > limits.max_open_positions:
        return RiskCheck.MAX_OPEN_POSITIONS, (f"{after} positions after this order (venue holds "
                                              f"{', '.join(sorted(held))}; max {limits.max_open_positions})")
    if exposure.wallet is None or exposure.wallet <= 0:
        return RiskCheck.LEVERAGE_CEILING, "no wallet balance known to measure leverage against"
    leverage = (sum(exposure.notional.values()) + notional) / exposure.wallet
    if leverage > limits.leverage_ceiling:
        return RiskCheck.LEVERAGE_CEILING, (f"open notional would be {leverage:.2f}x the wallet "
                                            f"({exposure.wallet:,.2f} USDT; ceiling {limits.leverage_ceiling:g}x)")
    return None


class OrderThrottle:
    """Token bucket: ``rate`` orders per second, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = float(max(1, burst))
        self.clock = clock
        self._tokens = self.burst
        self._at = clock()
        self.refused = 0
        self.waited = 0

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def try_take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.refused += 1
        return False

    async def take(self) -> None:
        """Wait for a token (exits: paced, never refused)."""
        while not self.try_take():
            self.refused -= 1
            self.waited += 1
            await asyncio.sleep(max(0.001, (1.0 - self._tokens) / self.rate))


__all__ = ["Exposure", "OrderThrottle", "RiskLimits", "check_entry"]
