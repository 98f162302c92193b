"""NDAlphaEngine (bible §13): the day/bar API around the numba bar-loop kernel.

The engine is pure: it never reads the clock, files or the network. Time arrives with
each bar (its timestamp and global index), daily inputs through `begin_day`, intra-day
ACB updates through `update_acb_boost`, posture through `begin_day`/`set_posture`.
Backtest, paper and live call the same methods, so they trade the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import msgspec
import numpy as np

from dolphin.engine.acb import AcbDay, AdaptiveCircuitBreaker
from dolphin.engine.codes import (
    EVENT_ENTRY,
    EXIT_REASONS,
    POSTURE_NAMES,
    TURTLE,
    posture_code,
)
from dolphin.engine.irp import IRP_WINDOW
from dolphin.engine.kernel import run_bars
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
    N_EVENT_FIELDS,
    RECENT_RING,
    SCALAR_DTYPE,
    VD_RING,
    param_vector,
)
from dolphin.engine.mc_gate import MC_OK, Forewarner, MCReport, MCVerdict, mc_verdict, verdict_from_status
from dolphin.engine.ob import OBProvider, empty_block
from dolphin.engine.params import StrategyConfig
from dolphin.engine.trades import BarResult, ClosedTrade, DayResult, OpenPosition
from dolphin.enums import PositionSide, Posture

STATE_VERSION = 1
SCALAR_FIELDS: tuple[str, ...] = tuple(SCALAR_DTYPE.names or ())
_UNIFORM_CHUNK = 4096


def side_name(direction: int) -> PositionSide:
    return PositionSide.of(direction)


class EngineState(msgspec.Struct, frozen=True):
    """Everything needed to resume the engine exactly: scalars by name, rings as raw float64/int64 bytes."""

    version: int
    assets: list[str]
    scalars: dict[str, float | int | bool]
    hist: bytes
    hist_n: bytes
    vd_ring: bytes
    w750_ring: bytes
    recent: bytes
    bucket_n: bytes
    bucket_w: bytes
    current_date: str | None
    day_start_capital: float
    day_trades: int
    day_bars: int
    mc_status: str
    direction_default: int
    mc_report: tuple[float, float] | None = None   # the standing MC report (catastrophic_prob, envelope_score)


class KernelState(NamedTuple):
    """The arrays the bar-loop kernel advances, as `run_bars` takes them (copies, not views)."""

    st: np.ndarray          # the scalar record (1,) of SCALAR_DTYPE
    params: np.ndarray      # the parameter vector of the current direction
    hist: np.ndarray
    hist_n: np.ndarray
    vd_ring: np.ndarray
    w750_ring: np.ndarray
    recent: np.ndarray
    bucket_n: np.ndarray
    bucket_w: np.ndarray


class NDAlphaEngine:
    """The alpha engine: signal + DC, IRP selection, sizing, exits, fees, ACB, posture, MC gate."""

    def __init__(self, cfg: StrategyConfig, assets: Sequence[str], *, acb: AdaptiveCircuitBreaker | None = None,
                 ob_provider: OBProvider | None = None, forewarner: Forewarner | None = None,
                 mc_base_cfg: Mapping[str, object] | None = None) -> None:
        if len(assets) == 0:
            raise ValueError("the engine needs at least one asset")
        if len(set(assets)) != len(assets):
            raise ValueError("asset names must be unique")
        self.cfg = cfg
        self.assets: list[str] = list(assets)
        self.asset_index = {a: i for i, a in enumerate(self.assets)}
        self.acb = acb
        self.ob_provider = ob_provider
        self.forewarner = forewarner
        self.mc_base_cfg = dict(mc_base_cfg or {})
        n = len(self.assets)
        self._st = np.zeros(1, dtype=SCALAR_DTYPE)
        self._hist: np.ndarray = np.zeros((n, HIST_LEN))
        self._hist_n: np.ndarray = np.zeros(n, dtype=np.int64)
        self._vd_ring: np.ndarray = np.full(VD_RING, np.nan)
        self._w750_ring: np.ndarray = np.full(cfg.acb.w750_history_bars, np.nan)
        self._recent: np.ndarray = np.zeros(RECENT_RING, dtype=np.int64)
        self._bucket_n: np.ndarray = np.zeros(N_BUCKETS, dtype=np.int64)
        self._bucket_w: np.ndarray = np.zeros(N_BUCKETS, dtype=np.int64)
        self._scratch = (np.zeros(IRP_WINDOW), np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n),
                         np.zeros(n, dtype=np.int64))
        self._rng = np.random.RandomState(cfg.champion.seed)
        self._uniforms = np.zeros(0)
        self._direction_default = cfg.direction_sign
        s = self._st[0]
        s["capital"] = cfg.initial_capital
        s["peak_capital"] = cfg.initial_capital
        s["day_base_boost"] = 1.0
        s["day_beta"] = 0.0
        s["day_mc_scale"] = 1.0
        s["regime_size_mult"] = 1.0
        s["last_exit_bar"] = -1
        s["posture"] = posture_code(Posture.APEX)
        s["direction"] = self._direction_default
        s["pos_asset"] = -1
        self._P = param_vector(cfg, self._direction_default)
        self.current_date: str | None = None
        self.day_start_capital = cfg.initial_capital
        self.day_trades = 0
        self.day_bars = 0
        self.mc: MCVerdict = MC_OK
        self.mc_report: MCReport | None = None   # the standing MC-Forewarner report (a trader's, from the bus)
        self.acb_day: AcbDay | None = None
        self.trades: list[ClosedTrade] = []

    # ------------------------------------------------------------------ read-only views
    @property
    def capital(self) -> float:
        return float(self._st[0]["capital"])

    @property
    def peak_capital(self) -> float:
        return float(self._st[0]["peak_capital"])

    @property
    def drawdown(self) -> float:
        peak = self.peak_capital
        return 0.0 if peak <= 0 else max(0.0, (peak - self.capital) / peak)

    @property
    def posture(self) -> Posture:
        return Posture(POSTURE_NAMES[int(self._st[0]["posture"])])

    @property
    def direction(self) -> int:
        return int(self._st[0]["direction"])

    @property
    def day_base_boost(self) -> float:
        return float(self._st[0]["day_base_boost"])

    @property
    def day_beta(self) -> float:
        return float(self._st[0]["day_beta"])

    @property
    def regime_size_mult(self) -> float:
        return float(self._st[0]["regime_size_mult"])

    @property
    def mc_gate_open(self) -> bool:
        return not bool(self._st[0]["halt_day"])

    @property
    def entries_halted(self) -> bool:
        s = self._st[0]
        return bool(s["halt_day"]) or bool(s["kill_switch"]) or int(s["posture"]) <= TURTLE

    def set_kill_switch(self, active: bool) -> None:
        """The operator's kill switch: no new entries while active; open positions are still managed."""
        self._st[0]["kill_switch"] = bool(active)

    @property
    def bar_count(self) -> int:
        return int(self._st[0]["bar_count"])

    @property
    def open_position(self) -> OpenPosition | None:
        s = self._st[0]
        if not s["pos_active"]:
            return None
        return OpenPosition(
            trade_id=int(s["pos_trade_id"]), asset=self.assets[int(s["pos_asset"])], side=side_name(int(s["pos_dir"])),
            entry_bar=int(s["pos_entry_bar"]), entry_ts=int(s["pos_entry_ts"]),
            entry_price=float(s["pos_entry_price"]), notional=float(s["pos_notional"]),
            leverage=float(s["pos_leverage"]), fraction=float(s["pos_fraction"]),
            entry_fee=float(s["pos_entry_fee"]), bucket=int(s["pos_bucket"]),
            vel_div_entry=float(s["pos_vd_entry"]), confidence=float(s["pos_confidence"]))

    def w750_history(self) -> np.ndarray:
        """The trailing w750 velocities, oldest first (what the ACB percentile sees)."""
        count = int(self._st[0]["w750_count"])
        size = self._w750_ring.shape[0]
        if count < size:
            return self._w750_ring[:count].copy()
        start = count % size
        return np.concatenate([self._w750_ring[start:], self._w750_ring[:start]])

    # ------------------------------------------------------------------ day lifecycle
    def begin_day(self, date: str, posture: str = Posture.APEX, direction: int | None = None,
                  ob_regime_signal: float = 0.0) -> AcbDay | None:
        """Start a trading day: direction, posture, ACB scales 1+3, MC gate (§13.1)."""
        s = self._st[0]
        d = self._direction_default if direction is None else (-1 if direction < 0 else 1)
        if d != int(s["direction"]):
            s["direction"] = d
            self._P = param_vector(self.cfg, d)
        s["posture"] = posture_code(posture)
        s["halt_day"] = False
        s["subday_exit_pending"] = False
        self.current_date = date
        self.day_start_capital = self.capital
        self.day_trades = 0
        self.day_bars = 0
        self.acb_day = None
        if self.acb is not None:
            self.acb_day = self.acb.day(date, self.w750_history(), ob_regime_signal)
            s["day_base_boost"] = self.acb_day.boost
            s["day_beta"] = self.acb_day.beta
        if self.forewarner is not None:
            mc_cfg = {**self.mc_base_cfg, "max_leverage": self.cfg.champion.max_leverage * self.day_base_boost}
            self.mc = mc_verdict(self.forewarner.assess_config_dict(mc_cfg))
        else:
            self.mc = mc_verdict(self.mc_report)   # the standing report carries over the day boundary
        s["day_mc_scale"] = self.mc.scale
        s["halt_day"] = self.mc.halt
        return self.acb_day

    def update_mc(self, report: MCReport | None) -> MCVerdict:
        """A new MC-Forewarner report (§12), applied from the next bar: ORANGE halves size, RED halts entries.

        It stands until the next report — across day boundaries too — so a trader's gate
        follows the forewarner daemon exactly as a replay of its journal does.
        """
        self.mc_report = report
        self.mc = mc_verdict(report)
        s = self._st[0]
        s["day_mc_scale"] = self.mc.scale
        s["halt_day"] = self.mc.halt
        return self.mc

    def end_day(self) -> DayResult:
        """Close the day's books; an open position carries over to the next day."""
        if self.current_date is None:
            raise RuntimeError("end_day() without begin_day()")
        return DayResult(date=self.current_date, pnl=self.capital - self.day_start_capital, capital=self.capital,
                         trades=self.day_trades, boost=self.day_base_boost, beta=self.day_beta,
                         mc_status=self.mc.status, posture=self.posture, bars=self.day_bars)

    def set_posture(self, posture: str) -> None:
        """Apply a posture change mid-day: TURTLE/HIBERNATE halt entries, HIBERNATE force-exits next bar."""
        self._st[0]["posture"] = posture_code(posture)

    def request_exit(self, asset: str | None = None) -> bool:
        """An operator's force exit: the open position (in `asset`, or any when None) exits at the next
        traded bar through the engine's own exit path, reason MANUAL. False when there is nothing to close."""
        s = self._st[0]
        if not s["pos_active"] or (asset is not None and self.assets[int(s["pos_asset"])] != asset):
            return False
        s["manual_exit_pending"] = True
        return True

    def update_acb_boost(self, boost: float, beta: float) -> bool:
        """A sub-day ACB update (§7.3, §10.5). Returns True when it schedules the normalisation exit.

        Call it at the top of a step (pending-flag pattern, §14.2): the exit, if any,
        happens inside the next `step_bar`, never in the middle of one.
        """
        if not (math.isfinite(boost) and math.isfinite(beta)) or boost <= 0 or beta < 0:
            raise ValueError(f"invalid ACB update boost={boost!r} beta={beta!r}")
        s = self._st[0]
        old = float(s["day_base_boost"])
        s["day_base_boost"] = boost
        s["day_beta"] = beta
        p = self.cfg.acb
        trigger = bool(s["pos_active"]) and old >= p.subday_exit_old_boost and boost < p.subday_exit_new_boost
        if trigger:
            s["subday_exit_pending"] = True
        return trigger

    # ------------------------------------------------------------------ bars
    def _price_row(self, prices: np.ndarray | Mapping[str, float]) -> np.ndarray:
        if isinstance(prices, Mapping):
            row = np.full(len(self.assets), np.nan)
            for name, value in prices.items():
                i = self.asset_index.get(name)
                if i is not None:
                    row[i] = value
            return row
        row = np.asarray(prices, dtype=np.float64)
        if row.shape != (len(self.assets),):
            raise ValueError(f"prices must have one value per engine asset ({len(self.assets)}), got {row.shape}")
        return row

    def _ensure_uniforms(self, n_more: int) -> None:
        need = int(self._st[0]["rng_index"]) + n_more
        if self._uniforms.shape[0] < need:
            extra = max(_UNIFORM_CHUNK, need - self._uniforms.shape[0])
            self._uniforms = np.concatenate([self._uniforms, self._rng.random_sample(extra)])

    def run_block(self, bar_idx: np.ndarray, ts_ms: np.ndarray, vel_div: np.ndarray, v750: np.ndarray,
                  vol_ok: np.ndarray, prices: np.ndarray,
                  trade: bool = True) -> tuple[list[OpenPosition], list[ClosedTrade]]:
        """Advance over a block of bars (arrays aligned on bars; prices (n_bars, n_assets)).

        ``trade=False`` only feeds the histories (warm-up on archived history, stale scans):
        the bars feed the price, vel_div and w750 histories and the bar count, but no exit
        or entry is evaluated — an open position waits for the next traded bar.
        """
        if self.current_date is None:
            raise RuntimeError("begin_day() must be called before bars are processed")
        n = int(bar_idx.shape[0])
        if n == 0:
            return [], []
        prices = np.ascontiguousarray(prices, dtype=np.float64)
        if prices.shape != (n, len(self.assets)):
            raise ValueError(f"prices must be ({n}, {len(self.assets)}), got {prices.shape}")
        self._ensure_uniforms(n)
        if self.ob_provider is not None:
            block = self.ob_provider.block(np.asarray(ts_ms, dtype=np.int64), self.assets)
        else:
            block = empty_block(n, len(self.assets))
        events = np.empty((2 * n + 2, N_EVENT_FIELDS))
        seg, keys, order, align, action = self._scratch
        n_ev = run_bars(self._st, self._P, self._hist, self._hist_n, self._vd_ring, self._w750_ring, self._recent,
                        self._bucket_n, self._bucket_w, self._uniforms,
                        np.ascontiguousarray(bar_idx, dtype=np.int64), np.ascontiguousarray(ts_ms, dtype=np.int64),
                        np.ascontiguousarray(vel_div, dtype=np.float64), np.ascontiguousarray(v750, dtype=np.float64),
                        np.ascontiguousarray(vol_ok, dtype=np.bool_), prices, self.ob_provider is not None,
                        block.asset, block.macro, events, seg, keys, order, align, action, trade)
        self.day_bars += n
        return self._decode_events(events[:n_ev])

    def step_bar(self, bar_idx: int, vel_div: float, prices: np.ndarray | Mapping[str, float], v50_vel: float,
                 v750_vel: float, vol_regime_ok: bool, ts_ms: int = 0, trade: bool = True) -> BarResult:
        """One live bar (§14.1 ⑦). ``prices`` is aligned on `assets` or a symbol → price mapping.

        ``v50_vel`` is accepted for API parity with the bible; vel_div already carries it.
        """
        row = self._price_row(prices)
        entries, exits = self.run_block(np.array([bar_idx], dtype=np.int64), np.array([ts_ms], dtype=np.int64),
                                        np.array([vel_div], dtype=np.float64), np.array([v750_vel], dtype=np.float64),
                                        np.array([bool(vol_regime_ok)]), row[None, :], trade=trade)
        return BarResult(bar_idx=bar_idx, entries=entries, exits=exits, capital=self.capital,
                         regime_size_mult=self.regime_size_mult)

    def process_day(self, date: str, bar_idx: np.ndarray, ts_ms: np.ndarray, vel_div: np.ndarray,
                    v750: np.ndarray, vol_ok: np.ndarray, prices: np.ndarray, posture: str = Posture.APEX,
                    direction: int | None = None) -> DayResult:
        """begin_day → every bar of the day in one kernel call → end_day (§13.1)."""
        self.begin_day(date, posture=posture, direction=direction)
        self.run_block(bar_idx, ts_ms, vel_div, v750, vol_ok, prices)
        return self.end_day()

    def _decode_events(self, events: np.ndarray) -> tuple[list[OpenPosition], list[ClosedTrade]]:
        entries: list[OpenPosition] = []
        exits: list[ClosedTrade] = []
        for row in events:
            asset = self.assets[int(row[E_ASSET])]
            side = side_name(int(row[E_DIR]))
            if int(row[E_KIND]) == EVENT_ENTRY:
                entries.append(OpenPosition(
                    trade_id=int(row[E_TRADE_ID]), asset=asset, side=side, entry_bar=int(row[E_ENTRY_BAR]),
                    entry_ts=int(row[E_ENTRY_TS]), entry_price=float(row[E_ENTRY_PRICE]),
                    notional=float(row[E_NOTIONAL]), leverage=float(row[E_LEVERAGE]),
                    fraction=float(row[E_FRACTION]), entry_fee=float(row[E_ENTRY_FEE]), bucket=int(row[E_BUCKET]),
                    vel_div_entry=float(row[E_VD_ENTRY]), confidence=float(row[E_CONFIDENCE])))
                continue
            trade = ClosedTrade(
                trade_id=int(row[E_TRADE_ID]), asset=asset, side=side, entry_bar=int(row[E_ENTRY_BAR]),
                entry_ts=int(row[E_ENTRY_TS]), entry_price=float(row[E_ENTRY_PRICE]), exit_bar=int(row[E_BAR]),
                exit_ts=int(row[E_TS]), exit_price=float(row[E_EXIT_PRICE]), notional=float(row[E_NOTIONAL]),
                leverage=float(row[E_LEVERAGE]), fraction=float(row[E_FRACTION]), pnl=float(row[E_PNL]),
                pnl_pct=float(row[E_PNL_PCT]), entry_fee=float(row[E_ENTRY_FEE]), exit_fee=float(row[E_EXIT_FEE]),
                exit_reason=EXIT_REASONS[int(row[E_REASON])], bars_held=int(row[E_BARS_HELD]),
                bucket=int(row[E_BUCKET]), vel_div_entry=float(row[E_VD_ENTRY]),
                confidence=float(row[E_CONFIDENCE]), capital_after=float(row[E_CAPITAL]))
            exits.append(trade)
            self.trades.append(trade)
            self.day_trades += 1
        return entries, exits

    # ------------------------------------------------------------------ venue fills (bible §8.3)
    def apply_entry_fill(self, trade_id: int, price: float, quantity: float, fee: float) -> OpenPosition:
        """The venue filled the entry of the open position: its price, notional and fee become the fill's.

        From the next bar on, take-profit, stop and every exit rule act on what actually
        happened; the fee is settled with the trade at its exit (as the engine's own are).
        """
        s = self._st[0]
        if not s["pos_active"] or int(s["pos_trade_id"]) != trade_id:
            raise ValueError(f"no open position with trade id {trade_id} to apply an entry fill to")
        if not (price > 0 and quantity > 0 and fee >= 0):
            raise ValueError(f"entry fill of trade {trade_id}: price {price}, quantity {quantity}, fee {fee}")
        s["pos_entry_price"] = price
        s["pos_notional"] = price * quantity
        s["pos_entry_fee"] = fee
        position = self.open_position
        assert position is not None
        return position

    def apply_exit_fill(self, trade: ClosedTrade, price: float, fee: float) -> ClosedTrade:
        """The venue filled the exit of the trade that just closed: its exit price, fees and PnL become the fill's.

        Capital moves by the difference between the venue's and the engine's PnL; the peak
        is recomputed from the peak the position opened with; and a trade whose sign flips
        (a win by the engine's price, a loss at the venue's) moves its bucket and streak
        outcome too, so sizing acts on what actually happened.
        """
        s = self._st[0]
        if not self.trades or self.trades[-1].trade_id != trade.trade_id or s["pos_active"]:
            raise ValueError(f"trade {trade.trade_id} is not the engine's last closed trade")
        if not (price > 0 and fee >= 0):
            raise ValueError(f"exit fill of trade {trade.trade_id}: price {price}, fee {fee}")
        sign = PositionSide(trade.side).sign
        pnl_pct = sign * (price - trade.entry_price) / trade.entry_price
        pnl = pnl_pct * trade.notional - trade.entry_fee - fee
        capital = float(s["capital"]) + (pnl - trade.pnl)
        s["capital"] = capital
        s["peak_capital"] = max(float(s["pos_peak_capital"]), capital)
        was_win, is_win = trade.pnl > 0.0, pnl > 0.0
        if was_win != is_win and 0 <= trade.bucket < N_BUCKETS:
            self._bucket_w[trade.bucket] += 1 if is_win else -1
            self._recent[(int(s["n_closed"]) - 1) % RECENT_RING] = int(is_win)
        amended = msgspec.structs.replace(trade, exit_price=price, exit_fee=fee, pnl=pnl, pnl_pct=pnl_pct,
                                          capital_after=capital)
        self.trades[-1] = amended
        return amended

    def void_entry(self, trade_id: int) -> None:
        """The venue never filled the entry of the open position (refused, unfilled): it never existed.

        Capital is untouched (the engine settles fees at the exit); the trade id stays used,
        and the bar counts as the last exit's bar, so the engine does not re-enter on it.
        """
        s = self._st[0]
        if not s["pos_active"] or int(s["pos_trade_id"]) != trade_id:
            raise ValueError(f"no open position with trade id {trade_id} to void")
        s["pos_active"] = False
        s["pos_asset"] = -1
        s["last_exit_bar"] = s["pos_entry_bar"]
        s["subday_exit_pending"] = False
        s["manual_exit_pending"] = False

    def apply_cash(self, amount: float) -> None:
        """A cash flow the venue booked outside a trade (funding): capital, and the peak when it rises."""
        if not math.isfinite(amount):
            raise ValueError(f"cash flow {amount} is not finite")
        s = self._st[0]
        s["capital"] = float(s["capital"]) + amount
        s["peak_capital"] = max(float(s["peak_capital"]), float(s["capital"]))
        if s["pos_active"]:
            s["pos_peak_capital"] = max(float(s["pos_peak_capital"]), float(s["capital"]))

    # ------------------------------------------------------------------ state
    def kernel_state(self) -> KernelState:
        """Copies of the kernel's arrays: the starting point a Monte-Carlo replicates per path.

        The MC-Forewarner (`dolphin.backtest.montecarlo`) builds one engine, lets it warm
        and take the day's ACB state through this class's own methods, then advances a
        copy of these arrays per path with the same `run_bars` — one implementation.
        """
        return KernelState(self._st.copy(), self._P.copy(), self._hist.copy(), self._hist_n.copy(),
                           self._vd_ring.copy(), self._w750_ring.copy(), self._recent.copy(), self._bucket_n.copy(),
                           self._bucket_w.copy())

    def get_state(self) -> EngineState:
        """A complete, exact snapshot (capital, histories, open position, RNG position, day books)."""
        rec = self._st[0]
        scalars = {name: rec[name].item() for name in SCALAR_FIELDS}
        return EngineState(
            version=STATE_VERSION, assets=list(self.assets), scalars=scalars,
            hist=self._hist.tobytes(), hist_n=self._hist_n.tobytes(), vd_ring=self._vd_ring.tobytes(),
            w750_ring=self._w750_ring.tobytes(), recent=self._recent.tobytes(), bucket_n=self._bucket_n.tobytes(),
            bucket_w=self._bucket_w.tobytes(), current_date=self.current_date,
            day_start_capital=self.day_start_capital, day_trades=self.day_trades, day_bars=self.day_bars,
            mc_status=self.mc.status, direction_default=self._direction_default,
            mc_report=None if self.mc_report is None else (self.mc_report.catastrophic_probability,
                                                           self.mc_report.envelope_score))

    def restore_state(self, state: EngineState) -> None:
        """Resume from `get_state`; the engine must have been built with the same assets and config."""
        if state.version != STATE_VERSION:
            raise ValueError(f"engine state version {state.version} is not {STATE_VERSION}")
        if list(state.assets) != self.assets:
            raise ValueError("engine state was taken with a different asset list")
        if set(state.scalars) != set(SCALAR_FIELDS):
            raise ValueError("engine state scalars do not match this engine's layout")
        n = len(self.assets)
        arrays = {
            "hist": (np.float64, (n, HIST_LEN)), "hist_n": (np.int64, (n,)), "vd_ring": (np.float64, (VD_RING,)),
            "w750_ring": (np.float64, self._w750_ring.shape), "recent": (np.int64, (RECENT_RING,)),
            "bucket_n": (np.int64, (N_BUCKETS,)), "bucket_w": (np.int64, (N_BUCKETS,)),
        }
        decoded: dict[str, np.ndarray] = {}
        for name, (dtype, shape) in arrays.items():
            raw = np.frombuffer(getattr(state, name), dtype=dtype)
            if raw.size != int(np.prod(shape)):
                raise ValueError(f"engine state field {name} has {raw.size} values, expected {int(np.prod(shape))}")
            decoded[name] = raw.reshape(shape).copy()
        rec = self._st[0]
        for name in SCALAR_FIELDS:
            rec[name] = state.scalars[name]
        self._hist, self._hist_n, self._vd_ring = decoded["hist"], decoded["hist_n"], decoded["vd_ring"]
        self._w750_ring, self._recent = decoded["w750_ring"], decoded["recent"]
        self._bucket_n, self._bucket_w = decoded["bucket_n"], decoded["bucket_w"]
        self._direction_default = state.direction_default
        self._P = param_vector(self.cfg, int(rec["direction"]))
        self._rng = np.random.RandomState(self.cfg.champion.seed)
        self._uniforms = np.zeros(0)
        self._ensure_uniforms(0)
        self.current_date = state.current_date
        self.day_start_capital = state.day_start_capital
        self.day_trades = state.day_trades
        self.day_bars = state.day_bars
        self.mc = verdict_from_status(state.mc_status)
        self.mc_report = None if state.mc_report is None else MCReport(*state.mc_report)


def encode_state(state: EngineState) -> bytes:
    """JSON bytes of an engine state (rings base64-encoded); what the journal and the bus carry."""
    return msgspec.json.encode(state)


def decode_state(data: bytes | str) -> EngineState:
    return msgspec.json.decode(data, type=EngineState)


def compile_kernel() -> None:
    """Compile (or load from numba's cache) the bar-loop kernel before the first real bar.

    A fresh machine compiles for several seconds; callers that time the engine or serve
    live bars call this first, off the clock. It runs one bar through a throwaway engine.
    """
    engine = NDAlphaEngine(StrategyConfig(), ["WARMUP"])
    engine.begin_day("1970-01-01")
    engine.run_block(np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), np.full(1, np.nan), np.zeros(1),
                     np.zeros(1, dtype=bool), np.ones((1, 1)))
