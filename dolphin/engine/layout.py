"""Memory layout shared by the bar-loop kernel and the engine wrapper.

The engine's mutable state lives in a numpy record (scalars) plus a few ring buffers so
the numba kernel can run a whole day without returning to Python, and `get_state` can
serialise everything exactly. Parameters travel as one float64 vector with fixed slots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dolphin.engine.params import StrategyConfig

HIST_LEN = 64       # per-asset price ring: ≥ IRP window (50) and DC lookback + 1
VD_RING = 16        # vel_div history ring: ≥ trend lag (10)
RECENT_RING = 5     # outcomes of the last closed trades (streak multiplier)
N_BUCKETS = 4

SCALAR_DTYPE = np.dtype([
    ("capital", "f8"),
    ("peak_capital", "f8"),
    ("day_base_boost", "f8"),
    ("day_beta", "f8"),
    ("day_mc_scale", "f8"),
    ("regime_size_mult", "f8"),
    ("bar_count", "i8"),
    ("last_exit_bar", "i8"),
    ("halt_day", "b1"),
    ("kill_switch", "b1"),
    ("posture", "i8"),
    ("direction", "i8"),
    ("rng_index", "i8"),
    ("trade_seq", "i8"),
    ("subday_exit_pending", "b1"),
    ("vd_count", "i8"),
    ("w750_count", "i8"),
    ("n_closed", "i8"),
    ("pos_active", "b1"),
    ("pos_asset", "i8"),
    ("pos_dir", "i8"),
    ("pos_entry_price", "f8"),
    ("pos_notional", "f8"),
    ("pos_leverage", "f8"),
    ("pos_fraction", "f8"),
    ("pos_entry_bar", "i8"),
    ("pos_entry_ts", "i8"),
    ("pos_entry_fee", "f8"),
    ("pos_bucket", "i8"),
    ("pos_vd_entry", "f8"),
    ("pos_confidence", "f8"),
    ("pos_trade_id", "i8"),
    ("pos_vd_adverse", "i8"),
    ("pos_peak_capital", "f8"),   # the peak when the position opened (a venue fill's correction needs it)
    ("manual_exit_pending", "b1"),  # an operator asked to close the position: exit at the next traded bar
])

# Parameter vector slots.
P_THRESHOLD = 0
P_EXTREME = 1
P_MIN_LEV = 2
P_MAX_LEV = 3
P_ABS_MAX_LEV = 4
P_CONVEXITY = 5
P_FRACTION = 6
P_TP = 7
P_SL = 8
P_MAX_HOLD = 9
P_DC_LOOKBACK = 10
P_DC_MAG = 11
P_DC_SKIP = 12
P_MIN_ALIGN = 13
P_MAKER_ENTRY = 14
P_MAKER_EXIT = 15
P_OB_EDGE = 16
P_OB_CONFIRM = 17
P_LOOKBACK = 18
P_VD_ENABLED = 19
P_VD_THR = 20
P_VD_BARS = 21
P_TP_SLIP = 22
P_SL_SLIP = 23
P_OTHER_SLIP = 24
P_USE_SP_FEES = 25
P_USE_SP_SLIP = 26
P_MAKER_FEE = 27
P_TAKER_FEE = 28
P_BUCKET_MIN = 29
P_STREAK_MIN = 30
P_STALKER_CAP = 31
N_PARAMS = 32

# Event record columns written by the kernel (one row per entry or exit).
E_KIND = 0
E_BAR = 1
E_TS = 2
E_ASSET = 3
E_DIR = 4
E_TRADE_ID = 5
E_ENTRY_BAR = 6
E_ENTRY_TS = 7
E_ENTRY_PRICE = 8
E_EXIT_PRICE = 9
E_NOTIONAL = 10
E_LEVERAGE = 11
E_FRACTION = 12
E_PNL = 13
E_PNL_PCT = 14
E_ENTRY_FEE = 15
E_EXIT_FEE = 16
E_REASON = 17
E_BUCKET = 18
E_VD_ENTRY = 19
E_CONFIDENCE = 20
E_CAPITAL = 21
E_BARS_HELD = 22
N_EVENT_FIELDS = 23


def param_vector(cfg: StrategyConfig, direction: int) -> np.ndarray:
    """The kernel's parameter vector for a config and a trading direction (-1 short, +1 long)."""
    c, x, f, e, s = cfg.champion, cfg.exits, cfg.friction, cfg.extras, cfg.survival
    threshold = c.vel_div_threshold if direction < 0 else cfg.long.long_threshold
    extreme = c.vel_div_extreme if direction < 0 else cfg.long.long_extreme
    p = np.zeros(N_PARAMS)
    p[P_THRESHOLD] = threshold
    p[P_EXTREME] = extreme
    p[P_MIN_LEV] = c.min_leverage
    p[P_MAX_LEV] = c.max_leverage
    p[P_ABS_MAX_LEV] = c.abs_max_leverage
    p[P_CONVEXITY] = c.leverage_convexity
    p[P_FRACTION] = c.fraction
    p[P_TP] = c.fixed_tp_pct
    p[P_SL] = c.stop_pct
    p[P_MAX_HOLD] = c.max_hold_bars
    p[P_DC_LOOKBACK] = c.dc_lookback_bars
    p[P_DC_MAG] = c.dc_min_magnitude_bps
    p[P_DC_SKIP] = 1.0 if c.dc_skip_contradicts else 0.0
    p[P_MIN_ALIGN] = c.min_irp_alignment
    p[P_MAKER_ENTRY] = c.sp_maker_entry_rate
    p[P_MAKER_EXIT] = c.sp_maker_exit_rate
    p[P_OB_EDGE] = c.ob_edge_bps if f.ob_edge else 0.0
    p[P_OB_CONFIRM] = c.ob_confirm_rate
    p[P_LOOKBACK] = c.lookback
    p[P_VD_ENABLED] = 1.0 if x.vd_enabled else 0.0
    p[P_VD_THR] = x.vd_threshold
    p[P_VD_BARS] = x.vd_bars
    p[P_TP_SLIP] = x.tp_slippage
    p[P_SL_SLIP] = x.sl_slippage
    p[P_OTHER_SLIP] = x.other_slippage
    p[P_USE_SP_FEES] = 1.0 if f.use_sp_fees else 0.0
    p[P_USE_SP_SLIP] = 1.0 if f.use_sp_slippage else 0.0
    p[P_MAKER_FEE] = f.maker_fee
    p[P_TAKER_FEE] = f.taker_fee
    p[P_BUCKET_MIN] = e.bucket_min_trades
    p[P_STREAK_MIN] = e.streak_min_trades
    p[P_STALKER_CAP] = s.stalker_max_leverage
    return p
