"""Calibration helpers: a fast naive vel_div and the episode statistics built on it.

Why this exists here and not in ``dolphin.scan``: the synthetic market is tuned so that
the champion's entry gate (``vel_div < -0.02``) fires a realistic number of times a day.
Tuning needs vel_div over whole days in well under a second, and the generator must not
depend on the scan package (built separately, and free to change its numerics). This is
the *naive* definition — Pearson correlation of the last ``w`` log returns, share of the
largest eigenvalue, first difference — computed with running sums and a warm-started
power iteration, checked against ``numpy.linalg.eigvalsh`` in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba as nb
import numpy as np

if TYPE_CHECKING:
    from .market import SyntheticMarket
    from .regimes import Episode

VEL_DIV_THRESHOLD = -0.02
"""The champion's SHORT entry gate (bible §4.1)."""


@nb.njit(cache=True)
def _lambda_share(returns: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest-eigenvalue share of the rolling ``window`` correlation matrix, per return row.

    Running sums of returns and of their outer products give each window's covariance in
    O(n²) per row; the top eigenvalue comes from power iteration warm-started at the
    previous row's eigenvector (the matrix changes by one row in, one row out, so a few
    iterations suffice). Rows where it does not converge are flagged for the caller to
    redo with LAPACK (numba's LAPACK binding needs SciPy, which DOLPHIN does not ship).
    """
    t_len, n = returns.shape
    out = np.full(t_len, np.nan)
    failed = np.zeros(t_len, dtype=np.bool_)
    s = np.zeros(n)
    q = np.zeros((n, n))
    corr = np.empty((n, n))
    v = np.ones(n) / np.sqrt(n)
    u = np.empty(n)
    for t in range(t_len):
        r = returns[t]
        for i in range(n):
            s[i] += r[i]
            for j in range(n):
                q[i, j] += r[i] * r[j]
        if t >= window:
            r_old = returns[t - window]
            for i in range(n):
                s[i] -= r_old[i]
                for j in range(n):
                    q[i, j] -= r_old[i] * r_old[j]
        if t < window - 1:
            continue
        inv_sd = np.empty(n)
        for i in range(n):
            var = q[i, i] - s[i] * s[i] / window
            inv_sd[i] = 1.0 / np.sqrt(var) if var > 1e-30 else 0.0
        for i in range(n):
            for j in range(n):
                if i == j:
                    corr[i, j] = 1.0
                else:
                    cov = q[i, j] - s[i] * s[j] / window
                    corr[i, j] = cov * inv_sd[i] * inv_sd[j]
        lam = 0.0
        converged = False
        for _ in range(300):
            for i in range(n):
                acc = 0.0
                for j in range(n):
                    acc += corr[i, j] * v[j]
                u[i] = acc
            new_lam = 0.0
            norm = 0.0
            for i in range(n):
                new_lam += v[i] * u[i]
                norm += u[i] * u[i]
            norm = np.sqrt(norm)
            for i in range(n):
                v[i] = u[i] / norm
            if abs(new_lam - lam) <= 1e-13 * new_lam:
                lam = new_lam
                converged = True
                break
            lam = new_lam
        if not converged:
            failed[t] = True
            v[:] = 1.0 / np.sqrt(n)
        out[t] = lam / n
    return out, failed


def lambda_share(closes: np.ndarray, window: int) -> np.ndarray:
    """Share ``lambda_max / n`` of the ``window``-return correlation matrix at every bar.

    ``closes`` is (n_bars, n_assets); the result has one value per bar, NaN until the
    window is full (bar ``window`` is the first with ``window`` returns).
    """
    closes = _validate_closes(closes)
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    returns = np.diff(np.log(closes), axis=0)
    shares, failed = _lambda_share(np.ascontiguousarray(returns), int(window))
    for row in np.flatnonzero(failed).tolist():
        block = returns[row - window + 1: row + 1]
        sd = block.std(axis=0)
        live = sd > 0.0
        corr = np.eye(returns.shape[1])
        corr[np.ix_(live, live)] = np.corrcoef(block[:, live], rowvar=False)
        shares[row] = np.linalg.eigvalsh(corr)[-1] / returns.shape[1]
    share = np.full(closes.shape[0], np.nan)
    share[1:] = shares
    return share


def vel_div(closes: np.ndarray, fast: int = 50, slow: int = 750) -> np.ndarray:
    """Naive ``vel_div = Δshare_fast − Δshare_slow`` at every bar (NaN during warm-up)."""
    if not 2 <= fast < slow:
        raise ValueError(f"need 2 <= fast < slow, got fast={fast}, slow={slow}")
    share_fast = lambda_share(closes, fast)
    share_slow = lambda_share(closes, slow)
    vel = np.full(share_fast.shape, np.nan)
    vel[1:] = np.diff(share_fast) - np.diff(share_slow)
    return vel


def crossings(vd: np.ndarray, threshold: float = VEL_DIV_THRESHOLD) -> np.ndarray:
    """Bars where vel_div goes from at/above ``threshold`` (or warm-up) to below it."""
    below = np.nan_to_num(vd, nan=0.0) < threshold
    prev = np.concatenate(([False], below[:-1]))
    return np.flatnonzero(below & ~prev)


def episodes(vd: np.ndarray, threshold: float = VEL_DIV_THRESHOLD, gap: int = 120) -> np.ndarray:
    """Crossing bars an engine could trade: each more than ``gap`` bars after the last one kept.

    ``gap`` defaults to the champion's max hold (120 bars): a SHORT entered at a crossing
    is closed by then at the latest, so the next crossing after that is a new chance to
    trade; crossings while it is still open are part of the same episode.
    """
    if gap < 1:
        raise ValueError(f"gap must be at least 1 bar, got {gap}")
    starts: list[int] = []
    last = -gap - 1
    for bar in crossings(vd, threshold).tolist():
        if bar - last > gap:
            starts.append(bar)
            last = bar
    return np.asarray(starts, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class ForwardStats:
    """What a short at each episode start on the most-falling assets could have earned.

    ``min_return[k, j]`` is the lowest ``low / close[entry] − 1`` over the next
    ``horizon`` bars for the j-th most negative-drifting asset (by ``lookback``-bar
    return) at episode k; ``end_return`` is the close-to-close return at the horizon.
    """

    entry_bars: np.ndarray
    assets: np.ndarray
    min_return: np.ndarray
    end_return: np.ndarray

    def hit_rate(self, move: float = 0.0095, top: int = 1) -> float:
        """Fraction of (episode, asset) pairs among the ``top`` picks that fell ``move``."""
        if self.min_return.size == 0:
            return float("nan")
        return float(np.mean(self.min_return[:, :top] <= -move))

    def short_returns(self, move: float = 0.0095, top: int = 1) -> np.ndarray:
        """Gross return of a naive short per (episode, pick): ``move`` if the take-profit
        is touched within the horizon, else the loss or gain of closing at the horizon.

        No fees, no sizing, no IRP/DC filters — a yardstick of the raw edge, not the engine.
        """
        mins = self.min_return[:, :top]
        return np.where(mins <= -move, move, -self.end_return[:, :top]).ravel()


def forward_stats(close: np.ndarray, low: np.ndarray, entry_bars: np.ndarray, *,
                  horizon: int = 120, lookback: int = 50, top: int = 3) -> ForwardStats:
    """Forward excursions after each entry bar for the ``top`` most-falling assets.

    Entries without a full lookback or horizon inside the arrays are dropped.
    """
    close = _validate_closes(close)
    if low.shape != close.shape:
        raise ValueError(f"low shape {low.shape} != close shape {close.shape}")
    if horizon < 1 or lookback < 1 or not 1 <= top <= close.shape[1]:
        raise ValueError("horizon and lookback must be >= 1 and 1 <= top <= n_assets")
    bars = np.asarray(entry_bars, dtype=np.int64)
    bars = bars[(bars >= lookback) & (bars + horizon < close.shape[0])]
    picks = np.empty((bars.size, top), dtype=np.int64)
    mins = np.empty((bars.size, top))
    ends = np.empty((bars.size, top))
    for k, bar in enumerate(bars.tolist()):
        drift = close[bar] / close[bar - lookback] - 1.0
        chosen = np.argsort(drift, kind="stable")[:top]
        entry = close[bar, chosen]
        picks[k] = chosen
        mins[k] = low[bar + 1: bar + 1 + horizon, chosen].min(axis=0) / entry - 1.0
        ends[k] = close[bar + horizon, chosen] / entry - 1.0
    return ForwardStats(bars, picks, mins, ends)


def _validate_closes(closes: np.ndarray) -> np.ndarray:
    arr = np.asarray(closes, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"expected a (n_bars, n_assets>=2) price array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0):
        raise ValueError("prices must be finite and positive")
    return arr


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """How often a market's vel_div fires, why, and what a short could have made of it.

    Per day: raw crossings below −0.02, engine episodes (``episodes``) and scheduled
    instability episodes. ``onset_hits`` counts scheduled onsets followed by a crossing
    within their fracture (± 2 bars). ``forward`` holds the forward excursions of the
    three most-falling assets at each engine episode. Day 0 has no vel_div during its
    first 750 bars (the slow window's warm-up).
    """

    seed: int
    crossings_per_day: tuple[int, ...]
    episodes_per_day: tuple[int, ...]
    scheduled_per_day: tuple[int, ...]
    onset_hits: int
    forward: ForwardStats
    causes: tuple[str, ...]
    """Per forward entry: ``onset:<kind>`` (within a scheduled fracture), ``during:<kind>``
    (elsewhere inside a scheduled episode) or ``calm`` (noise)."""

    def summary(self, move: float = 0.0095) -> str:
        """A short human-readable account (the figures quoted in the docs)."""
        scheduled = sum(self.scheduled_per_day)
        mins = self.forward.min_return[:, 0] * 100.0
        ends = self.forward.end_return[:, 0] * 100.0
        pct = (5, 10, 25, 50, 75, 90)
        lines = [
            f"seed {self.seed}: {len(self.episodes_per_day)} day(s)",
            f"  crossings/day          {list(self.crossings_per_day)}",
            f"  vel_div episodes/day   {list(self.episodes_per_day)} (120-bar gap)",
            f"  scheduled episodes/day {list(self.scheduled_per_day)}; "
            f"{self.onset_hits}/{scheduled} onsets crossed",
            f"  {move:.2%} drop within 120 bars: top-1 {self.forward.hit_rate(move, 1):.0%}, "
            f"top-3 {self.forward.hit_rate(move, 3):.0%} of {self.forward.entry_bars.size} episodes",
        ]
        if mins.size:
            pnl = self.forward.short_returns(move, 1)
            lines.append(f"  naive top-1 short (TP {move:.2%} / exit at 120 bars, gross): "
                         f"mean {pnl.mean():+.3%} per trade, {np.mean(pnl > 0):.0%} winners")
            lines.append("  top-1 min fwd return % p" + "/".join(map(str, pct)) + ": "
                         + " ".join(f"{v:+.2f}" for v in np.percentile(mins, pct)))
            lines.append("  top-1 120-bar return % p" + "/".join(map(str, pct)) + ": "
                         + " ".join(f"{v:+.2f}" for v in np.percentile(ends, pct)))
        causes = np.array(self.causes)
        pnl = self.forward.short_returns(move, 1)
        for cause in sorted(set(self.causes)):
            sel = causes == cause
            lines.append(f"    {cause:<20} {int(sel.sum()):3d} episodes, TP hit "
                         f"{np.mean(self.forward.min_return[sel, 0] <= -move):4.0%}, naive short "
                         f"{pnl[sel].mean():+.2%}")
        return "\n".join(lines)


def calibrate(market: SyntheticMarket, days: int) -> CalibrationReport:
    """Generate ``days`` whole days of ``market`` and measure its vel_div behaviour."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}")
    per_day = market.bars_per_day
    bars = market.generate(0, days * per_day)
    vd = vel_div(bars.close)
    crossing_counts, episode_counts, scheduled_counts = [], [], []
    hits = 0
    all_crossings = crossings(vd)
    for day in range(days):
        day_vd = vd[day * per_day:(day + 1) * per_day]
        crossing_counts.append(int(crossings(day_vd).size))
        episode_counts.append(int(episodes(day_vd).size))
        scheduled = market.episodes(day)
        scheduled_counts.append(len(scheduled))
        for e in scheduled:
            lo, hi = e.onset_bar - 2, e.onset_bar + e.fracture_bars + 2
            hits += bool(np.any((all_crossings >= lo) & (all_crossings <= hi)))
    forward = forward_stats(bars.close, bars.low, episodes(vd))
    scheduled_all = [e for day in range(days + 1) for e in market.episodes(day)]
    causes = tuple(_cause(int(bar), scheduled_all) for bar in forward.entry_bars)
    return CalibrationReport(market.config.seed, tuple(crossing_counts), tuple(episode_counts),
                             tuple(scheduled_counts), hits, forward, causes)


def _cause(bar: int, scheduled: list[Episode]) -> str:
    for e in scheduled:
        if e.onset_bar - 2 <= bar <= e.onset_bar + e.fracture_bars + 2:
            return f"onset:{e.kind}"
    for e in scheduled:
        if e.start_bar <= bar < e.end_bar:
            return f"during:{e.kind}"
    return "calm"


def main(argv: list[str] | None = None) -> None:
    """``python -m dolphin.market.synthetic.calibration [--days N] [--seed S ...]``."""
    import argparse

    from .config import SyntheticConfig
    from .market import SyntheticMarket

    parser = argparse.ArgumentParser(description="vel_div calibration of the synthetic market")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, nargs="+", default=[7])
    args = parser.parse_args(argv)
    for seed in args.seed:
        print(calibrate(SyntheticMarket(SyntheticConfig(seed=seed)), args.days).summary())


if __name__ == "__main__":
    main()
