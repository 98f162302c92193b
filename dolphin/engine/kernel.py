"""The NDAlphaEngine bar loop (bible §13.2–§13.3) as one numba kernel.

`run_bars` advances the engine over a block of bars — one bar for a live `step_bar`, a
whole day for `process_day` — mutating the state record and ring buffers in place and
writing one event row per entry and per exit. The Python reference in
tests/reference/engine_ref.py implements the same loop in plain Python and must agree
trade for trade.

Per bar, in order: count the bar; record vel_div, valid prices and the w750 velocity;
update the ACB per-bar regime multiplier; manage an open position (forced exits, then
TP / SL / vel_div adverse turn / max hold); then, with no position, try an entry
(gates → IRP selection → signal + DC (+OB) → sizing → leverage ceiling).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from dolphin.engine.codes import (
    DC_CONTRADICT,
    DC_NEUTRAL,
    EVENT_ENTRY,
    EVENT_EXIT,
    EXIT_HIBERNATE,
    EXIT_MANUAL,
    EXIT_SUBDAY_ACB,
    HIBERNATE,
    STALKER,
    TURTLE,
)
from dolphin.engine.exits import (
    blended_fee_rate,
    evaluate_exit,
    exit_slippage,
    ob_dynamic_exit_params,
)
from dolphin.engine.irp import IRP_WINDOW, OB_DEPTH_MIN, ob_ars_adjust, profile_asset, stable_sort_desc
from dolphin.engine.layout import (
    E_ASSET,
    E_BAR,
    E_BARS_HELD,
    E_BUCKET,
    E_CAPITAL,
    E_CONFIDENCE,
    E_DIR,
    E_ENTRY_BAR,
    E_ENTRY_FEE,
    E_ENTRY_PRICE,
    E_ENTRY_TS,
    E_EXIT_FEE,
    E_EXIT_PRICE,
    E_FRACTION,
    E_KIND,
    E_LEVERAGE,
    E_NOTIONAL,
    E_PNL,
    E_PNL_PCT,
    E_REASON,
    E_TRADE_ID,
    E_TS,
    E_VD_ENTRY,
    HIST_LEN,
    N_BUCKETS,
    P_ABS_MAX_LEV,
    P_BUCKET_MIN,
    P_CONVEXITY,
    P_DC_LOOKBACK,
    P_DC_MAG,
    P_DC_SKIP,
    P_EXTREME,
    P_FRACTION,
    P_LOOKBACK,
    P_MAKER_ENTRY,
    P_MAKER_EXIT,
    P_MAKER_FEE,
    P_MAX_HOLD,
    P_MAX_LEV,
    P_MIN_ALIGN,
    P_MIN_LEV,
    P_OB_CONFIRM,
    P_OB_EDGE,
    P_OTHER_SLIP,
    P_SL,
    P_SL_SLIP,
    P_STALKER_CAP,
    P_STREAK_MIN,
    P_TAKER_FEE,
    P_THRESHOLD,
    P_TP,
    P_TP_SLIP,
    P_USE_SP_FEES,
    P_USE_SP_SLIP,
    P_VD_BARS,
    P_VD_ENABLED,
    P_VD_THR,
    RECENT_RING,
    VD_RING,
)
from dolphin.engine.ob import (
    OB_CASCADE_COUNT,
    OB_DEPTH_QUALITY,
    OB_FILL_PROBABILITY,
    OB_IMBALANCE_MA5,
    OB_MARKET_IMBALANCE,
    OB_PERSISTENCE,
    OB_REGIME_SIGNAL,
    OB_WITHDRAWAL_VELOCITY,
)
from dolphin.engine.signal import (
    dc_verdict,
    is_extreme,
    ob_confidence_adjust,
    signal_active,
    signal_confidence,
    signal_strength,
)
from dolphin.engine.sizing import (
    DC_LEVERAGE_BOOST,
    TREND_LAG,
    bucket_boost,
    cubic_leverage,
    effective_fraction,
    final_leverage,
    market_ob_multiplier,
    regime_size_mult,
    signal_bucket,
    streak_mult,
    trend_mult,
)

OB_EDGE_DEPTH_MIN = 0.5  # §8.3: real-OB fill edge only on books deeper than this


@nb.njit(cache=True)
def _valid(price: float) -> bool:
    return math.isfinite(price) and price > 0.0


@nb.njit(cache=True)
def _hist_get(hist: np.ndarray, hist_n: np.ndarray, asset: int, back: int) -> float:
    """The price ``back`` valid bars before the newest (0 = newest) of an asset."""
    return hist[asset, (hist_n[asset] - 1 - back) % HIST_LEN]


@nb.njit(cache=True)
def _hist_len(hist_n: np.ndarray, asset: int) -> int:
    return min(hist_n[asset], HIST_LEN)


@nb.njit(cache=True)
def _losses_in_window(recent: np.ndarray, n_closed: int) -> int:
    losses = 0
    for i in range(min(n_closed, RECENT_RING)):
        if recent[i] == 0:
            losses += 1
    return losses


@nb.njit(cache=True)
def _exit_position(st, P, reason: int, price: float, bar: int, ts: int, recent: np.ndarray,
                   bucket_n: np.ndarray, bucket_w: np.ndarray, uniforms: np.ndarray, ob_on: bool,
                   ob_row_asset: np.ndarray, events: np.ndarray, n_ev: int) -> int:
    """§7.4 slippage, §8.3 OB edge, §8.1 fees; books the trade and frees the slot."""
    s = st[0]
    d = s.pos_dir
    slip = exit_slippage(reason, P[P_TP_SLIP], P[P_SL_SLIP], P[P_OTHER_SLIP], P[P_USE_SP_SLIP] > 0.5,
                         P[P_MAKER_EXIT])
    exit_price = price * (1.0 - d * slip)
    pnl_pct_raw = d * (exit_price - s.pos_entry_price) / s.pos_entry_price
    if ob_on:
        depth = ob_row_asset[s.pos_asset, OB_DEPTH_QUALITY]
        if depth > OB_EDGE_DEPTH_MIN:
            pnl_pct_raw += ob_row_asset[s.pos_asset, OB_FILL_PROBABILITY] * P[P_OB_EDGE] * 1e-4
    else:
        u = uniforms[s.rng_index]
        s.rng_index += 1
        if u < P[P_OB_CONFIRM]:
            pnl_pct_raw += P[P_OB_EDGE] * 1e-4
    notional = s.pos_notional
    exit_fee = 0.0
    if P[P_USE_SP_FEES] > 0.5:
        exit_fee = blended_fee_rate(P[P_MAKER_EXIT], P[P_MAKER_FEE], P[P_TAKER_FEE]) * notional
    gross = pnl_pct_raw * notional
    net = gross - s.pos_entry_fee - exit_fee
    s.capital += net
    if s.capital > s.peak_capital:
        s.peak_capital = s.capital
    win = 1 if net > 0.0 else 0
    b = s.pos_bucket
    if 0 <= b < N_BUCKETS:
        bucket_n[b] += 1
        bucket_w[b] += win
    recent[s.n_closed % RECENT_RING] = win
    s.n_closed += 1

    row = events[n_ev]
    row[E_KIND] = EVENT_EXIT
    row[E_BAR] = bar
    row[E_TS] = ts
    row[E_ASSET] = s.pos_asset
    row[E_DIR] = d
    row[E_TRADE_ID] = s.pos_trade_id
    row[E_ENTRY_BAR] = s.pos_entry_bar
    row[E_ENTRY_TS] = s.pos_entry_ts
    row[E_ENTRY_PRICE] = s.pos_entry_price
    row[E_EXIT_PRICE] = exit_price
    row[E_NOTIONAL] = notional
    row[E_LEVERAGE] = s.pos_leverage
    row[E_FRACTION] = s.pos_fraction
    row[E_PNL] = net
    row[E_PNL_PCT] = pnl_pct_raw
    row[E_ENTRY_FEE] = s.pos_entry_fee
    row[E_EXIT_FEE] = exit_fee
    row[E_REASON] = reason
    row[E_BUCKET] = b
    row[E_VD_ENTRY] = s.pos_vd_entry
    row[E_CONFIDENCE] = s.pos_confidence
    row[E_CAPITAL] = s.capital
    row[E_BARS_HELD] = bar - s.pos_entry_bar

    s.pos_active = False
    s.pos_asset = -1
    s.last_exit_bar = bar
    s.subday_exit_pending = False
    s.manual_exit_pending = False
    return n_ev + 1


@nb.njit(cache=True)
def _select_asset(P, direction: int, price_row: np.ndarray, hist: np.ndarray, hist_n: np.ndarray, ob_on: bool,
                  ob_row_asset: np.ndarray, seg: np.ndarray, keys: np.ndarray, order: np.ndarray,
                  align: np.ndarray, action: np.ndarray) -> int:
    """§5.4–§5.5: rank by ARS (direct or inverse), walk with alignment/direction/OB gates; -1 = none."""
    n_assets = price_row.shape[0]
    n = 0
    for a in range(n_assets):
        if not _valid(price_row[a]) or _hist_len(hist_n, a) < IRP_WINDOW:
            continue
        for j in range(IRP_WINDOW):
            seg[j] = _hist_get(hist, hist_n, a, IRP_WINDOW - 1 - j)
        ars, act, alignment, ok = profile_asset(seg, direction)
        if not ok:
            continue
        if ob_on:
            ars = ob_ars_adjust(ars, ob_row_asset[a, OB_DEPTH_QUALITY])
        keys[a] = ars
        align[a] = alignment
        action[a] = act
        order[n] = a
        n += 1
    stable_sort_desc(keys, order, n)
    min_align = P[P_MIN_ALIGN]
    for i in range(n):
        a = order[i]
        if min_align > 0.0 and align[a] < min_align:
            continue
        if action[a] != direction:
            continue
        if ob_on and ob_row_asset[a, OB_DEPTH_QUALITY] < OB_DEPTH_MIN:
            continue
        return a
    return -1


@nb.njit(cache=True)
def _try_entry(st, P, bar: int, ts: int, vd: float, price_row: np.ndarray, hist: np.ndarray, hist_n: np.ndarray,
               vd_ring: np.ndarray, recent: np.ndarray, bucket_n: np.ndarray, bucket_w: np.ndarray,
               ob_on: bool, ob_row_asset: np.ndarray, ob_row_macro: np.ndarray, events: np.ndarray, n_ev: int,
               seg: np.ndarray, keys: np.ndarray, order: np.ndarray, align: np.ndarray,
               action: np.ndarray) -> int:
    """§13.3 _try_entry. Returns the new event count (unchanged when no entry happens)."""
    s = st[0]
    direction = s.direction
    threshold = P[P_THRESHOLD]
    extreme = P[P_EXTREME]
    if not signal_active(vd, threshold, direction):
        return n_ev
    # 1. IRP asset selection — strict: no fallback asset when nothing passes.
    asset = _select_asset(P, direction, price_row, hist, hist_n, ob_on, ob_row_asset, seg, keys, order, align,
                          action)
    if asset < 0:
        return n_ev
    # 2. Direction confirmation on the chosen asset (+ OB sub-2).
    lookback = int(P[P_DC_LOOKBACK])
    verdict = DC_NEUTRAL
    if _hist_len(hist_n, asset) >= lookback + 1:
        verdict = dc_verdict(_hist_get(hist, hist_n, asset, lookback), _hist_get(hist, hist_n, asset, 0),
                             P[P_DC_MAG], direction)
    if verdict == DC_CONTRADICT and P[P_DC_SKIP] > 0.5:
        return n_ev
    confidence = signal_confidence(vd, threshold, extreme)
    if ob_on:
        confidence, skip = ob_confidence_adjust(confidence, ob_row_asset[asset, OB_IMBALANCE_MA5],
                                                ob_row_asset[asset, OB_PERSISTENCE], direction)
        if skip:
            return n_ev
    # 3. Sizing: strength → cubic leverage; alpha layers → fraction.
    strength = signal_strength(vd, threshold, extreme)
    extreme_hit = is_extreme(vd, extreme, direction)
    size_leverage = cubic_leverage(strength, P[P_MIN_LEV], P[P_MAX_LEV], P[P_CONVEXITY])
    bucket = signal_bucket(vd, threshold, extreme, direction)
    b_boost = bucket_boost(bucket_w[bucket], bucket_n[bucket], int(P[P_BUCKET_MIN]))
    s_mult = streak_mult(_losses_in_window(recent, s.n_closed), s.n_closed, int(P[P_STREAK_MIN]))
    vd_trend = math.nan
    if s.vd_count >= TREND_LAG:
        vd_trend = vd_ring[(s.vd_count - 1) % VD_RING] - vd_ring[(s.vd_count - TREND_LAG) % VD_RING]
    t_mult = trend_mult(vd_trend, direction)
    fraction = effective_fraction(strength, extreme_hit, P[P_FRACTION], t_mult, b_boost, s_mult)
    # 4–5. OB market multiplier and the ACB leverage ceiling (STALKER cap).
    market_mult = 1.0
    if ob_on:
        market_mult = market_ob_multiplier(ob_row_macro[OB_MARKET_IMBALANCE], direction)
    dc_mult = DC_LEVERAGE_BOOST
    leverage = final_leverage(size_leverage, dc_mult, s.regime_size_mult, market_mult, P[P_MAX_LEV],
                              P[P_ABS_MAX_LEV], P[P_MIN_LEV], s.posture == STALKER, P[P_STALKER_CAP])
    # 6–7. Notional, entry fee, the position.
    notional = s.capital * fraction * leverage
    entry_price = price_row[asset]
    entry_fee = 0.0
    if P[P_USE_SP_FEES] > 0.5:
        entry_fee = blended_fee_rate(P[P_MAKER_ENTRY], P[P_MAKER_FEE], P[P_TAKER_FEE]) * notional
    s.trade_seq += 1
    s.pos_active = True
    s.pos_asset = asset
    s.pos_dir = direction
    s.pos_entry_price = entry_price
    s.pos_notional = notional
    s.pos_leverage = leverage
    s.pos_fraction = fraction
    s.pos_entry_bar = bar
    s.pos_entry_ts = ts
    s.pos_entry_fee = entry_fee
    s.pos_bucket = bucket
    s.pos_vd_entry = vd
    s.pos_confidence = confidence
    s.pos_trade_id = s.trade_seq
    s.pos_vd_adverse = 0
    s.pos_peak_capital = s.peak_capital

    row = events[n_ev]
    row[E_KIND] = EVENT_ENTRY
    row[E_BAR] = bar
    row[E_TS] = ts
    row[E_ASSET] = asset
    row[E_DIR] = direction
    row[E_TRADE_ID] = s.trade_seq
    row[E_ENTRY_BAR] = bar
    row[E_ENTRY_TS] = ts
    row[E_ENTRY_PRICE] = entry_price
    row[E_EXIT_PRICE] = math.nan
    row[E_NOTIONAL] = notional
    row[E_LEVERAGE] = leverage
    row[E_FRACTION] = fraction
    row[E_PNL] = 0.0
    row[E_PNL_PCT] = 0.0
    row[E_ENTRY_FEE] = entry_fee
    row[E_EXIT_FEE] = 0.0
    row[E_REASON] = 0
    row[E_BUCKET] = bucket
    row[E_VD_ENTRY] = vd
    row[E_CONFIDENCE] = confidence
    row[E_CAPITAL] = s.capital
    row[E_BARS_HELD] = 0
    return n_ev + 1


@nb.njit(cache=True)
def _manage_position(st, P, bar: int, ts: int, vd: float, price_row: np.ndarray, hist: np.ndarray,
                     hist_n: np.ndarray, recent: np.ndarray, bucket_n: np.ndarray, bucket_w: np.ndarray,
                     uniforms: np.ndarray, ob_on: bool, ob_row_asset: np.ndarray, ob_row_macro: np.ndarray,
                     events: np.ndarray, n_ev: int) -> int:
    """§7.1 exit evaluation for the open position, marked at the asset's latest valid price."""
    s = st[0]
    a = s.pos_asset
    d = s.pos_dir
    price = price_row[a]
    if not _valid(price):
        price = _hist_get(hist, hist_n, a, 0)
    if s.posture == HIBERNATE:
        return _exit_position(st, P, EXIT_HIBERNATE, price, bar, ts, recent, bucket_n, bucket_w, uniforms, ob_on,
                              ob_row_asset, events, n_ev)
    if s.manual_exit_pending:
        return _exit_position(st, P, EXIT_MANUAL, price, bar, ts, recent, bucket_n, bucket_w, uniforms, ob_on,
                              ob_row_asset, events, n_ev)
    if s.subday_exit_pending:
        return _exit_position(st, P, EXIT_SUBDAY_ACB, price, bar, ts, recent, bucket_n, bucket_w, uniforms, ob_on,
                              ob_row_asset, events, n_ev)
    pnl_pct = d * (price - s.pos_entry_price) / s.pos_entry_price
    bars_held = bar - s.pos_entry_bar
    tp = P[P_TP]
    sl = P[P_SL]
    max_hold = int(P[P_MAX_HOLD])
    if ob_on:
        eff_imb = d * ob_row_asset[a, OB_IMBALANCE_MA5]
        tp, sl, max_hold = ob_dynamic_exit_params(tp, sl, max_hold, pnl_pct, ob_row_macro[OB_CASCADE_COUNT],
                                                  ob_row_macro[OB_REGIME_SIGNAL], eff_imb,
                                                  ob_row_asset[a, OB_WITHDRAWAL_VELOCITY])
    vd_enabled = P[P_VD_ENABLED] > 0.5
    if vd_enabled:
        if math.isfinite(vd) and -d * vd > P[P_VD_THR]:
            s.pos_vd_adverse += 1
        else:
            s.pos_vd_adverse = 0
    reason = evaluate_exit(pnl_pct, bars_held, tp, sl, max_hold, s.pos_vd_adverse, vd_enabled, int(P[P_VD_BARS]))
    if reason == 0:
        return n_ev
    return _exit_position(st, P, reason, price, bar, ts, recent, bucket_n, bucket_w, uniforms, ob_on, ob_row_asset,
                          events, n_ev)


