"""Reconciliation of the live books with the venue: at start, every N seconds, after every reconnect.

**Unknown is never flat** (NautilusTrader: "a missing report does not mean flat"): until
the venue has reported its positions — before the first reconciliation, and whenever a
reconciliation cannot read them — every symbol's position is UNKNOWN and no entry goes
out (`risk.check_entry`). The books' expectation is the engine's open position, its size
the venue's own step-rounded quantity; the venue's is ``positionRisk`` (all symbols, so a
position opened behind the trader's back anywhere is seen) and ``openOrders``.

Mismatches, each alerted once while it stands (`AlertBook`) and blocking entries on its
symbol until books and venue agree again:

* **phantom position** — the venue holds a position the books do not;
* **side mismatch** — both hold one, on opposite sides;
* **size mismatch** — same side, sizes apart by more than half a step (or the venue flat
  while the books hold one);
* **orphan order** — an open order on the venue the books did not place (orders of ours
  the venue ended without being asked are alerted by the books as their events arrive).

Nothing is corrected automatically (the seed system's v1: silent repair can make a bad
situation worse); the per-kind policy may escalate to a halt instead of only alerting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dolphin.execution.live.alerts import AlertBook
from dolphin.execution.live.books import VenueBooks
from dolphin.execution.live.escalation import Escalator
from dolphin.execution.live.executor import LiveExecutor
from dolphin.execution.live.kinds import AlertKind
from dolphin.market.errors import BinanceAPIError, MarketError, UnknownOrderError
from dolphin.market.rest import BinanceRest

log = logging.getLogger("dolphin.live")


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: AlertKind
    symbol: str
    detail: str


def classify(expected: dict[str, float], venue: dict[str, float], steps: dict[str, float]) -> list[Mismatch]:
    """Books (signed amounts the engine expects) against the venue's, symbol by symbol (pure)."""
    out: list[Mismatch] = []
    for symbol in sorted(set(expected) | set(venue)):
        exp, ven = expected.get(symbol, 0.0), venue.get(symbol, 0.0)
        tol = max(steps.get(symbol, 0.0) / 2.0, 1e-12)
        if abs(exp - ven) <= tol:
            continue
        if abs(exp) <= tol:
            out.append(Mismatch(AlertKind.PHANTOM_POSITION, symbol,
                                f"the venue holds {ven:+g} {symbol}; the books hold nothing there"))
        elif abs(ven) <= tol:
            out.append(Mismatch(AlertKind.SIZE_MISMATCH, symbol,
                                f"the books hold {exp:+g} {symbol}; the venue is flat"))
        elif (exp > 0) != (ven > 0):
            out.append(Mismatch(AlertKind.SIDE_MISMATCH, symbol,
                                f"the books hold {exp:+g} {symbol}, the venue {ven:+g} (opposite sides)"))
        else:
            out.append(Mismatch(AlertKind.SIZE_MISMATCH, symbol,
                                f"the books hold {exp:+g} {symbol}, the venue {ven:+g}"))
    return out


@dataclass
class ReconcileState:
    runs: int = 0
    failures: int = 0
    in_a_row_failed: int = 0
    last_at: float | None = None
    last_ok: bool | None = None
    last_reason: str = ""
    last_detail: str = ""
    unknown_all: bool = True                       # no report yet (or the last one failed): every symbol UNKNOWN
    disputed: set[str] = field(default_factory=set)


