"""Compile (or load) the numba kernels once, before the test workers start.

numba caches each compiled kernel beside its source (`cache=True`), but on a clean clone the
cache is empty: without this, each pytest worker compiles the engine, the scan and the
Monte-Carlo kernels on its first test that needs them, and the daemons of the first
end-to-end families compile them again in their own processes — all at once, on two cores,
while those tests wait on the family's timeouts. Run by tests/conftest.py in the controlling
process only (two groups in parallel subprocesses); each group is a small real run of the
code paths the tests use, so it compiles the signatures they call. Harmless when the cache
is warm (a few seconds of loading). ``DOLPHIN_TEST_NO_WARMUP=1`` skips it.

    python -m tests.numba_warmup engine|scan
"""

from __future__ import annotations

import sys

import numpy as np


def warm_engine() -> None:
    """The engine's bar loop (compile_kernel's and the backtest runner's calls) and the Monte-Carlo paths."""
    from dolphin.backtest import montecarlo as mc
    from dolphin.engine.engine import compile_kernel
    from dolphin.engine.params import StrategyConfig
    from tests.unit.backtest.mc_market import random_scan_table

    compile_kernel()
    small = mc.McSettings(paths=2, horizon_days=2 / 24, history_days=1.0, block_minutes=10, min_history_hours=1.0,
                          warmup_bars=300, chunk_bars=512)
    mc.run_forewarner(random_scan_table(), StrategyConfig(), small, boost=1.3, beta=0.2)


def warm_scan() -> None:
    """The scan's live updater (the scanner daemon's path), the batch builder and the runner's engine calls on a
    small table, and the synthetic market's kernels (every simulator start generates its history)."""
    from dolphin.backtest.runner import run_backtest
    from dolphin.config import load_config
    from dolphin.market.synthetic.config import SyntheticConfig
    from dolphin.market.synthetic.market import SyntheticMarket
    from dolphin.scan.table import build_scan_table
    from dolphin.scan.updater import ScanUpdater

    rng = np.random.default_rng(0)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (900, 8)), axis=0))
    updater = ScanUpdater(prices.shape[1])
    for row in prices[:60]:
        updater.update(row)
    ts = 1_767_225_600_000 + 60_000 * np.arange(len(prices), dtype=np.int64)
    table = build_scan_table(ts, tuple(f"A{i}USDT" for i in range(prices.shape[1])), prices)
    run_backtest(table, load_config("blue"))
    SyntheticMarket(SyntheticConfig(n_symbols=4)).bars(200)


GROUPS = {"engine": warm_engine, "scan": warm_scan}

if __name__ == "__main__":
    for name in sys.argv[1:]:
        GROUPS[name]()
