"""The scan codec: every conversion of a scan, in one module (one codec per payload family).

`dolphin.scan.record.ScanRecord` is the canonical scan. This module is the only place
that turns it into something else or builds it from something else:

* **Arrow row** — `record_to_row` / `record_from_row`: the values of the 27 NG5 columns
  (the JSON columns encoded). The file format around them (schema, one-row IPC file,
  atomic write) is `dolphin.store.arrow_scans`.
* **bus payload** — `payload_from_record` writes the NG8 flat `EigenScan` (bible §27.5);
  `record_from_payload` reads NG8 flat and NG7 nested (§28.5 read-normalisation) alike.
* **engine input** — `bar_from_record`, `bar_from_payload`, `bars_from_table` (the
  archive and scan tables), and the journal's `ScanInput` both ways (`bar_from_input`,
  `input_from_bar`), so the trader, `backtest --journal` and recovery step the same bar.

`EigenScan` refuses NaN anywhere, and its `vel_div`, `w50_velocity` and `w750_velocity`
are required floats. So optional statistics that are NaN are left out (None), windows
whose velocity is NaN are left out of `multi_window_results`, and a scan whose vel_div
(or v50 / v750) is NaN — the warm-up scans before the long window fills — cannot be
published: `unpublishable_reason` says why and `payload_from_record` raises
`UnpublishableScan`. Such scans stay in the archive.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from dolphin.bus.payloads import EigenScan, EigenScanNG7, WindowStats, parse_time
from dolphin.scan.definitions import DEFAULT_WINDOWS, vel_div
from dolphin.scan.record import (
    SCHEMA_VERSION,
    WINDOW_COLUMNS,
    ScanBar,
    ScanRecord,
    instability_composite,
    iso_from_ns,
    regime_signal,
)

if TYPE_CHECKING:
    from dolphin.scan.table import ScanTable
    from dolphin.store.journal import ScanInput

#: Columns the codec encodes as JSON text in the Arrow row.
JSON_COLUMNS: tuple[str, ...] = ("assets", "prices", "loadings")

_JSON = msgspec.json.Encoder()
_ASSETS = msgspec.json.Decoder(list[str])
_PRICES = msgspec.json.Decoder(list[float | None])
_PRICE_ROWS = msgspec.json.Decoder(list[list[float | None]])
_LOADINGS = msgspec.json.Decoder(dict[str, list[float | None]])


class UnpublishableScan(ValueError):
    """A scan the bus payload cannot carry (a required statistic is undefined)."""


def _defined(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


# ---------------------------------------------------------------- Arrow row
def record_to_row(record: ScanRecord) -> dict[str, Any]:
    """The NG5 column values of `record`, by column name, in file order."""
    row: dict[str, Any] = {name: getattr(record, name) for name in record.__struct_fields__}
    row["assets"] = _JSON.encode(list(record.assets)).decode()
    row["prices"] = _JSON.encode(list(record.prices)).decode()
    row["loadings"] = _JSON.encode({k: list(v) for k, v in record.loadings.items()}).decode()
    return row


def decode_assets(text: str) -> list[str]:
    """The ``assets`` column: symbols, in price order."""
    return _ASSETS.decode(text)


def decode_prices(text: str) -> list[float | None]:
    """The ``prices`` column: one close per asset, None = no price."""
    return _PRICES.decode(text)


def decode_price_rows(texts: list[str]) -> list[list[float | None]]:
    """Many ``prices`` columns at once (one JSON document), for the archive's bulk loader."""
    return _PRICE_ROWS.decode("[" + ",".join(texts) + "]")


#: Scan-table column ← record field (bible §3.1 names on the left, NG5 names on the right).
TABLE_FROM_RECORD: dict[str, str] = {
    "vel_div": "vel_div",
    **{f"v{w}_lambda_max_velocity": f"w{w}_velocity" for w in DEFAULT_WINDOWS},
    "instability_50": "w50_instability",
    "instability_150": "w150_instability",
}


def record_from_row(row: Mapping[str, Any]) -> ScanRecord:
    """The record of one Arrow row's values; ValueError says which value is wrong."""
    values = dict(row)
    try:
        values["assets"] = tuple(decode_assets(values["assets"]))
        values["prices"] = tuple(decode_prices(values["prices"]))
        values["loadings"] = {k: tuple(v) for k, v in _LOADINGS.decode(values["loadings"]).items()}
        return ScanRecord(**values)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None
    except TypeError as exc:
        raise ValueError(f"not an NG5 row: {exc}") from None


# ---------------------------------------------------------------- bus payload
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
    for w in DEFAULT_WINDOWS:
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