class LiveReconciler:
    def __init__(self, rest: BinanceRest, books: VenueBooks, executor: LiveExecutor, alerts: AlertBook,
                 escalator: Escalator, expected: Callable[[], dict[str, float]]) -> None:
        self.rest = rest
        self.books = books
        self.executor = executor
        self.alerts = alerts
        self.escalator = escalator
        self.expected = expected
        self.state = ReconcileState()

    @property
    def unknown(self) -> frozenset[str] | None:
        """For the risk checks: None while every position is UNKNOWN, else the symbols that are."""
        return None if self.state.unknown_all else frozenset()

    async def run(self, reason: str) -> bool:
        """One reconciliation; True when the venue reported and the books agree with it."""
        st = self.state
        st.runs += 1
        st.last_at = time.time()
        st.last_reason = reason
        try:
            positions = await self.rest.position_risk()
            open_orders = await self.rest.open_orders()
            account = await self.rest.account()
        except MarketError as exc:
            return self._failed(f"the venue did not report its positions ({exc})")
        self.books.apply_positions(positions)
        self.books.apply_wallet(account.total_wallet_balance)
        if st.unknown_all:
            self.alerts.resolve(AlertKind.UNKNOWN_POSITION, "", "the venue reported its positions")
        st.unknown_all = False
        mismatches = classify(self.expected(), {s: a for s, a in self.books.positions.items() if a},
                              {s: f.step for s, f in self.executor.filters.items()})
        for track in self.books.unfinished():   # ours, still open in the books: did the venue end them?
            if track.open and track.client_order_id not in {o.client_order_id for o in open_orders}:
                try:
                    await self.executor.resync(track)
                except (UnknownOrderError, BinanceAPIError, MarketError) as exc:
                    log.warning("could not resync %s: %s", track.client_order_id, exc)
        foreign = [o for o in open_orders if not self.books.is_ours(o.client_order_id)]
        by_symbol: dict[str, list[str]] = {}
        for o in foreign:
            by_symbol.setdefault(o.symbol, []).append(o.client_order_id)
        for symbol, cids in by_symbol.items():
            mismatches.append(Mismatch(AlertKind.ORPHAN_ORDER, symbol,
                                       f"open order(s) on the venue the books did not place: {', '.join(sorted(cids))}"))
        self._report(mismatches)
        st.last_ok = not mismatches
        st.last_detail = "; ".join(m.detail for m in mismatches) or "books and venue agree"
        st.in_a_row_failed = 0
        self.escalator.reconciled(True)
        if mismatches:
            log.warning("reconciled (%s): %d mismatch(es)", reason, len(mismatches))
        else:
            log.info("reconciled with the venue (%s): positions agree (%s)", reason,
                     ", ".join(f"{s} {a:+g}" for s, a in sorted(self.books.positions.items()) if a) or "flat")
        return not mismatches

    def _failed(self, detail: str) -> bool:
        st = self.state
        st.failures += 1
        st.in_a_row_failed += 1
        st.last_ok = False
        st.last_detail = detail
        if not st.unknown_all:
            st.unknown_all = True
        self.alerts.raise_(AlertKind.UNKNOWN_POSITION, "", f"positions UNKNOWN, entries blocked: {detail}",
                           standing=True)
        self.escalator.reconciled(False, detail)
        return False

    def _report(self, mismatches: list[Mismatch]) -> None:
        """Alert what is new, resolve what ended; the disputed symbols block entries."""
        now = {(m.kind, m.symbol) for m in mismatches}
        for kind in (AlertKind.PHANTOM_POSITION, AlertKind.SIDE_MISMATCH, AlertKind.SIZE_MISMATCH,
                     AlertKind.ORPHAN_ORDER):
            for symbol in self.alerts.standing(kind):
                if (kind, symbol) not in now:
                    self.alerts.resolve(kind, symbol)
        for m in mismatches:
            self.alerts.raise_(m.kind, m.symbol, m.detail, standing=True)
        self.state.disputed = {m.symbol for m in mismatches if m.kind is not AlertKind.ORPHAN_ORDER}

    async def unknown_fills(self, since_ms: int, journaled_orders: set[str], symbols: set[str]) -> int:
        """At start: fills on the venue since the journal's last venue event that the journal does not hold."""
        found = 0
        for symbol in sorted(symbols):
            try:
                trades = await self.rest.user_trades(symbol, start_ms=since_ms, limit=1000)
            except MarketError as exc:
                log.warning("could not list %s's fills since the journal's last (%s)", symbol, exc)
                continue
            strangers = sorted({t.order_id for t in trades if str(t.order_id) not in journaled_orders
                                and not self._in_flight(t.order_id)})
            if strangers:
                found += len(strangers)
                self.alerts.raise_(AlertKind.ORPHAN_ORDER, symbol,
                                   f"fills of order(s) {', '.join(map(str, strangers))} since the journal's last "
                                   "venue event are not in the journal")
        return found

    def _in_flight(self, order_id: int) -> bool:
        return any(t.order_id == order_id for t in self.books.orders.values() if t.ours)


__all__ = ["LiveReconciler", "Mismatch", "ReconcileState", "classify"]
