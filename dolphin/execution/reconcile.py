"""Venue reconciliation: do the books and the venue hold the same positions? (ARCHITECTURE decision 8).

The trader's books are its journal; the venue is the truth. At start (and, for live
trading, continuously) the position the books expect in each symbol they touched is
compared with the venue's position amount. A difference is reported loudly — it is never
papered over by adopting either side silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from dolphin.enums import PositionSide
from dolphin.execution.orders import entry_intent
from dolphin.execution.trader import TraderCore
from dolphin.execution.venue import VenueExecutor

log = logging.getLogger("dolphin.trader")

RECENT_TRADES = 10
TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class PositionCheck:
    """One symbol: the books' expected signed amount against the venue's."""

    symbol: str
    expected: float
    venue: float

    @property
    def agrees(self) -> bool:
        return abs(self.venue - self.expected) <= TOLERANCE * max(1.0, abs(self.expected))


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    checks: list[PositionCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.agrees for c in self.checks)

    @property
    def mismatches(self) -> list[PositionCheck]:
        return [c for c in self.checks if not c.agrees]


async def reconcile_positions(core: TraderCore) -> ReconcileReport | None:
    """Compare the books with the venue in the open position's symbol and the recent trades' symbols.

    None when the executor has no venue (paper). Each mismatch is logged as an error; the
    result is also kept in `core.stats.reconcile_ok`.
    """
    executor = core.executor
    if not isinstance(executor, VenueExecutor):
        return None
    pos = core.engine.open_position
    symbols = {pos.asset} if pos else set()
    symbols |= {t.asset for t in core.trades[-RECENT_TRADES:]}
    checks: list[PositionCheck] = []
    for symbol in sorted(symbols):
        expected = 0.0
        if pos is not None and pos.asset == symbol:
            qty = await executor.quantity(entry_intent(core.book_id, pos))
            expected = PositionSide(pos.side).sign * qty
        checks.append(PositionCheck(symbol, expected, await executor.position(symbol)))
    report = ReconcileReport(checks)
    for c in report.mismatches:
        log.error("RECONCILE: %s books %+g, venue %+g — positions differ", c.symbol, c.expected, c.venue)
    if report.ok:
        log.info("reconciled with the venue: positions agree (%s)", ", ".join(sorted(symbols)) or "flat")
    core.stats.reconcile_ok = report.ok
    return report


__all__ = ["PositionCheck", "ReconcileReport", "reconcile_positions"]
