"""Small deterministic markets for engine tests: arrays shaped the way the engine consumes them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BAR_MS = 5_000


@dataclass(frozen=True)
class Market:
    assets: list[str]
    ts: np.ndarray
    vel_div: np.ndarray
    v750: np.ndarray
    vol_ok: np.ndarray
    prices: np.ndarray

    @property
    def n_bars(self) -> int:
        return len(self.ts)

    def day(self, start: int, stop: int) -> tuple[np.ndarray, ...]:
        """(bar_idx, ts, vel_div, v750, vol_ok, prices) for bars [start, stop)."""
        sl = slice(start, stop)
        return (np.arange(start, stop), self.ts[sl], self.vel_div[sl], self.v750[sl], self.vol_ok[sl],
                self.prices[sl])


def falling_market(n_bars: int = 400, n_assets: int = 4, drop: float = 2e-4, signal_from: int = 150,
                   vd: float = -0.035) -> Market:
    """Every asset falls steadily (IRP picks asset 0 by ARS tie order, DC confirms a SHORT).

    vel_div sits at ``vd`` from bar ``signal_from`` on and at 0 before, so the first entry is
    at ``signal_from`` (after the 100-bar warm-up) and FIXED_TP follows ~48 bars later.
    """
    steps = np.arange(n_bars)[:, None]
    prices = 100.0 * (1.0 - drop) ** steps * np.ones((1, n_assets))
    vel_div = np.where(np.arange(n_bars) >= signal_from, vd, 0.0)
    return Market(assets=[f"A{i}USDT" for i in range(n_assets)], ts=np.arange(n_bars, dtype=np.int64) * BAR_MS,
                  vel_div=vel_div, v750=np.zeros(n_bars), vol_ok=np.ones(n_bars, dtype=bool), prices=prices)


def random_market(seed: int, n_bars: int, n_assets: int, missing: float = 0.01) -> Market:
    """A noisy market with frequent signals, some missing/zero/negative/inf prices and a vol gate."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(0, 0.002, (n_bars, 1))
    prices = 100.0 * np.exp(np.cumsum(factor + rng.normal(0, 0.002, (n_bars, n_assets)), axis=0))
    holes = rng.random((n_bars, n_assets))
    prices[holes < missing * 0.5] = np.nan
    prices[(holes >= missing * 0.5) & (holes < missing * 0.7)] = 0.0
    prices[(holes >= missing * 0.7) & (holes < missing * 0.85)] = -1.0
    prices[(holes >= missing * 0.85) & (holes < missing)] = np.inf
    vel_div = rng.normal(-0.005, 0.02, n_bars)
    vel_div[rng.random(n_bars) < 0.01] = np.nan
    return Market(assets=["BTCUSDT"] + [f"X{i:02d}USDT" for i in range(n_assets - 1)],
                  ts=np.arange(n_bars, dtype=np.int64) * BAR_MS, vel_div=vel_div,
                  v750=rng.normal(0, 0.001, n_bars), vol_ok=rng.random(n_bars) < 0.8, prices=prices)
