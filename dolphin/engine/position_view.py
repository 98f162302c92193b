"""An open position as the operator reads it: mark, unrealised PnL, the base take-profit and stop
levels and how far the mark is from them (bible §7.1, at the configured levels — §7.2's OB
adjustments move them per bar inside the engine).

Pure functions of the engine's own numbers, so the TUI and the CLI never recompute a
threshold of their own (ARCHITECTURE: tui/ and commands/ hold no domain logic).
"""

from __future__ import annotations

from dataclasses import dataclass

from dolphin.engine.params import StrategyConfig
from dolphin.enums import PositionSide


@dataclass(frozen=True, slots=True)
class PositionMarks:
    mark: float
    unrealised: float          # in the quote currency, before exit fees
    unrealised_pct: float      # the price return from the side's point of view
    tp_price: float
    sl_price: float | None     # None: the stop is effectively disabled (stop_pct ≥ 100 %)
    to_tp_pct: float           # the price move still needed to reach take-profit (≥ 0 when not yet reached)
    to_sl_pct: float | None
    bars_held: int | None
    bars_left: int | None      # to max hold


def position_marks(side: str, entry_price: float, notional: float, mark: float, cfg: StrategyConfig, *,
                   bars_held: int | None = None) -> PositionMarks:
    sign = PositionSide(side).sign
    ret = sign * (mark - entry_price) / entry_price
    tp, sl = cfg.champion.fixed_tp_pct, cfg.champion.stop_pct
    tp_price = entry_price * (1.0 + sign * tp)
    sl_price = entry_price * (1.0 - sign * sl) if sl < 1.0 else None
    to_tp = sign * (tp_price - mark) / mark
    to_sl = None if sl_price is None else sign * (mark - sl_price) / mark
    left = None if bars_held is None else max(0, cfg.champion.max_hold_bars - bars_held)
    return PositionMarks(mark=mark, unrealised=ret * notional, unrealised_pct=ret, tp_price=tp_price,
                         sl_price=sl_price, to_tp_pct=to_tp, to_sl_pct=to_sl, bars_held=bars_held, bars_left=left)


__all__ = ["PositionMarks", "position_marks"]
