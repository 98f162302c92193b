"""Eigen-scan math on rolling correlation windows (50/150/300/750 returns) and the volatility gate.

Definitions: docs/scan.md. Entry points (imported lazily, so `import dolphin.scan` does
not load numba or flint until one is used):

- live:     `ScanUpdater(n_assets).update(prices_row) -> ScanFeatures`, `VolGate(...).update(price)`
- history:  `build_scan_features(prices) -> ScanFeatureArrays`, `vol_regime_ok(prices_1d, ...)`,
            `build_scan_table(ts, assets, close) -> ScanTable`
- checking: `naive_scan` (numpy oracle), `arb_scan_features` / `arb_vol_regime_ok` (512-bit)

Nothing here imports bus, market, store, services, tui or commands: the same code runs in
backtest, paper and live.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "DEFAULT_WINDOWS": "dolphin.scan.definitions",
    "ScanFeatures": "dolphin.scan.features",
    "ScanFeatureArrays": "dolphin.scan.features",
    "ScanState": "dolphin.scan.state",
    "ScanUpdater": "dolphin.scan.updater",
    "build_scan_features": "dolphin.scan.batch",
    "advance_block": "dolphin.scan.batch",
    "naive_scan": "dolphin.scan.naive",
    "vol_regime_ok": "dolphin.scan.volatility",
    "VolGate": "dolphin.scan.volatility",
    "ScanTable": "dolphin.scan.table",
    "build_scan_table": "dolphin.scan.table",
    "SCAN_META_COLUMNS": "dolphin.scan.table",
    "ArbScanner": "dolphin.scan.arb512",
    "ArbVolGate": "dolphin.scan.arb512",
    "arb_scan_features": "dolphin.scan.arb512",
    "arb_vol_regime_ok": "dolphin.scan.arb512",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dolphin.scan' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
