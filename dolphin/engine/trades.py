"""Typed records the engine hands out: open positions, closed trades, bar and day results."""

from __future__ import annotations

import msgspec

from dolphin.enums import PositionSide


class OpenPosition(msgspec.Struct, frozen=True):
    """A position the engine holds; enough to place (and later reconcile) the entry order."""

    trade_id: int
    asset: str
    side: PositionSide
    entry_bar: int
    entry_ts: int             # ms, from the bar that opened it
    entry_price: float
    notional: float
    leverage: float
    fraction: float
    entry_fee: float
    bucket: int
    vel_div_entry: float
    confidence: float


class ClosedTrade(msgspec.Struct, frozen=True):
    """A round trip, with everything the trade CSV and the PnL maps need."""

    trade_id: int
    asset: str
    side: PositionSide
    entry_bar: int
    entry_ts: int
    entry_price: float
    exit_bar: int
    exit_ts: int
    exit_price: float
    notional: float
    leverage: float
    fraction: float
    pnl: float                # net of fees
    pnl_pct: float            # raw price return incl. slippage and OB edge, before fees
    entry_fee: float
    exit_fee: float
    exit_reason: str
    bars_held: int
    bucket: int
    vel_div_entry: float
    confidence: float
    capital_after: float

    @property
    def fees(self) -> float:
        return self.entry_fee + self.exit_fee


class BarResult(msgspec.Struct, frozen=True):
    """What one `step_bar` did: the entries and exits it made and the capital after it."""

    bar_idx: int
    entries: list[OpenPosition]
    exits: list[ClosedTrade]
    capital: float
    regime_size_mult: float
    stale_state: bool = False


class DayResult(msgspec.Struct, frozen=True):
    """The daily result published to DOLPHIN_PNL_BLUE (bible §14.7)."""

    date: str
    pnl: float
    capital: float
    trades: int
    boost: float
    beta: float
    mc_status: str
    posture: str
    bars: int
    stale_state: bool = False
