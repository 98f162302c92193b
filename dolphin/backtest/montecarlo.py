"""MC-Forewarner (bible §12, §28.6): a Monte-Carlo of DOLPHIN's own engine over resampled recent history.

The bible's forewarner is an opaque pretrained model. This one is transparent: it runs
the real engine — `NDAlphaEngine` builds and warms the starting state, its numba
kernel `run_bars` advances every path — over many paths resampled from recent market
history, and reports how often the engine's capital breaches a drawdown limit.

Per assessment:

1. **History** (`prepare_history`): the last `history_days` of a scan table (the
   trader's Arrow archive, or scans built from klines) on its bar grid. Per bar it
   keeps vel_div, the w750 velocity and the volatility gate (`vol_regime_ok` on the
   reference asset, the same trailing gate the backtest and the trader use), and per
   asset its price (gaps forward-filled for levels, the archive's validity kept as a
   mask). Assets priced on fewer than half the bars are dropped.
2. **Paths** (moving-block bootstrap): each path is `horizon_days` of bars made of
   blocks of `block_minutes` of consecutive history rows, drawn uniformly among the
   block starts that are fully usable (vel_div defined, volatility gate calibrated, no
   gap in the bar grid). A block carries every input of its bars jointly — vel_div,
   w750, vol_ok and all asset returns — so the signal keeps its relation to the moves
   that follow it. Prices are re-levelled at each block start (each asset continues
   from the path's last price with the block's own returns), so a path has no jumps.
3. **Parameters** (`Jitter`): each path runs the day's config with a uniform relative
   jitter on max_leverage, fraction, take-profit, the entry threshold and max hold,
   clipped to each field's valid range (`params.spec`). The engine runs with the day's
   ACB base boost and beta (`update_acb_boost`, as the trader does), so the leverage
   ceiling it assesses is §12's `max_leverage × base_boost` (× the Scale-2 term).
4. **Engine**: one `NDAlphaEngine` warms on the last `warmup_bars` of real history (no
   trading) and takes the boost; its kernel arrays (`kernel_state`) are the starting
   point of every path. Paths run in parallel (numba `prange`, all cores), each with
   its own copy of the state, its own parameters and its own seeded stream for the
   engine's legacy OB-edge draw (the k-th exit of a path takes the k-th draw of its
   stream, however the path is cut into kernel calls).
5. **Outcome per path**: the maximum peak-to-trough drawdown of the engine's capital
   (booked at each closed trade, from the path's starting capital), its final return
   and its trade count.

Report (definitions, also in docs/mcfw.md):

* ``catastrophic_prob`` — the share of paths whose max drawdown reaches
  `drawdown_limit` (default 12 %: the Cat5 midpoint, where the survival stack's capital
  sensor alone takes Rm to 0.5 and the trader leaves APEX for TURTLE/HIBERNATE).
* ``envelope_score`` — ``1 − median(max drawdown) / drawdown_limit``: the typical path's
  margin inside the envelope, in units of the limit. 1 = the median path never drew
  down; 0 = the median path sits on the limit; negative = outside (−1 = twice the
  limit). §12's gate reads < 0 as ORANGE and < −1 as RED.
* ``status`` — §28.6 on the probability: GREEN < 0.10 ≤ ORANGE < 0.30 ≤ RED.
* Too little history → ``FALLBACK_NO_DATA`` (ORANGE, 0.20, 0.80; §28.6), never random.

Determinism: path i draws its blocks, its jitter and its RNG seed from the i-th child
of ``SeedSequence(seed)``, so the same history and seed give the same report, whatever
the number of threads, and the first k paths of a larger run equal a k-path run.

Pure: no files, no clock, no network. The service (`dolphin.services.mcfw`) reads the
archive and the bus and publishes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

import numba as nb
import numpy as np

from dolphin.engine.codes import EVENT_EXIT
from dolphin.engine.engine import KernelState, NDAlphaEngine
from dolphin.engine.irp import IRP_WINDOW
from dolphin.engine.kernel import run_bars
from dolphin.engine.layout import E_CAPITAL, E_KIND, N_EVENT_FIELDS, param_vector
from dolphin.engine.mc_gate import status_for_probability
from dolphin.engine.ob import OB_ASSET_FIELDS, OB_MACRO_FIELDS
from dolphin.engine.params import ChampionParams, LongParams, StrategyConfig
from dolphin.enums import McSource, McStatus
from dolphin.scan.table import ScanTable
from dolphin.scan.volatility import vol_regime_ok

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
#: §28.6: what a forewarner that cannot assess says — a conservative ORANGE, never a random number.
FALLBACK_PROB = 0.20
FALLBACK_ENVELOPE = 0.80
MIN_COVERAGE = 0.5          # an asset priced on fewer bars than this share is left out of the paths
GAP_FACTOR = 3              # consecutive bars further apart than this many bar lengths are a gap
MAX_JITTER = 0.5


class InsufficientHistory(ValueError):
    """The history cannot support an assessment (too short, no asset, no usable block)."""


class McCancelled(Exception):
    """The caller asked the assessment to stop (a service shutting down) between batches of paths."""


# ---------------------------------------------------------------- settings
@dataclass(frozen=True, slots=True)
class Jitter:
    """Relative half-widths of the per-path uniform parameter jitter (0 leaves a parameter as configured).

    ``threshold`` is the entry threshold of the config's direction (vel_div_threshold
    for SHORT, long_threshold for LONG); it never crosses the extreme level.
    """

    max_leverage: float = 0.10
    fraction: float = 0.10
    fixed_tp_pct: float = 0.15
    threshold: float = 0.10
    max_hold_bars: float = 0.15

    def __post_init__(self) -> None:
        for f in fields(self):
            w = getattr(self, f.name)
            if not (isinstance(w, (int, float)) and math.isfinite(w) and 0.0 <= w <= MAX_JITTER):
                raise ValueError(f"jitter {f.name}={w!r} must be in [0, {MAX_JITTER}]")

    @property
    def width(self) -> int:
        return len(fields(self))


@dataclass(frozen=True, slots=True)
class McSettings:
    """How one assessment runs (the services config's `mcfw:` section and `dolphin mc run` flags)."""

    paths: int = 1000
    horizon_days: float = 7.0
    history_days: float = 14.0
    block_minutes: float = 60.0
    drawdown_limit: float = 0.12
    min_history_hours: float = 24.0
    seed: int = 12
    warmup_bars: int = 1000
    chunk_bars: int = 4096
    batch_paths: int = 100      # paths per parallel kernel call: the granularity of progress and cancellation
    jitter: Jitter = field(default_factory=Jitter)

    def __post_init__(self) -> None:
        checks = [
            (self.paths >= 1, "paths must be >= 1"),
            (0 < self.horizon_days <= 365, "horizon_days must be in (0, 365]"),
            (0 < self.history_days <= 3650, "history_days must be in (0, 3650]"),
            (self.block_minutes > 0, "block_minutes must be > 0"),
            (0 < self.drawdown_limit < 1, "drawdown_limit must be in (0, 1)"),
            (self.min_history_hours >= 0, "min_history_hours must be >= 0"),
            (0 <= self.seed < 2**63, "seed must be in [0, 2^63)"),
            (self.warmup_bars >= 0, "warmup_bars must be >= 0"),
            (self.chunk_bars >= 1, "chunk_bars must be >= 1"),
            (self.batch_paths >= 1, "batch_paths must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def set_threads(threads: int) -> int:
    """Use ``threads`` numba threads for the paths in the calling thread (0 = every core); returns the count.

    numba's thread count is per calling thread, so a service sets it on the worker
    thread that runs the assessment.
    """
    available = int(nb.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    count = available if threads <= 0 else min(threads, available)
    nb.set_num_threads(count)
    return count


# ---------------------------------------------------------------- history
@dataclass(frozen=True, slots=True)
class McHistory:
    """Recent history on one bar grid, ready to be resampled (rows in time order)."""

    assets: tuple[str, ...]
    ts: np.ndarray            # int64 ms
    bar_ms: int
    vel_div: np.ndarray
    v750: np.ndarray
    vol_ok: np.ndarray        # bool
    filled: np.ndarray        # (rows, assets) prices, gaps forward- (then back-) filled: the levels
    valid: np.ndarray         # (rows, assets) bool: the archive had a valid price there
    usable_from: int          # first row a block may start at (vel_div defined, vol gate calibrated)
    gap_before: np.ndarray    # bool (rows,): row r follows a gap in the bar grid

    @property
    def rows(self) -> int:
        return int(self.ts.shape[0])

    @property
    def usable_bars(self) -> int:
        return max(0, self.rows - self.usable_from)

    @property
    def span_ms(self) -> int:
        return int(self.ts[-1] - self.ts[0]) + self.bar_ms if self.rows else 0

    def bars_for(self, ms: float) -> int:
        """How many bars of this grid cover ``ms`` milliseconds (at least 1)."""
        return max(1, int(round(ms / self.bar_ms)))

    def block_candidates(self, block_bars: int) -> np.ndarray:
        """Rows a block of ``block_bars`` may start at: usable, inside the history, crossing no gap."""
        last = self.rows - block_bars
        first = max(1, self.usable_from)
        if last < first:
            return np.zeros(0, dtype=np.int64)
        gaps = np.concatenate([[0], np.cumsum(self.gap_before.astype(np.int64))])   # gaps[r] = gaps before row r
        starts = np.arange(first, last + 1, dtype=np.int64)
        # a block [s, s+B) is whole when no row in (s-1, s+B) follows a gap: its levels chain from row s-1
        clean = gaps[starts + block_bars] - gaps[starts] == 0
        return starts[clean]

    def engine_prices(self, rows: slice) -> np.ndarray:
        """Prices as the archive had them (NaN where it had none), for the engine's warm-up."""
        return np.where(self.valid[rows], self.filled[rows], np.nan)


def _fill(prices: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Forward-fill each column's invalid cells, then back-fill the leading ones (no NaN left)."""
    rows = prices.shape[0]
    idx = np.where(valid, np.arange(rows)[:, None], -1)
    np.maximum.accumulate(idx, axis=0, out=idx)
    first = valid.argmax(axis=0)
    idx = np.where(idx < 0, first[None, :], idx)
    return np.take_along_axis(prices, idx, axis=0)


def prepare_history(table: ScanTable, cfg: StrategyConfig, history_days: float) -> McHistory:
    """The last ``history_days`` of ``table`` as resampling material (raises InsufficientHistory)."""
    if table.rows < 2:
        raise InsufficientHistory(f"{table.rows} scan(s): too few to resample")
    assets = list(table.assets)
    ref = cfg.extras.vol_reference if cfg.extras.vol_reference in assets else assets[0]
    dvol, vol_ok = vol_regime_ok(table.prices[:, assets.index(ref)], cfg.extras.vol_window,
                                 cfg.extras.vol_percentile, cfg.extras.vol_calib_bars)
    start = int(np.searchsorted(table.ts, int(table.ts[-1]) - int(history_days * MS_PER_DAY), side="right"))
    ts = np.ascontiguousarray(table.ts[start:], dtype=np.int64)
    if ts.shape[0] < 2:
        raise InsufficientHistory(f"{ts.shape[0]} scan(s) in the last {history_days:g} days: too few to resample")
    steps = np.diff(ts)
    bar_ms = int(np.median(steps))
    if bar_ms <= 0:
        raise InsufficientHistory("scan times do not increase")
    prices = np.ascontiguousarray(table.prices[start:], dtype=np.float64)
    valid = np.isfinite(prices) & (prices > 0)
    keep = valid.mean(axis=0) >= MIN_COVERAGE
    if not keep.any():
        raise InsufficientHistory(f"no asset is priced on at least {MIN_COVERAGE:.0%} of the scans")
    prices, valid = prices[:, keep], valid[:, keep]
    finite_dvol = np.isfinite(dvol[start:])
    # the gate is calibrated once `calib_bars` finite dvol values precede the bar (counted over the whole table)
    before = np.cumsum(np.isfinite(dvol)) - np.isfinite(dvol)
    calibrated = before[start:] >= cfg.extras.vol_calib_bars
    usable = np.isfinite(table.vel_div[start:]) & calibrated & finite_dvol
    usable_from = int(np.argmax(usable)) if usable.any() else ts.shape[0]
    gap_before = np.concatenate([[False], steps > GAP_FACTOR * bar_ms])
    return McHistory(
        assets=tuple(a for a, k in zip(assets, keep, strict=True) if k), ts=ts, bar_ms=bar_ms,
        vel_div=np.ascontiguousarray(table.vel_div[start:], dtype=np.float64),
        v750=np.ascontiguousarray(table.v750_lambda_max_velocity[start:], dtype=np.float64),
        vol_ok=np.ascontiguousarray(vol_ok[start:], dtype=np.bool_), filled=np.ascontiguousarray(_fill(prices, valid)),
        valid=np.ascontiguousarray(valid), usable_from=usable_from, gap_before=gap_before)


# ---------------------------------------------------------------- parameter jitter
def _bounded(cls: type, name: str, value: float) -> float:
    """``value`` clipped to the field's valid range (its `spec` metadata)."""
    meta = next(f.metadata for f in fields(cls) if f.name == name)
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None:
        value = max(value, float(lo))
    if hi is not None:
        value = min(value, float(hi))
    return value


def jitter_config(cfg: StrategyConfig, jitter: Jitter, u: np.ndarray) -> StrategyConfig:
    """The config of one path: each jittered value is ``base × (1 + width × u_k)``, u_k in [−1, 1], clipped.

    Clipping keeps every value in its field's valid range, max_leverage at or above
    min_leverage, max hold at least one bar, and the entry threshold at most halfway
    to the extreme level (so it never crosses it).
    """
    if u.shape != (jitter.width,):
        raise ValueError(f"jitter draws must be {jitter.width} numbers, got shape {u.shape}")
    u = np.clip(u, -1.0, 1.0)
    c = cfg.champion
    max_lev = _bounded(ChampionParams, "max_leverage", c.max_leverage * (1.0 + jitter.max_leverage * u[0]))
    max_lev = max(max_lev, c.min_leverage)
    fraction = _bounded(ChampionParams, "fraction", c.fraction * (1.0 + jitter.fraction * u[1]))
    tp = _bounded(ChampionParams, "fixed_tp_pct", c.fixed_tp_pct * (1.0 + jitter.fixed_tp_pct * u[2]))
    hold = int(round(_bounded(ChampionParams, "max_hold_bars", c.max_hold_bars * (1.0 + jitter.max_hold_bars * u[4]))))
    hold = max(1, hold)
    threshold, extreme = cfg.signal_threshold, cfg.signal_extreme
    delta = threshold * jitter.threshold * u[3]
    room = abs(extreme - threshold) / 2.0
    delta = min(max(delta, -room), room)
    if cfg.direction == "short":
        new_t = _bounded(ChampionParams, "vel_div_threshold", threshold + delta)
        champion = replace(c, max_leverage=max_lev, fraction=fraction, fixed_tp_pct=tp, max_hold_bars=hold,
                           vel_div_threshold=new_t)
        return replace(cfg, champion=champion)
    new_t = _bounded(LongParams, "long_threshold", threshold + delta)
    champion = replace(c, max_leverage=max_lev, fraction=fraction, fixed_tp_pct=tp, max_hold_bars=hold)
    return replace(cfg, champion=champion, long=replace(cfg.long, long_threshold=new_t))


# ---------------------------------------------------------------- the paths
@dataclass(frozen=True, slots=True)
class PathPlan:
    """Everything random about the paths, drawn up front from the seed (path i from child i)."""

    starts: np.ndarray        # (paths, blocks) int64 history rows
    jitter_u: np.ndarray      # (paths, jitter width) in [−1, 1]
    rng_seeds: np.ndarray     # (paths,) int64 seeds of each path's OB-edge stream


def draw_plan(paths: int, blocks: int, candidates: np.ndarray, seed: int, jitter_width: int) -> PathPlan:
    if candidates.size == 0:
        raise InsufficientHistory("no block of the history is usable")
    starts = np.empty((paths, blocks), dtype=np.int64)
    u = np.empty((paths, jitter_width))
    seeds = np.empty(paths, dtype=np.int64)
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(paths)):
        g = np.random.Generator(np.random.PCG64(child))
        starts[i] = candidates[g.integers(0, candidates.size, blocks)]
        u[i] = g.uniform(-1.0, 1.0, jitter_width)
        seeds[i] = g.integers(0, 2**32)
    return PathPlan(starts, u, seeds)


@dataclass(frozen=True, slots=True)
class PathOutcomes:
    """Per path: maximum drawdown of capital, final return, closed trades."""

    max_drawdown: np.ndarray
    final_return: np.ndarray
    trades: np.ndarray

    def __post_init__(self) -> None:
        n = self.max_drawdown.shape[0]
        if self.final_return.shape != (n,) or self.trades.shape != (n,):
            raise ValueError("outcome arrays must have one value per path")


@nb.njit(parallel=True, nogil=True, cache=True)
def _simulate(st0, hist0, hist_n0, vd0, w750_0, recent0, bucket_n0, bucket_w0, params,
              filled, valid, vel_div, v750, vol_ok, starts, rng_seeds, block_bars, horizon_bars, chunk_bars,
              bar0, ts0, bar_ms, ob_asset, ob_macro, out_dd, out_ret, out_trades):   # pragma: no cover - numba
    """Advance every path with `run_bars` (one path per prange iteration, its own copy of the state)."""
    n_paths = params.shape[0]
    n_assets = filled.shape[1]
    last = filled.shape[0] - 1
    n_uniform = chunk_bars // 2 + 2      # at most one exit per two bars, plus slack
    for i in nb.prange(n_paths):
        st = st0.copy()
        p = params[i].copy()
        hist = hist0.copy()
        hist_n = hist_n0.copy()
        vd_ring = vd0.copy()
        w750_ring = w750_0.copy()
        recent = recent0.copy()
        bucket_n = bucket_n0.copy()
        bucket_w = bucket_w0.copy()
        seg = np.zeros(IRP_WINDOW)
        keys = np.zeros(n_assets)
        order = np.zeros(n_assets, dtype=np.int64)
        align = np.zeros(n_assets)
        action = np.zeros(n_assets, dtype=np.int64)
        np.random.seed(rng_seeds[i])
        uniforms = np.random.random(n_uniform)
        events = np.empty((2 * chunk_bars + 2, N_EVENT_FIELDS))
        level = filled[last].copy()
        scale = np.ones(n_assets)
        capital0 = st[0].capital
        peak = capital0
        max_dd = 0.0
        trades = 0
        done = 0
        while done < horizon_bars:
            n = min(chunk_bars, horizon_bars - done)
            prices = np.empty((n, n_assets))
            bar_idx = np.empty(n, dtype=np.int64)
            ts = np.empty(n, dtype=np.int64)
            vd = np.empty(n)
            w = np.empty(n)
            ok = np.empty(n, dtype=np.bool_)
            for k in range(n):
                pb = done + k
                b = pb // block_bars
                o = pb - b * block_bars
                r = starts[i, b] + o
                if o == 0:   # a new block: each asset continues from the path's last level
                    for a in range(n_assets):
                        scale[a] = level[a] / filled[r - 1, a]
                for a in range(n_assets):
                    px = filled[r, a] * scale[a]
                    level[a] = px
                    prices[k, a] = px if valid[r, a] else np.nan
                bar_idx[k] = bar0 + pb
                ts[k] = ts0 + pb * bar_ms
                vd[k] = vel_div[r]
                w[k] = v750[r]
                ok[k] = vol_ok[r]
            st[0].rng_index = 0
            n_ev = run_bars(st, p, hist, hist_n, vd_ring, w750_ring, recent, bucket_n, bucket_w, uniforms,
                            bar_idx, ts, vd, w, ok, prices, False, ob_asset, ob_macro, events,
                            seg, keys, order, align, action, True)
            used = st[0].rng_index
            if used > 0:   # keep the unconsumed draws in order, append fresh ones: one stream, whatever the chunking
                for j in range(n_uniform - used):
                    uniforms[j] = uniforms[j + used]
                for j in range(n_uniform - used, n_uniform):
                    uniforms[j] = np.random.random()
            for j in range(n_ev):
                if events[j, E_KIND] == EVENT_EXIT:
                    trades += 1
                    c = events[j, E_CAPITAL]
                    if c > peak:
                        peak = c
                    elif peak > 0.0:
                        dd = (peak - c) / peak
                        if dd > max_dd:
                            max_dd = dd
            done += n
        out_dd[i] = max_dd
        out_ret[i] = st[0].capital / capital0 - 1.0 if capital0 > 0.0 else 0.0
        out_trades[i] = trades


def simulate_paths(history: McHistory, template: KernelState, params: np.ndarray, plan: PathPlan, block_bars: int,
                   horizon_bars: int, *, bar0: int = 0, chunk_bars: int = 4096) -> PathOutcomes:
    """Run the engine's kernel over every planned path from the `template` state (numba threads)."""
    n_paths = params.shape[0]
    if plan.starts.shape[0] != n_paths or plan.rng_seeds.shape != (n_paths,):
        raise ValueError("one plan row and one parameter vector per path")
    if plan.starts.shape[1] * block_bars < horizon_bars:
        raise ValueError("the plan has too few blocks for the horizon")
    if plan.starts.size and (plan.starts.min() < 1 or plan.starts.max() + block_bars > history.rows):
        raise ValueError("a block starts outside the history")
    n_assets = len(history.assets)
    out_dd = np.zeros(n_paths)
    out_ret = np.zeros(n_paths)
    out_trades = np.zeros(n_paths, dtype=np.int64)
    _simulate(template.st, template.hist, template.hist_n, template.vd_ring, template.w750_ring, template.recent,
              template.bucket_n, template.bucket_w, np.ascontiguousarray(params, dtype=np.float64),
              history.filled, history.valid, history.vel_div, history.v750, history.vol_ok,
              np.ascontiguousarray(plan.starts), np.ascontiguousarray(plan.rng_seeds), int(block_bars),
              int(horizon_bars), int(chunk_bars), int(bar0), int(history.ts[-1]) + history.bar_ms, history.bar_ms,
              np.zeros((0, n_assets, len(OB_ASSET_FIELDS))), np.zeros((0, len(OB_MACRO_FIELDS))),
              out_dd, out_ret, out_trades)
    return PathOutcomes(out_dd, out_ret, out_trades)


def engine_template(history: McHistory, cfg: StrategyConfig, boost: float, beta: float,
                    warmup_bars: int) -> tuple[KernelState, int]:
    """The engine every path starts from: warmed (no trading) on the last real bars, at the day's boost.

    Returns the kernel state and the bar index the paths continue from.
    """
    engine = NDAlphaEngine(cfg, list(history.assets))
    first = max(0, history.rows - warmup_bars)
    rows = slice(first, history.rows)
    engine.begin_day("mc-forewarner")
    n = history.rows - first
    if n:
        engine.run_block(np.arange(n, dtype=np.int64), history.ts[rows], history.vel_div[rows], history.v750[rows],
                         history.vol_ok[rows], history.engine_prices(rows), trade=False)
    engine.update_acb_boost(boost, beta)
    return engine.kernel_state(), n


# ---------------------------------------------------------------- the report
@dataclass(frozen=True, slots=True)
class McAssessment:
    """One MC-Forewarner report, before it becomes a bus payload."""

    status: McStatus
    catastrophic_prob: float
    envelope_score: float
    source: McSource
    paths: int
    horizon_days: float
    drawdown_limit: float
    seed: int
    reason: str = ""
    base_boost: float = 1.0
    beta: float = 0.0
    max_leverage: float | None = None       # §12's max_leverage × base_boost for the day's config
    assets: int = 0
    history_start_ms: int | None = None
    history_end_ms: int | None = None
    bar_ms: int | None = None
    block_bars: int | None = None
    horizon_bars: int | None = None
    median_drawdown: float | None = None
    p95_drawdown: float | None = None
    median_return: float | None = None
    mean_trades: float | None = None
    outcomes: PathOutcomes | None = field(default=None, compare=False, repr=False)   # per path, for inspection

    @property
    def history_days(self) -> float | None:
        if self.history_start_ms is None or self.history_end_ms is None:
            return None
        return (self.history_end_ms - self.history_start_ms) / MS_PER_DAY


def envelope_score(max_drawdown: np.ndarray, drawdown_limit: float) -> float:
    """``1 − median(max drawdown) / limit`` (see the module docstring)."""
    return float(1.0 - np.median(max_drawdown) / drawdown_limit)


def catastrophic_probability(max_drawdown: np.ndarray, drawdown_limit: float) -> float:
    """The share of paths whose max drawdown reaches the limit."""
    return float(np.mean(max_drawdown >= drawdown_limit))


def assess_outcomes(outcomes: PathOutcomes, settings: McSettings, **context: object) -> McAssessment:
    """The report of a set of path outcomes: probability, envelope, §28.6 status, summary statistics."""
    dd = outcomes.max_drawdown
    if dd.size == 0:
        raise ValueError("no path outcomes to assess")
    cp = catastrophic_probability(dd, settings.drawdown_limit)
    return McAssessment(
        status=status_for_probability(cp), catastrophic_prob=cp,
        envelope_score=envelope_score(dd, settings.drawdown_limit), source=McSource.MONTE_CARLO,
        paths=int(dd.size), horizon_days=settings.horizon_days, drawdown_limit=settings.drawdown_limit,
        seed=settings.seed, median_drawdown=float(np.median(dd)), p95_drawdown=float(np.percentile(dd, 95)),
        median_return=float(np.median(outcomes.final_return)), mean_trades=float(np.mean(outcomes.trades)),
        outcomes=outcomes, **context)  # type: ignore[arg-type]


def fallback(source: McSource, reason: str, settings: McSettings, **context: object) -> McAssessment:
    """§28.6's conservative report when no assessment could be made: ORANGE, 0.20, 0.80."""
    return McAssessment(status=McStatus.ORANGE, catastrophic_prob=FALLBACK_PROB, envelope_score=FALLBACK_ENVELOPE,
                        source=source, paths=0, horizon_days=settings.horizon_days,
                        drawdown_limit=settings.drawdown_limit, seed=settings.seed, reason=reason,
                        **context)  # type: ignore[arg-type]


Progress = Callable[[int, int], None]


def run_forewarner(table: ScanTable | None, cfg: StrategyConfig, settings: McSettings, *, boost: float = 1.0,
                   beta: float = 0.0, no_data_reason: str = "no scan history", progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None) -> McAssessment:
    """One whole assessment of ``cfg`` at the day's ACB ``boost``/``beta`` over ``table``'s recent history.

    Too little history (or none: ``table`` None, with ``no_data_reason``) gives the
    FALLBACK_NO_DATA report; anything else raises to the caller. Paths run in batches of
    `batch_paths`: ``progress(done, total)`` after each, and ``should_stop()`` before each
    (True raises McCancelled). Batching changes nothing in the result.
    """
    if not (math.isfinite(boost) and boost > 0 and math.isfinite(beta) and beta >= 0):
        raise ValueError(f"invalid ACB state boost={boost!r} beta={beta!r}")
    context: dict[str, object] = {"base_boost": boost, "beta": beta,
                                  "max_leverage": cfg.champion.max_leverage * boost}
    if table is None:
        return fallback(McSource.FALLBACK_NO_DATA, no_data_reason, settings, **context)
    try:
        history = prepare_history(table, cfg, settings.history_days)
    except InsufficientHistory as exc:
        return fallback(McSource.FALLBACK_NO_DATA, str(exc), settings, **context)
    block_bars = history.bars_for(settings.block_minutes * 60_000)
    horizon_bars = history.bars_for(settings.horizon_days * MS_PER_DAY)
    need = history.bars_for(settings.min_history_hours * MS_PER_HOUR)
    context.update(assets=len(history.assets), history_start_ms=int(history.ts[0]),
                   history_end_ms=int(history.ts[-1]), bar_ms=history.bar_ms, block_bars=block_bars,
                   horizon_bars=horizon_bars)
    if history.usable_bars < max(need, block_bars + 1):
        hours = history.usable_bars * history.bar_ms / MS_PER_HOUR
        return fallback(McSource.FALLBACK_NO_DATA,
                        f"{hours:.1f} h of usable history (scans with vel_div and a calibrated volatility gate); "
                        f"{settings.min_history_hours:g} h needed", settings, **context)
    candidates = history.block_candidates(block_bars)
    if candidates.size == 0:
        return fallback(McSource.FALLBACK_NO_DATA, f"no gap-free block of {block_bars} bars in the history",
                        settings, **context)
    blocks = -(-horizon_bars // block_bars)
    plan = draw_plan(settings.paths, blocks, candidates, settings.seed, settings.jitter.width)
    direction = cfg.direction_sign
    params = np.stack([param_vector(jitter_config(cfg, settings.jitter, plan.jitter_u[i]), direction)
                       for i in range(settings.paths)])
    template, bar0 = engine_template(history, cfg, boost, beta, settings.warmup_bars)
    parts: list[PathOutcomes] = []
    for lo in range(0, settings.paths, settings.batch_paths):
        if should_stop is not None and should_stop():
            raise McCancelled(f"stopped after {lo} of {settings.paths} paths")
        hi = min(settings.paths, lo + settings.batch_paths)
        batch = PathPlan(plan.starts[lo:hi], plan.jitter_u[lo:hi], plan.rng_seeds[lo:hi])
        parts.append(simulate_paths(history, template, params[lo:hi], batch, block_bars, horizon_bars, bar0=bar0,
                                    chunk_bars=settings.chunk_bars))
        if progress is not None:
            progress(hi, settings.paths)
    outcomes = PathOutcomes(np.concatenate([p.max_drawdown for p in parts]),
                            np.concatenate([p.final_return for p in parts]), np.concatenate([p.trades for p in parts]))
    return assess_outcomes(outcomes, settings, **context)


__all__ = ["FALLBACK_ENVELOPE", "FALLBACK_PROB", "InsufficientHistory", "Jitter", "McAssessment", "McCancelled",
           "McHistory",
           "McSettings", "PathOutcomes", "PathPlan", "assess_outcomes", "catastrophic_probability", "draw_plan",
           "engine_template", "envelope_score", "fallback", "jitter_config", "prepare_history", "run_forewarner",
           "set_threads", "simulate_paths"]
