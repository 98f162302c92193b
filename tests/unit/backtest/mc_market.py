"""A small seeded scan table for the MC-Forewarner tests: no eigen scan, just the columns the MC reads.

vel_div is an AR(1) process that crosses the SHORT threshold (−0.02) often; prices are
correlated random walks with an optional drift (a rising market makes shorts lose).
"""

from __future__ import annotations

import numpy as np

from dolphin.scan.table import ScanTable

BAR_MS = 5_000
START_MS = 1_767_225_600_000   # 2026-01-01 00:00 UTC


def random_scan_table(rows: int = 4000, n_assets: int = 8, seed: int = 3, drift: float = 0.0,
                      vol: float = 0.0015) -> ScanTable:
    rng = np.random.default_rng(seed)
    vd = np.empty(rows)
    x = 0.0
    for t in range(rows):
        x = 0.9 * x + rng.normal(0.0, 0.012)
        vd[t] = x
    common = rng.normal(drift, vol, rows)
    own = rng.normal(0.0, vol, (rows, n_assets))
    prices = 100.0 * np.exp(np.cumsum(common[:, None] + own, axis=0)) * np.linspace(1.0, 3.0, n_assets)[None, :]
    zeros = np.zeros(rows)
    return ScanTable(ts=START_MS + BAR_MS * np.arange(rows, dtype=np.int64), scan_number=np.arange(1, rows + 1),
                     vel_div=vd, v50_lambda_max_velocity=zeros, v150_lambda_max_velocity=zeros,
                     v300_lambda_max_velocity=zeros, v750_lambda_max_velocity=rng.normal(0.0, 0.01, rows),
                     instability_50=zeros, instability_150=zeros,
                     assets=tuple(["BTCUSDT"] + [f"A{i}USDT" for i in range(1, n_assets)]), prices=prices)