@nb.njit(cache=True)
def run_bars(st, P, hist, hist_n, vd_ring, w750_ring, recent, bucket_n, bucket_w, uniforms,
             bar_idx, ts, vel_div, v750, vol_ok, prices, ob_on, ob_asset, ob_macro, events,
             seg, keys, order, align, action, trade) -> int:
    """Advance the engine over ``len(bar_idx)`` bars; returns the number of event rows written.

    With ``trade`` False the bars only warm the engine (histories, bar count, the ACB
    w750 window): no exit or entry is evaluated, so no event is written.
    """
    s = st[0]
    n_bars = bar_idx.shape[0]
    n_assets = prices.shape[1]
    w750_len = w750_ring.shape[0]
    empty_asset = np.zeros((n_assets, 5))
    empty_macro = np.zeros(3)
    n_ev = 0
    for k in range(n_bars):
        bar = bar_idx[k]
        t = ts[k]
        vd = vel_div[k]
        row = prices[k]
        s.bar_count += 1
        vd_ring[s.vd_count % VD_RING] = vd
        s.vd_count += 1
        for a in range(n_assets):
            p = row[a]
            if _valid(p):
                hist[a, hist_n[a] % HIST_LEN] = p
                hist_n[a] += 1
        w = v750[k]
        if math.isfinite(w):
            w750_ring[s.w750_count % w750_len] = w
            s.w750_count += 1
        s.regime_size_mult = regime_size_mult(vd, P[P_THRESHOLD], P[P_EXTREME], P[P_CONVEXITY], s.day_base_boost,
                                              s.day_beta, s.day_mc_scale)
        if not trade:
            continue
        ob_row_asset = ob_asset[k] if ob_on else empty_asset
        ob_row_macro = ob_macro[k] if ob_on else empty_macro

        if s.pos_active:
            n_ev = _manage_position(st, P, bar, t, vd, row, hist, hist_n, recent, bucket_n, bucket_w, uniforms,
                                    ob_on, ob_row_asset, ob_row_macro, events, n_ev)

        halted = s.halt_day or s.kill_switch or s.posture <= TURTLE
        if (not s.pos_active and bar > s.last_exit_bar and not halted and s.bar_count >= P[P_LOOKBACK]
                and vol_ok[k] and s.capital > 0.0):
            n_ev = _try_entry(st, P, bar, t, vd, row, hist, hist_n, vd_ring, recent, bucket_n, bucket_w, ob_on,
                              ob_row_asset, ob_row_macro, events, n_ev, seg, keys, order, align, action)
    return n_ev
