"""Plain-Python reference of the NDAlphaEngine bar loop — the correctness oracle.

Written straight from the bible's pseudo-code (§13.1–§13.3): per-asset price histories
as Python lists trimmed the bible's way (>500 → last 200), vel_div history as a list,
the position as a dict, a live `numpy.random.RandomState` for the legacy OB edge. It
shares nothing with the fast engine's loop, ring buffers or state record; the layer
formulas are called through numba's ``.py_func`` (the same source run by CPython), so
they are written once and checked separately against the bible's hand-worked values.

Also the speed baseline of benchmarks/engine_speed.py.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dolphin.engine import exits as X
from dolphin.engine import irp as I
from dolphin.engine import signal as S
from dolphin.engine import sizing as Z
from dolphin.engine.acb import AdaptiveCircuitBreaker
from dolphin.engine.codes import (
    DC_CONTRADICT,
    DC_NEUTRAL,
    EXIT_HIBERNATE,
    EXIT_REASONS,
    EXIT_SUBDAY_ACB,
    HIBERNATE,
    STALKER,
    TURTLE,
    posture_code,
)
from dolphin.engine.mc_gate import MC_OK, Forewarner, mc_verdict
from dolphin.engine.ob import (
    OB_CASCADE_COUNT,
    OB_DEPTH_QUALITY,
    OB_FILL_PROBABILITY,
    OB_IMBALANCE_MA5,
    OB_MARKET_IMBALANCE,
    OB_PERSISTENCE,
    OB_REGIME_SIGNAL,
    OB_WITHDRAWAL_VELOCITY,
    OBProvider,
)
from dolphin.engine.params import StrategyConfig
from dolphin.engine.signal import classify
from dolphin.enums import SignalState

signal_strength = S.signal_strength.py_func
signal_confidence = S.signal_confidence.py_func
dc_verdict = S.dc_verdict.py_func
ob_confidence_adjust = S.ob_confidence_adjust.py_func
compute_irp = I.compute_irp.py_func
compute_ars = I.compute_ars.py_func
ob_ars_adjust = I.ob_ars_adjust.py_func
cubic_leverage = Z.cubic_leverage.py_func
signal_bucket = Z.signal_bucket.py_func
bucket_boost = Z.bucket_boost.py_func
streak_mult = Z.streak_mult.py_func
trend_mult = Z.trend_mult.py_func
effective_fraction = Z.effective_fraction.py_func
regime_size_mult = Z.regime_size_mult.py_func
final_leverage = Z.final_leverage.py_func
market_ob_multiplier = Z.market_ob_multiplier.py_func
ob_dynamic_exit_params = X.ob_dynamic_exit_params.py_func
evaluate_exit = X.evaluate_exit.py_func
exit_slippage = X.exit_slippage.py_func
blended_fee_rate = X.blended_fee_rate.py_func


@dataclass
class RefTrade:
    trade_id: int
    asset: str
    direction: int
    entry_bar: int
    entry_ts: int
    entry_price: float
    notional: float
    leverage: float
    fraction: float
    entry_fee: float
    bucket: int
    vel_div_entry: float
    confidence: float
    exit_bar: int = -1
    exit_ts: int = 0
    exit_price: float = math.nan
    pnl: float = 0.0
    pnl_pct: float = 0.0
    exit_fee: float = 0.0
    exit_reason: str = ""
    capital_after: float = 0.0
    vd_adverse: int = 0


@dataclass
class ReferenceEngine:
    cfg: StrategyConfig
    assets: list[str]
    acb: AdaptiveCircuitBreaker | None = None
    ob_provider: OBProvider | None = None
    forewarner: Forewarner | None = None
    capital: float = field(init=False)
    trades: list[RefTrade] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.capital = self.cfg.initial_capital
        self.peak = self.capital
        self.price_histories: dict[str, list[float]] = {a: [] for a in self.assets}
        self.vel_div_history: list[float] = []
        self.w750: deque[float] = deque(maxlen=self.cfg.acb.w750_history_bars)
        self.position: RefTrade | None = None
        self.bar_count = 0
        self.last_exit_bar = -1
        self.trade_seq = 0
        self.bucket_wins = [0, 0, 0, 0]
        self.bucket_trades = [0, 0, 0, 0]
        self.outcomes: list[int] = []
        self.rng = np.random.RandomState(self.cfg.champion.seed)
        self.direction = self.cfg.direction_sign
        self.posture = posture_code("APEX")
        self.base_boost, self.beta, self.mc_scale, self.mc_halt = 1.0, 0.0, 1.0, False
        self.rsm = 1.0
        self.subday_exit = False
        self.kill_switch = False

    # ---- day
    def begin_day(self, date: str, posture: str = "APEX", direction: int | None = None) -> None:
        self.direction = self.cfg.direction_sign if direction is None else (-1 if direction < 0 else 1)
        self.posture = posture_code(posture)
        self.subday_exit = False
        if self.acb is not None:
            day = self.acb.day(date, np.array(self.w750, dtype=float))
            self.base_boost, self.beta = day.boost, day.beta
        verdict = MC_OK
        if self.forewarner is not None:
            mc_cfg = {"max_leverage": self.cfg.champion.max_leverage * self.base_boost}
            verdict = mc_verdict(self.forewarner.assess_config_dict(mc_cfg))
        self.mc_scale, self.mc_halt = verdict.scale, verdict.halt

    def set_posture(self, posture: str) -> None:
        self.posture = posture_code(posture)

    def update_acb_boost(self, boost: float, beta: float) -> None:
        old = self.base_boost
        self.base_boost, self.beta = boost, beta
        p = self.cfg.acb
        if self.position is not None and old >= p.subday_exit_old_boost and boost < p.subday_exit_new_boost:
            self.subday_exit = True

    @property
    def threshold(self) -> float:
        return self.cfg.champion.vel_div_threshold if self.direction < 0 else self.cfg.long.long_threshold

    @property
    def extreme(self) -> float:
        return self.cfg.champion.vel_div_extreme if self.direction < 0 else self.cfg.long.long_extreme

    # ---- bars
    def process_day(self, date: str, bar_idx: np.ndarray, ts: np.ndarray, vel_div: np.ndarray, v750: np.ndarray,
                    vol_ok: np.ndarray, prices: np.ndarray, posture: str = "APEX",
                    direction: int | None = None, trade: bool = True) -> None:
        self.begin_day(date, posture, direction)
        ob = self.ob_provider.block(np.asarray(ts, dtype=np.int64), self.assets) if self.ob_provider else None
        for k in range(len(bar_idx)):
            row = {a: float(prices[k, j]) for j, a in enumerate(self.assets)}
            ob_bar = (ob.asset[k], ob.macro[k]) if ob is not None else None
            self.step_bar(int(bar_idx[k]), float(vel_div[k]), row, float(v750[k]), bool(vol_ok[k]), int(ts[k]), ob_bar,
                          trade)

    def step_bar(self, bar_idx: int, vd: float, prices: dict[str, float], v750: float, vol_ok: bool, ts: int,
                 ob_bar: tuple[np.ndarray, np.ndarray] | None = None, trade: bool = True) -> None:
        self.bar_count += 1
        self.vel_div_history.append(vd)
        if len(self.vel_div_history) > 200:
            self.vel_div_history = self.vel_div_history[-200:]
        valid = {a: p for a, p in prices.items() if math.isfinite(p) and p > 0}
        for a, p in valid.items():
            hist = self.price_histories[a]
            hist.append(p)
            if len(hist) > 500:
                self.price_histories[a] = hist[-200:]
        if math.isfinite(v750):
            self.w750.append(v750)
        self.rsm = regime_size_mult(vd, self.threshold, self.extreme, self.cfg.champion.leverage_convexity,
                                    self.base_boost, self.beta, self.mc_scale)
        if not trade:
            return
        if self.position is not None:
            self._manage_position(bar_idx, vd, valid, ts, ob_bar)
        halted = self.mc_halt or self.kill_switch or self.posture <= TURTLE
        if (self.position is None and bar_idx > self.last_exit_bar and not halted
                and self.bar_count >= self.cfg.champion.lookback and vol_ok and self.capital > 0):
            self._try_entry(bar_idx, vd, valid, ts, ob_bar)

    def _ob_asset(self, ob_bar: tuple[np.ndarray, np.ndarray] | None, asset: str) -> dict[str, float] | None:
        if ob_bar is None:
            return None
        row = ob_bar[0][self.assets.index(asset)]
        return {"imb": row[OB_IMBALANCE_MA5], "pers": row[OB_PERSISTENCE], "wv": row[OB_WITHDRAWAL_VELOCITY],
                "dq": row[OB_DEPTH_QUALITY], "fp": row[OB_FILL_PROBABILITY]}

    def _manage_position(self, bar_idx: int, vd: float, valid: dict[str, float], ts: int,
                         ob_bar: tuple[np.ndarray, np.ndarray] | None) -> None:
        pos = self.position
        assert pos is not None
        price = valid.get(pos.asset, self.price_histories[pos.asset][-1])
        if self.posture == HIBERNATE:
            self._execute_exit(EXIT_HIBERNATE, price, bar_idx, ts, ob_bar)
            return
        if self.subday_exit:
            self._execute_exit(EXIT_SUBDAY_ACB, price, bar_idx, ts, ob_bar)
            return
        d = pos.direction
        pnl_pct = d * (price - pos.entry_price) / pos.entry_price
        c = self.cfg.champion
        tp, sl, max_hold = c.fixed_tp_pct, c.stop_pct, c.max_hold_bars
        ob = self._ob_asset(ob_bar, pos.asset)
        if ob is not None and ob_bar is not None:
            macro = ob_bar[1]
            tp, sl, max_hold = ob_dynamic_exit_params(tp, sl, max_hold, pnl_pct, macro[OB_CASCADE_COUNT],
                                                      macro[OB_REGIME_SIGNAL], d * ob["imb"], ob["wv"])
        x = self.cfg.exits
        if x.vd_enabled:
            pos.vd_adverse = pos.vd_adverse + 1 if (math.isfinite(vd) and -d * vd > x.vd_threshold) else 0
        reason = evaluate_exit(pnl_pct, bar_idx - pos.entry_bar, tp, sl, max_hold, pos.vd_adverse, x.vd_enabled,
                               x.vd_bars)
        if reason:
            self._execute_exit(reason, price, bar_idx, ts, ob_bar)

    def _execute_exit(self, reason: int, price: float, bar_idx: int, ts: int,
                      ob_bar: tuple[np.ndarray, np.ndarray] | None) -> None:
        pos = self.position
        assert pos is not None
        c, x, f = self.cfg.champion, self.cfg.exits, self.cfg.friction
        slip = exit_slippage(reason, x.tp_slippage, x.sl_slippage, x.other_slippage, f.use_sp_slippage,
                             c.sp_maker_exit_rate)
        exit_price = price * (1.0 - pos.direction * slip)
        pnl_pct_raw = pos.direction * (exit_price - pos.entry_price) / pos.entry_price
        edge_bps = c.ob_edge_bps if f.ob_edge else 0.0     # off when the venue fills (§8.3)
        ob = self._ob_asset(ob_bar, pos.asset)
        if ob is not None:
            if ob["dq"] > 0.5:
                pnl_pct_raw += ob["fp"] * edge_bps * 1e-4
        elif self.rng.random_sample() < c.ob_confirm_rate:
            pnl_pct_raw += edge_bps * 1e-4
        exit_fee = blended_fee_rate(c.sp_maker_exit_rate, f.maker_fee, f.taker_fee) * pos.notional \
            if f.use_sp_fees else 0.0
        net = pnl_pct_raw * pos.notional - pos.entry_fee - exit_fee
        self.capital += net
        self.peak = max(self.peak, self.capital)
        win = 1 if net > 0 else 0
        self.bucket_trades[pos.bucket] += 1
        self.bucket_wins[pos.bucket] += win
        self.outcomes.append(win)
        pos.exit_bar, pos.exit_ts, pos.exit_price = bar_idx, ts, exit_price
        pos.pnl, pos.pnl_pct, pos.exit_fee = net, pnl_pct_raw, exit_fee
        pos.exit_reason, pos.capital_after = EXIT_REASONS[reason], self.capital
        self.trades.append(pos)
        self.position = None
        self.last_exit_bar = bar_idx
        self.subday_exit = False

    def _rank(self, valid: dict[str, float], ob_bar: tuple[np.ndarray, np.ndarray] | None) -> list[dict[str, Any]]:
        rankings = []
        for a in self.assets:
            hist = self.price_histories[a]
            if a not in valid or len(hist) < I.IRP_WINDOW:
                continue
            seg = np.array(hist[-I.IRP_WINDOW:], dtype=float)
            best = None
            for direction in (self.direction, -self.direction):
                _, _, eff, align, noise, lat = compute_irp(seg, direction)
                ars = compute_ars(eff, align, noise)
                if best is None or ars > best["ars"]:
                    best = {"asset": a, "ars": ars, "action": direction, "alignment": align, "noise": noise,
                            "latency": lat}
            assert best is not None
            if best["noise"] > I.NOISE_MAX or best["latency"] > I.LATENCY_MAX or best["alignment"] < I.ALIGNMENT_MIN:
                continue
            ob = self._ob_asset(ob_bar, a)
            if ob is not None:
                best["ars"] = ob_ars_adjust(best["ars"], ob["dq"])
            rankings.append(best)
        return sorted(rankings, key=lambda r: -r["ars"])  # stable: ties keep asset order

    def _try_entry(self, bar_idx: int, vd: float, valid: dict[str, float], ts: int,
                   ob_bar: tuple[np.ndarray, np.ndarray] | None) -> None:
        c, f, e = self.cfg.champion, self.cfg.friction, self.cfg.extras
        signal = classify(vd, self.cfg)   # the one gate test the TUI shares (§4.1)
        if not signal.active:
            return
        trade_asset = None
        for r in self._rank(valid, ob_bar):
            if c.min_irp_alignment > 0 and r["alignment"] < c.min_irp_alignment:
                continue
            if r["action"] != self.direction:
                continue
            ob = self._ob_asset(ob_bar, r["asset"])
            if ob is not None and ob["dq"] < I.OB_DEPTH_MIN:
                continue
            trade_asset = r["asset"]
            break
        if trade_asset is None:
            return
        hist = self.price_histories[trade_asset]
        n = len(hist)
        verdict = DC_NEUTRAL
        if n >= c.dc_lookback_bars + 1:
            verdict = dc_verdict(hist[n - c.dc_lookback_bars - 1], hist[n - 1], c.dc_min_magnitude_bps,
                                 self.direction)
        if verdict == DC_CONTRADICT and c.dc_skip_contradicts:
            return
        confidence = signal_confidence(vd, self.threshold, self.extreme)
        ob = self._ob_asset(ob_bar, trade_asset)
        if ob is not None:
            confidence, skip = ob_confidence_adjust(confidence, ob["imb"], ob["pers"], self.direction)
            if skip:
                return
        strength = signal_strength(vd, self.threshold, self.extreme)
        extreme = signal is SignalState.EXTREME
        size_leverage = cubic_leverage(strength, c.min_leverage, c.max_leverage, c.leverage_convexity)
        bucket = signal_bucket(vd, self.threshold, self.extreme, self.direction)
        b_boost = bucket_boost(self.bucket_wins[bucket], self.bucket_trades[bucket], e.bucket_min_trades)
        last5 = self.outcomes[-5:]
        s_mult = streak_mult(sum(1 for w in last5 if w == 0), len(self.outcomes), e.streak_min_trades)
        trend = self.vel_div_history[-1] - self.vel_div_history[-10] if len(self.vel_div_history) >= 10 else math.nan
        t_mult = trend_mult(trend, self.direction)
        fraction = effective_fraction(strength, extreme, c.fraction, t_mult, b_boost, s_mult)
        market_mult = 1.0
        if ob_bar is not None:
            market_mult = market_ob_multiplier(ob_bar[1][OB_MARKET_IMBALANCE], self.direction)
        leverage = final_leverage(size_leverage, Z.DC_LEVERAGE_BOOST, self.rsm, market_mult, c.max_leverage,
                                  c.abs_max_leverage, c.min_leverage, self.posture == STALKER,
                                  self.cfg.survival.stalker_max_leverage)
        notional = self.capital * fraction * leverage
        entry_fee = blended_fee_rate(c.sp_maker_entry_rate, f.maker_fee, f.taker_fee) * notional \
            if f.use_sp_fees else 0.0
        self.trade_seq += 1
        self.position = RefTrade(trade_id=self.trade_seq, asset=trade_asset, direction=self.direction,
                                 entry_bar=bar_idx, entry_ts=ts, entry_price=valid[trade_asset], notional=notional,
                                 leverage=leverage, fraction=fraction, entry_fee=entry_fee, bucket=bucket,
                                 vel_div_entry=vd, confidence=confidence)
