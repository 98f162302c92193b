"""What the journal already holds of the venue: the orders it filled, the cash flows it booked, and when.

A restart must know where the journal's knowledge of the venue ends, to look at what
happened after (`LiveReconciler.unknown_fills`, the funding catch-up) without booking
anything twice. One streaming pass; only ``fill`` and ``cash`` lines are decoded (a cheap
substring test skips the rest), so a long journal costs little more than reading it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from dolphin.store.journal import CashRecord, FillRecord

_FILL = msgspec.json.Decoder(FillRecord)
_CASH = msgspec.json.Decoder(CashRecord)


@dataclass
class VenueHistory:
    order_ids: set[str] = field(default_factory=set)      # venue order ids of every journaled fill
    symbols: set[str] = field(default_factory=set)
    net: dict[str, float] = field(default_factory=dict)   # Σ signed fill quantity per symbol: what the venue holds
    last_fill_ms: int | None = None
    cash_refs: set[str] = field(default_factory=set)
    last_cash_ms: int | None = None

    @property
    def last_event_ms(self) -> int | None:
        known = [t for t in (self.last_fill_ms, self.last_cash_ms) if t is not None]
        return max(known) if known else None


def venue_history(path: Path) -> VenueHistory:
    out = VenueHistory()
    seen: set[str] = set()
    if not path.exists():
        return out
    with open(path, "rb") as fh:
        for line in fh:
            if b'"type":"fill"' in line:
                try:
                    fill = _FILL.decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue      # a torn last line: the journal's own reader deals with it
                if fill.client_order_id in seen:
                    continue
                seen.add(fill.client_order_id)
                if fill.venue_order_id:
                    out.order_ids.update(fill.venue_order_id.split("+"))
                out.symbols.add(fill.symbol)
                signed = fill.quantity if fill.side == "BUY" else -fill.quantity
                out.net[fill.symbol] = out.net.get(fill.symbol, 0.0) + signed
                if fill.venue_ts is not None:
                    out.last_fill_ms = max(out.last_fill_ms or 0, fill.venue_ts)
            elif b'"type":"cash"' in line:
                try:
                    cash = _CASH.decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue
                out.cash_refs.add(cash.ref)
                out.last_cash_ms = max(out.last_cash_ms or 0, cash.venue_ts)
    return out


__all__ = ["VenueHistory", "venue_history"]
