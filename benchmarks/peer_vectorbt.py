"""A peer row users recognise: the same real bars through vectorbt's `Portfolio.from_signals`.

    python -m benchmarks.peer_vectorbt [--scans PATH] [--repeats 5]

Needs the optional benchmark extra (``pip install -e '.[bench]'``: vectorbt). Reads the real
Binance 1-minute klines of ``../shared/data`` (87 assets × 14 days), builds their scan table
once (or reads ``--scans``), replays it through DOLPHIN's engine (`run_backtest`, blue), then
hands the engine's own entries and exits (asset, side, entry bar, exit bar of every trade) to
`vbt.Portfolio.from_signals` on the same close matrix, and prints bars/s side by side.

The work differs, and the row says so: vectorbt is *given* the decisions and only books
them (fills at the bar's close, cash, one position per column, a flat fee); the engine makes
them — the vel_div gate and volatility gate per bar, ranking all 87 assets for the entry
(IRP/ARS), sizing (confidence buckets, leverage, ACB), exits (take-profit, max hold, the OB
terms), fees and slippage. Both sides are timed warm (numba compiled and loaded before the
clock: vectorbt's first call compiles for tens of seconds and is reported apart), medians of
``--repeats`` runs in this process. A backtest's wall time around the engine (imports, the
Parquet read) is `benchmarks/backtest_e2e.py`'s and `dolphin backtest`'s, not this row's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import machine
from dolphin.backtest.runner import run_backtest
from dolphin.config import load_config
from dolphin.engine.engine import compile_kernel
from dolphin.enums import PositionSide
from dolphin.store.scan_table import read_scan_table

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance_spot_1m_2021-04-06_2021-04-19.parquet"


def build_scans(out: Path) -> Path:
    """The real klines' scan table (what `dolphin scan build --klines … --out …` writes)."""
    from dolphin.scan.table import build_scan_table
    from dolphin.store.klines import load_close_matrix
    from dolphin.store.scan_table import write_scan_table

    t0 = time.perf_counter()
    cm = load_close_matrix(REAL)
    write_scan_table(out, build_scan_table(cm.ts, cm.symbols, cm.close))
    print(f"scan table built in {time.perf_counter() - t0:.1f} s (not timed below)")
    return out


def signal_matrices(result, rows: dict[int, int], n_bars: int, assets: list[str]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entries and exits per (bar, asset) for longs and shorts, from the engine's closed trades."""
    shape = (n_bars, len(assets))
    le, lx, se, sx = (np.zeros(shape, dtype=bool) for _ in range(4))
    col = {a: i for i, a in enumerate(assets)}
    for t in result.trades:
        entries, exits = (se, sx) if t.side is PositionSide.SHORT else (le, lx)
        entries[rows[t.entry_bar], col[t.asset]] = True
        exits[rows[t.exit_bar], col[t.asset]] = True
    return le, lx, se, sx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=Path, default=None, help="a scan table of the real klines (built if absent)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    try:
        import pandas as pd
        import vectorbt as vbt
    except ImportError as exc:
        raise SystemExit(f"peer_vectorbt needs the bench extra (pip install -e '.[bench]'): {exc}") from None
    print(f"machine: {machine('numba', 'numpy', 'vectorbt', 'pandas')}  load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.scans or build_scans(Path(tmp) / "real_scans.parquet")
        table = read_scan_table(path)
    cfg = load_config("blue")
    assets = list(table.assets)
    n_bars = table.rows
    print(f"data: {n_bars:,} bars x {len(assets)} assets (real Binance 1m klines, {REAL.name})")

    compile_kernel()
    engine_s: list[float] = []
    result = None
    for _ in range(args.repeats):
        result = run_backtest(table, cfg)
        engine_s.append(result.engine_seconds)
    assert result is not None
    rows = {int(b): i for i, b in enumerate(table.scan_number)}
    le, lx, se, sx = signal_matrices(result, rows, n_bars, assets)
    close = pd.DataFrame(table.prices, columns=assets)
    kwargs = dict(entries=pd.DataFrame(le, columns=assets), exits=pd.DataFrame(lx, columns=assets),
                  short_entries=pd.DataFrame(se, columns=assets), short_exits=pd.DataFrame(sx, columns=assets),
                  init_cash=cfg.initial_capital, fees=0.0002)
    t0 = time.perf_counter()
    pf = vbt.Portfolio.from_signals(close, **kwargs)
    first_s = time.perf_counter() - t0
    vbt_s: list[float] = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        pf = vbt.Portfolio.from_signals(close, **kwargs)
        pf.total_return()
        vbt_s.append(time.perf_counter() - t0)
    n_vbt_trades = int(pf.trades.count().sum())

    eng, peer = statistics.median(engine_s), statistics.median(vbt_s)
    print(f"{'':34} {'bars/s':>12} {'bar×asset/s':>14} {'median s':>9}")
    print(f"{'DOLPHIN engine (decides + books)':34} {n_bars / eng:12,.0f} {n_bars * len(assets) / eng:14,.0f} {eng:9.3f}"
          f"   {len(result.trades)} trades")
    print(f"{'vectorbt from_signals + return':34} {n_bars / peer:12,.0f} {n_bars * len(assets) / peer:14,.0f} "
          f"{peer:9.3f}   {n_vbt_trades} trades  (first call {first_s:.1f} s: numba compile)")
    print(f"ratio engine / vectorbt: {peer / eng:.2f}x  (>1: the engine is faster while doing more work)")
    print("work: vectorbt books given signals at the close with a flat fee; the engine computes the gates, ranks "
          f"{len(assets)} assets for each entry, sizes, evaluates exits, fees and slippage.")


if __name__ == "__main__":
    main()
