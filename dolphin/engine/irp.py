"""IRP asset selection (bible §5): impulse-response profiles, ARS, ranking with gates.

The price segment is normalised by its first price before profiling. The bible's kernel
works on raw price differences, which makes `noise` (their variance) scale with the
price level: BTC at 70k would fail every asset against a coin at 0.5. Normalising keeps
every metric scale-free while leaving the formulas as written.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

IRP_WINDOW = 50            # prices per segment (§5.1: last 50 bars)
NOISE_MAX = 500.0          # §5.4 gates
LATENCY_MAX = 20
ALIGNMENT_MIN = 0.20
LATENCY_DEFAULT = 50       # when there is no favourable excursion
OB_DEPTH_MIN = 0.20        # §5.5 OB depth gate
EFFICIENCY_EPS = 1e-6


@nb.njit(cache=True)
def compute_irp(seg: np.ndarray, direction: int) -> tuple[float, float, float, float, float, int]:
    """(mfe, mae, efficiency, alignment, noise, latency) of a price segment in one direction.

    MFE/MAE are measured from the segment start (cumulative excursion starts at 0), so
    both are non-negative; latency is the number of bars until 10 % of the MFE is reached.
    """
    n_ret = seg.shape[0] - 1
    base = seg[0]
    cum = 0.0
    mfe = 0.0
    mn = 0.0
    positives = 0
    total = 0.0
    total_sq = 0.0
    for i in range(n_ret):
        r = (seg[i + 1] - seg[i]) / base * direction
        cum += r
        if cum > mfe:
            mfe = cum
        if cum < mn:
            mn = cum
        if r > 0.0:
            positives += 1
        total += r
        total_sq += r * r
    mae = -mn
    efficiency = mfe / (mae + EFFICIENCY_EPS)
    alignment = positives / n_ret
    mean = total / n_ret
    noise = total_sq / n_ret - mean * mean
    if noise < 0.0:
        noise = 0.0
    latency = LATENCY_DEFAULT
    if mfe > 0.0:
        target = 0.1 * mfe
        cum = 0.0
        for i in range(n_ret):
            cum += (seg[i + 1] - seg[i]) / base * direction
            if cum >= target:
                latency = i + 1
                break
    return mfe, mae, efficiency, alignment, noise, latency


@nb.njit(cache=True)
def compute_ars(efficiency: float, alignment: float, noise: float) -> float:
    """§5.3: ARS = 0.5 * log1p(efficiency) + 0.35 * alignment - 0.15 * noise * 1000."""
    return 0.5 * math.log1p(efficiency) + 0.35 * alignment - 0.15 * noise * 1000.0


@nb.njit(cache=True)
def ob_ars_adjust(ars: float, depth_quality: float) -> float:
    """OB sub-1 (§5.5): deep books lift ARS by 5 %, thin books (< 0.5) cut it by 10 %."""
    if depth_quality >= 1.0:
        return ars + 0.05 * abs(ars)
    if depth_quality < 0.5:
        return ars - 0.10 * abs(ars)
    return ars


@nb.njit(cache=True)
def profile_asset(seg: np.ndarray, regime_direction: int) -> tuple[float, int, float, bool]:
    """(ARS, action, alignment, passes gates) taking the better of direct and inverse."""
    _, _, eff_d, align_d, noise_d, lat_d = compute_irp(seg, regime_direction)
    _, _, eff_i, align_i, noise_i, lat_i = compute_irp(seg, -regime_direction)
    ars_d = compute_ars(eff_d, align_d, noise_d)
    ars_i = compute_ars(eff_i, align_i, noise_i)
    if ars_i > ars_d:
        ok = not (noise_i > NOISE_MAX or lat_i > LATENCY_MAX or align_i < ALIGNMENT_MIN)
        return ars_i, -regime_direction, align_i, ok
    ok = not (noise_d > NOISE_MAX or lat_d > LATENCY_MAX or align_d < ALIGNMENT_MIN)
    return ars_d, regime_direction, align_d, ok


@nb.njit(cache=True)
def stable_sort_desc(keys: np.ndarray, idx: np.ndarray, n: int) -> None:
    """Insertion sort of idx[:n] by keys descending; ties keep asset order (as bubble sort does)."""
    for i in range(1, n):
        cur = idx[i]
        key = keys[cur]
        j = i - 1
        while j >= 0 and keys[idx[j]] < key:
            idx[j + 1] = idx[j]
            j -= 1
        idx[j + 1] = cur
