"""Exit management (bible §7) and friction (§8): dynamic OB adjustments, exit order, slippage, fees."""

from __future__ import annotations

import numba as nb

from dolphin.engine.codes import (
    EXIT_FIXED_TP,
    EXIT_MAX_HOLD,
    EXIT_STOP_LOSS,
    EXIT_VD_ADVERSE,
)

CASCADE_TP_MULT = 1.40
CASCADE_HOLD_MULT = 0.50
STRESS_SL = 0.10
STRESS_TP_MULT = 0.60
STRESS_OPPOSED_HOLD_MULT = 0.40
CALM_FAVOURABLE_HOLD_MULT = 1.50
WITHDRAWAL_VELOCITY_LIMIT = -0.20
WITHDRAWAL_HOLD_MULT = 0.40
WITHDRAWAL_TP_MULT = 0.75


@nb.njit(cache=True)
def ob_dynamic_exit_params(tp: float, sl: float, max_hold: int, pnl_pct: float, cascade_count: float,
                           regime_signal: float, eff_imb: float,
                           withdrawal_velocity: float) -> tuple[float, float, int]:
    """§7.2: (tp, sl, max_hold) adjusted for cascades, withdrawal stress, calm and per-asset drain."""
    dyn_tp = tp
    dyn_sl = sl
    dyn_hold = max_hold
    stressed = False
    if cascade_count > 0:
        dyn_tp *= CASCADE_TP_MULT
        dyn_hold = int(max_hold * CASCADE_HOLD_MULT)
        stressed = True
    elif regime_signal == 1.0:
        dyn_sl = STRESS_SL
        if pnl_pct > 0.0:
            dyn_tp *= STRESS_TP_MULT
        if eff_imb < -0.10:
            dyn_hold = int(max_hold * STRESS_OPPOSED_HOLD_MULT)
        stressed = True
    elif regime_signal == -1.0 and eff_imb > 0.15:
        dyn_hold = int(max_hold * CALM_FAVOURABLE_HOLD_MULT)
    if withdrawal_velocity < WITHDRAWAL_VELOCITY_LIMIT and not stressed:
        dyn_hold = min(dyn_hold, int(max_hold * WITHDRAWAL_HOLD_MULT))
        if pnl_pct > 0.0:
            dyn_tp *= WITHDRAWAL_TP_MULT
    return dyn_tp, dyn_sl, dyn_hold


@nb.njit(cache=True)
def evaluate_exit(pnl_pct: float, bars_held: int, tp: float, sl: float, max_hold: int,
                  vd_adverse_bars: int, vd_enabled: bool, vd_bars_needed: int) -> int:
    """§7.1 priority: FIXED_TP, STOP_LOSS, vel_div adverse turn, MAX_HOLD; 0 = hold."""
    if pnl_pct >= tp:
        return EXIT_FIXED_TP
    if pnl_pct <= -sl:
        return EXIT_STOP_LOSS
    if vd_enabled and vd_adverse_bars >= vd_bars_needed:
        return EXIT_VD_ADVERSE
    if bars_held >= max_hold:
        return EXIT_MAX_HOLD
    return 0


@nb.njit(cache=True)
def exit_slippage(reason: int, tp_slip: float, sl_slip: float, other_slip: float, use_sp_slippage: bool,
                  sp_maker_exit_rate: float) -> float:
    """§7.4 slip by reason; with the SP model, the maker-filled share of a non-stop exit slips nothing.

    With ``use_sp_slippage`` off the engine applies no slippage: the venue's fill is the price.
    """
    if not use_sp_slippage:
        return 0.0
    if reason == EXIT_STOP_LOSS:
        return sl_slip
    slip = tp_slip if reason == EXIT_FIXED_TP else other_slip
    return slip * (1.0 - sp_maker_exit_rate)


@nb.njit(cache=True)
def blended_fee_rate(maker_rate: float, maker_fee: float, taker_fee: float) -> float:
    """§8.1 SmartPlacer blend: maker_fee * maker_rate + taker_fee * (1 - maker_rate) (3.14 bp at entry)."""
    return maker_fee * maker_rate + taker_fee * (1.0 - maker_rate)