def _record(scan_number: int, timestamp_ns: int, prices: Mapping[str, float], stats: dict[str, float],
            signal: float) -> ScanRecord:
    assets = tuple(prices)
    return ScanRecord(scan_number=scan_number, timestamp_ns=timestamp_ns, timestamp=iso_from_ns(timestamp_ns),
                      **stats, vel_div=signal, regime_signal=regime_signal(signal),
                      instability_composite=instability_composite([stats[f"w{w}_instability"]
                                                                   for w in DEFAULT_WINDOWS]),
                      n_assets=len(assets), assets=assets, prices=tuple(float(prices[a]) for a in assets),
                      loadings={}, schema_version=SCHEMA_VERSION)


def _window_stats(mwr: Mapping[str, WindowStats], flat: Mapping[int, float | None],
                  gradients: Mapping[str, float]) -> dict[str, float]:
    stats = dict.fromkeys(WINDOW_COLUMNS, math.nan)
    for w in DEFAULT_WINDOWS:
        ws = mwr.get(str(w))
        velocity = ws.velocity if ws is not None else flat.get(w)
        stats[f"w{w}_velocity"] = _nan(velocity)
        if ws is not None:
            stats[f"w{w}_lambda_max"] = _nan(ws.lambda_max)
            stats[f"w{w}_instability"] = _nan(ws.instability)
        if str(w) in gradients:
            stats[f"w{w}_acceleration"] = float(gradients[str(w)])
    return stats


def record_from_payload(scan: EigenScan | EigenScanNG7) -> ScanRecord:
    """The record of a bus scan, NG8 flat or NG7 nested (§28.5); the payload's checks already ran.

    What a payload does not carry (loadings; an NG7 scan's accelerations) is undefined in
    the record. An NG7 scan without `vel_div` gets v50 − v750 (bible §3.1). ValueError when
    the payload contradicts the record's own checks (e.g. a duplicate symbol).
    """
    if isinstance(scan, EigenScan):
        flat: dict[int, float | None] = {50: scan.w50_velocity, 150: scan.w150_velocity, 300: scan.w300_velocity,
                                         750: scan.w750_velocity}
        stats = _window_stats(scan.multi_window_results, flat, scan.eigenvalue_gradients)
        if not math.isfinite(stats["w50_instability"]) and scan.instability_50 is not None:
            stats["w50_instability"] = scan.instability_50
        if not math.isfinite(stats["w150_instability"]) and scan.instability_150 is not None:
            stats["w150_instability"] = scan.instability_150
        return _record(scan.scan_number, scan.timestamp_ns, scan.asset_prices, stats, scan.vel_div)
    result = scan.result
    stats = _window_stats(result.multi_window_results, {}, {})
    signal = result.vel_div
    if signal is None:
        signal = vel_div(stats["w50_velocity"], stats["w750_velocity"])
    timestamp_ns = int(round(parse_time(scan.timestamp) * 1e9))
    if timestamp_ns <= 0:
        raise ValueError(f"NG7 scan {scan.scan_number}: timestamp {scan.timestamp!r} is not a market time")
    return _record(scan.scan_number, timestamp_ns, result.asset_prices, stats, float(signal))


# ---------------------------------------------------------------- plausibility (the trust boundary)
#: |velocity| of a window: a difference of two market-mode shares, each in [0, 1].
MAX_ABS_VELOCITY = 1.0
#: |vel_div|: the difference of two velocities.
MAX_ABS_VEL_DIV = 2.0


def implausible_reason(record: ScanRecord, known_assets: frozenset[str] | set[str]) -> str | None:
    """Why a scan cannot be what a scanner produced for this universe, or None when it can.

    The payload's own checks already refused NaN/inf and non-positive prices; this adds
    the bounds of the math (|velocity| ≤ 1, |vel_div| ≤ 2, vel_div = v50 − v750 up to
    rounding) and that it prices at least one asset of the universe.
    """
    for name in ("vel_div", "w50_velocity", "w750_velocity"):
        if not math.isfinite(getattr(record, name)):
            return f"{name} is undefined"
    for w in DEFAULT_WINDOWS:
        v = record.window(w)[1]
        if math.isfinite(v) and abs(v) > MAX_ABS_VELOCITY:
            return f"w{w}_velocity={v} is outside [-1, 1]"
    if abs(record.vel_div) > MAX_ABS_VEL_DIV:
        return f"vel_div={record.vel_div} is outside [-2, 2]"
    expected = vel_div(record.w50_velocity, record.w750_velocity)
    if abs(record.vel_div - expected) > 1e-9 * max(1.0, abs(expected)):
        return f"vel_div={record.vel_div} is not w50 - w750 velocity ({expected})"
    if not any(a in known_assets for a, p in zip(record.assets, record.prices, strict=True) if p is not None):
        return f"prices name no asset of the universe ({len(record.assets)} symbol(s))"
    return None


