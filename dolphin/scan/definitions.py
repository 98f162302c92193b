"""The fixed definitions every scan path shares (float64 kernels, the naive oracle, 512-bit).

Keeping the thresholds in one place is what makes the three implementations comparable:
they must agree on which assets are in a window before their numbers can agree.
See docs/scan.md for the full definitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Rolling correlation windows, in returns (bible §3.1: v50 … v750).
DEFAULT_WINDOWS: tuple[int, ...] = (50, 150, 300, 750)

#: An asset is excluded from a window when its sample variance there is at or below this:
#: a frozen price has exactly zero variance and would make the correlation undefined.
VAR_EPS: float = 1e-20

#: Relative residual ‖Cy − θy‖ ≤ RES_TOL·θ at which the iterative top eigenpair is accepted.
RES_TOL: float = 1e-10

#: Entry thresholds the 512-bit equivalence is judged on (bible §4.1 SHORT and LONG gates).
VEL_DIV_SHORT: float = -0.02
VEL_DIV_LONG: float = 0.01

def vel_div(v_short: Any, v_long: Any) -> Any:
    """The signal (bible §3.1): velocity of the shortest window minus that of the longest (v50 − v750).

    The one definition every path calls — the float64 kernels (on arrays), the 512-bit
    path (on arb numbers) and the NG7 read-normalisation (on floats).
    """
    return v_short - v_long


#: Columns of the per-window feature block, in storage order.
FEATURE_NAMES: tuple[str, ...] = ("lambda_max", "share", "velocity", "acceleration", "instability")


def check_windows(windows: Sequence[int]) -> np.ndarray:
    """Validate a window tuple once, at the API edge, so kernels can trust it.

    Windows must be strictly increasing integers ≥ 2 (a sample variance needs two returns);
    vel_div is the velocity of the first (shortest) minus that of the last (longest).
    """
    values = [int(w) for w in windows]
    if not values:
        raise ValueError("windows: need at least one window")
    if any(w < 2 for w in values):
        raise ValueError(f"windows: every window must hold at least 2 returns, got {values}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"windows: must be strictly increasing, got {values}")
    return np.asarray(values, dtype=np.int64)


def as_price_matrix(prices: np.ndarray, n_assets: int | None = None) -> np.ndarray:
    """A C-contiguous float64 (bars, assets) view of `prices`, or a clear ValueError."""
    arr = np.ascontiguousarray(prices, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"prices: expected a 2-D (bars, assets) array, got shape {arr.shape}")
    if n_assets is not None and arr.shape[1] != n_assets:
        raise ValueError(f"prices: expected {n_assets} asset columns, got {arr.shape[1]}")
    return arr
