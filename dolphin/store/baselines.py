"""The baseline registry: one strategy's backtest reference metrics, a 0600 JSON file per strategy.

`dolphin backtest … --register-baseline` writes ``<home>/baselines/<strategy>.json``
(atomically: a reader sees the old baseline or the new one); strategy health reads it to
turn live rolling metrics into decay ratios. Registering again replaces it.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from dolphin.backtest.strategy_health import Baseline
from dolphin.errors import DataError
from dolphin.store.atomic import atomic_write_bytes

BASELINE_DIR = "baselines"
_DECODER = msgspec.json.Decoder(Baseline)


def baseline_path(home: Path, strategy: str) -> Path:
    return home / BASELINE_DIR / f"{strategy}.json"


def register_baseline(home: Path, baseline: Baseline) -> Path:
    """Write (or replace) the strategy's baseline; durable when this returns."""
    return atomic_write_bytes(baseline_path(home, baseline.strategy),
                              msgspec.json.format(msgspec.json.encode(baseline), indent=2) + b"\n")


def load_baseline(home: Path, strategy: str) -> Baseline | None:
    """The registered baseline, None when there is none; DataError naming the file when it is not one."""
    path = baseline_path(home, strategy)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DataError(f"{path}: not a strategy baseline ({exc}); register it again with "
                        "`dolphin backtest … --register-baseline`") from None


__all__ = ["BASELINE_DIR", "baseline_path", "load_baseline", "register_baseline"]