def same_scan(a: ScanRecord, b: ScanRecord) -> str | None:
    """None when two records of one scan number agree on what the engine reads; else the difference."""
    if a.timestamp_ns != b.timestamp_ns:
        return f"bar time {iso_from_ns(a.timestamp_ns)} vs {iso_from_ns(b.timestamp_ns)}"
    for name in ("vel_div", "w50_velocity", "w750_velocity"):
        x, y = getattr(a, name), getattr(b, name)
        if not (x == y or (math.isnan(x) and math.isnan(y))):
            return f"{name} {x} vs {y}"
    pa_, pb = a.price_map(), b.price_map()
    shared = pa_.keys() & pb.keys()
    if len(shared) < min(len(pa_), len(pb)) or any(pa_[k] != pb[k] for k in shared):
        return "prices differ"
    return None


# ---------------------------------------------------------------- engine input
def bar_from_record(record: ScanRecord, published_s: float | None = None) -> ScanBar:
    """The engine's input of one scan (NaN where a statistic is undefined)."""
    return ScanBar(scan_number=record.scan_number, ts_ms=record.timestamp_ns // 1_000_000, vel_div=record.vel_div,
                   v50=record.w50_velocity, v750=record.w750_velocity, prices=record.price_map(),
                   published_s=published_s)


def bar_from_payload(scan: EigenScan | EigenScanNG7) -> ScanBar:
    """The engine's input of a bus scan (either format), stamped with its publish time."""
    return bar_from_record(record_from_payload(scan), published_s=scan.published_s())


def bars_from_table(table: ScanTable, index: np.ndarray | None = None) -> list[ScanBar]:
    """The engine's inputs of a scan table's rows (all, or the selected ones), in order.

    Assets without a finite positive price in a row are absent from that bar's prices.
    """
    rows = np.arange(table.rows) if index is None else np.asarray(index)
    if rows.dtype == bool:
        rows = rows.nonzero()[0]
    assets = list(table.assets)
    bars: list[ScanBar] = []
    for i in rows.tolist():
        prices = {a: float(p) for a, p in zip(assets, table.prices[i].tolist()) if math.isfinite(p) and p > 0}
        bars.append(ScanBar(scan_number=int(table.scan_number[i]), ts_ms=int(table.ts[i]),
                            vel_div=float(table.vel_div[i]), v50=float(table.v50_lambda_max_velocity[i]),
                            v750=float(table.v750_lambda_max_velocity[i]), prices=prices))
    return bars


def records_from_table(table: ScanTable) -> Iterator[ScanRecord]:
    """The records of a scan table's rows (what a table does not hold — λmax, loadings — is undefined)."""
    assets = list(table.assets)
    columns = {field: getattr(table, column) for column, field in TABLE_FROM_RECORD.items() if field != "vel_div"}
    for i in range(table.rows):
        stats = dict.fromkeys(WINDOW_COLUMNS, math.nan)
        for name, column in columns.items():
            stats[name] = float(column[i])
        prices = {a: float(p) for a, p in zip(assets, table.prices[i].tolist()) if math.isfinite(p) and p > 0}
        yield _record(int(table.scan_number[i]), int(table.ts[i]) * 1_000_000, prices, stats, float(table.vel_div[i]))


def bar_from_input(record: ScanInput) -> ScanBar:
    """The bar a journaled step saw (for recovery and `backtest --journal`)."""
    return ScanBar(scan_number=record.scan_number, ts_ms=record.ts_ms, vel_div=_nan(record.vel_div),
                   v50=_nan(record.v50), v750=_nan(record.v750), prices=record.prices)


def input_from_bar(bar: ScanBar, *, seq: int, vol_ok: bool, trade: bool, acb: tuple[float, float] | None,
                   posture: str | None, kill_switch: bool, ob: list[float] | None = None,
                   ob_source: str | None = None, mc: tuple[float, float] | None = None,
                   kill_level: str | None = None, manual_exit: str | None = None) -> ScanInput:
    """The journal's write-ahead record of one step on `bar` (undefined statistics as null)."""
    from dolphin.store.journal import ScanInput

    return ScanInput(seq=seq, scan_number=bar.scan_number, ts_ms=bar.ts_ms, vel_div=_defined(bar.vel_div),
                     v50=_defined(bar.v50), v750=_defined(bar.v750), vol_ok=vol_ok, prices=bar.prices, trade=trade,
                     acb=acb, posture=posture, kill_switch=kill_switch, ob=ob, ob_source=ob_source, mc=mc,
                     kill_level=kill_level, manual_exit=manual_exit)


__all__ = ["JSON_COLUMNS", "TABLE_FROM_RECORD", "UnpublishableScan", "bar_from_input", "bar_from_payload", "bar_from_record",
           "bars_from_table", "decode_assets", "decode_price_rows", "decode_prices", "implausible_reason", "input_from_bar",
           "payload_from_record", "same_scan",
           "record_from_payload", "record_from_row", "record_to_row", "records_from_table", "unpublishable_reason"]
