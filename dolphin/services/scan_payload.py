"""The one mapping from a stored scan to the bus: NG5 record → NG8 flat `EigenScan` (bible §27.5).

The scanner (which writes the file and the bus value itself) and the bridge (which
forwards files an external scanner wrote) both publish through `payload_from_record`,
so a scan looks the same on the bus whichever way it arrived.

`EigenScan` refuses NaN anywhere, and its `vel_div`, `w50_velocity` and
`w750_velocity` are required floats. So:

* optional statistics that are NaN are left out (None), windows whose velocity is
  NaN are left out of `multi_window_results`, NaN accelerations out of
  `eigenvalue_gradients`, and assets without a price out of `asset_prices`;
* a scan whose vel_div (or v50 / v750) is NaN — the warm-up scans before the long
  window fills — cannot be published: `unpublishable_reason` says why, and
  `payload_from_record` raises `UnpublishableScan`. Such scans stay in the archive.
"""

from __future__ import annotations

import math

from dolphin.bus.payloads import EigenScan, WindowStats
from dolphin.store.arrow_scans import NG5_WINDOWS, ScanRecord, iso_from_ns


class UnpublishableScan(ValueError):
    """A scan the bus payload cannot carry (a required statistic is undefined)."""


def _defined(value: float) -> float | None:
    return value if math.isfinite(value) else None


def unpublishable_reason(record: ScanRecord) -> str | None:
    """Why `record` cannot become an `EigenScan`, or None when it can."""
    for name in ("vel_div", "w50_velocity", "w750_velocity"):
        if not math.isfinite(getattr(record, name)):
            return f"{name} is undefined (warm-up)"
    return None


def payload_from_record(record: ScanRecord, *, bridge_ts: float) -> EigenScan:
    """The NG8 flat bus payload of one scan; `bridge_ts` = wall-clock unix seconds of the bus write."""
    reason = unpublishable_reason(record)
    if reason is not None:
        raise UnpublishableScan(f"scan {record.scan_number}: {reason}")
    windows: dict[str, WindowStats] = {}
    gradients: dict[str, float] = {}
    for w in NG5_WINDOWS:
        lambda_max, velocity, acceleration, instability = record.window(w)
        if math.isfinite(velocity):
            windows[str(w)] = WindowStats(velocity=velocity, lambda_max=_defined(lambda_max),
                                          instability=_defined(instability))
        if math.isfinite(acceleration):
            gradients[str(w)] = acceleration
    return EigenScan(
        scan_number=record.scan_number,
        timestamp_ns=record.timestamp_ns,
        timestamp=iso_from_ns(record.timestamp_ns),
        bridge_ts=bridge_ts,
        vel_div=record.vel_div,
        w50_velocity=record.w50_velocity,
        w150_velocity=_defined(record.w150_velocity),
        w300_velocity=_defined(record.w300_velocity),
        w750_velocity=record.w750_velocity,
        instability_50=_defined(record.w50_instability),
        instability_150=_defined(record.w150_instability),
        asset_prices=record.price_map(),
        eigenvalue_gradients=gradients,
        multi_window_results=windows,
    )


__all__ = ["UnpublishableScan", "payload_from_record", "unpublishable_reason"]
