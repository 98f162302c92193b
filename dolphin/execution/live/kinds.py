"""Closed sets of the live trader (values are the wire strings on the bus and in the journal)."""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class AlertKind(StrEnum):
    """What a live alert is about (docs/live.md, "Alerts": what each means and what to do)."""

    PHANTOM_POSITION = "phantom_position"   # the venue holds a position the books do not
    ORPHAN_ORDER = "orphan_order"           # an order the books did not place, or cancelled behind their back
    SIDE_MISMATCH = "side_mismatch"         # books long, venue short (or the reverse)
    SIZE_MISMATCH = "size_mismatch"         # same side, another size (or the venue flat)
    UNKNOWN_POSITION = "unknown_position"   # the venue did not report: positions UNKNOWN, entries blocked
    RISK_REJECT = "risk_reject"             # a pre-trade check refused an order
    VENUE_REJECT = "venue_reject"           # the venue refused an order (or did not fill it)
    ESCALATION = "escalation"               # the kill switch was raised automatically
    HALT_CANCEL = "halt_cancel"             # halt: the open orders on the venue were cancelled
    STREAM = "stream"                       # the user-data stream: storm guard, a lapsed listen key

    @property
    def is_mismatch(self) -> bool:
        return self in MISMATCHES


MISMATCHES = frozenset({AlertKind.PHANTOM_POSITION, AlertKind.ORPHAN_ORDER, AlertKind.SIDE_MISMATCH,
                        AlertKind.SIZE_MISMATCH})


@unique
class AlertAction(StrEnum):
    ALERT = "alert"          # shown and journaled; nothing else
    ESCALATE = "escalate"    # shown, journaled, and the kill switch set to halt
    INFO = "info"            # the end of a condition (a mismatch resolved, a pause lapsed)


@unique
class RiskCheck(StrEnum):
    """The pre-trade checks (`dolphin.execution.live.risk`)."""

    MAX_NOTIONAL = "max_notional"
    LEVERAGE_CEILING = "leverage_ceiling"
    MAX_OPEN_POSITIONS = "max_open_positions"
    PRICE_BAND = "price_band"
    ORDER_RATE = "order_rate"
    UNKNOWN_POSITION = "unknown_position"   # the symbol's position is UNKNOWN (never flat)
    DISPUTED = "disputed"                   # books and venue disagree on the symbol
    NO_MARK = "no_mark"                     # no mark price to check the band against
    MIN_NOTIONAL = "min_notional"           # below the venue's minimum after rounding to its step


@unique
class OrderType(StrEnum):
    MARKET = "market"
    POST_ONLY = "post_only"


__all__ = ["MISMATCHES", "AlertAction", "AlertKind", "OrderType", "RiskCheck"]
