"""When the ACB re-evaluates, and what it writes: the engine's ACB functions over live inputs.

The verdict itself is the engine's (`AdaptiveCircuitBreaker.day`: §10.2 signals and base
boost, §10.3 beta at the trailing w750 percentile, OB-4's beta uplift) — one
implementation, shared with every backtest. This module only feeds it live inputs and
decides when to run it:

* at the first evaluation, and when the market's UTC date changes (the daily Scale 1/3);
* sub-day, when ExF's *signals* change (a factor crossed a §10.2 threshold, or a factor
  went stale or came back), or when OB withdrawal stress starts or ends (OB-4).

A moving factor that crosses no threshold changes nothing ACB computes from it, so it
does not re-evaluate; beta is re-read from the trailing w750 distribution at every
evaluation. A factor ExF marks stale does not count (NaN, as the engine reads a missing
factor): ACB only ever *raises* size, and an old reading must not keep it raised.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dolphin.bus import AcbBoost, ExfLatest, ObMacro
from dolphin.bus.listeners import BusEvent
from dolphin.bus.payloads import EXF_FACTORS
from dolphin.engine.acb import AcbDay, AdaptiveCircuitBreaker, ExternalFactors, acb_signals
from dolphin.engine.params import AcbParams

START, DAY, EXF, OB = "start", "day", "exf", "ob"


class W750History:
    """The trailing w750 velocities of the scans (oldest first), fed by the archive and the bus.

    A listener sink: `deliver` runs on the client's thread, so appends take a lock; a scan
    number not above the last one is a re-delivery and is ignored.
    """

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._values: deque[float] = deque(maxlen=size)
        self.last_scan = 0
        self.last_ts_ms: int | None = None

    def extend(self, scan_numbers: np.ndarray, ts_ms: np.ndarray, w750: np.ndarray) -> None:
        with self._lock:
            for n, t, v in zip(scan_numbers, ts_ms, w750, strict=True):
                if int(n) > self.last_scan:
                    self._values.append(float(v))
                    self.last_scan, self.last_ts_ms = int(n), int(t)

    def add(self, scan_number: int, ts_ms: int, w750: float) -> None:
        with self._lock:
            if scan_number > self.last_scan:
                self._values.append(float(w750))
                self.last_scan, self.last_ts_ms = scan_number, ts_ms

    def deliver(self, event: BusEvent) -> None:
        scan = event.payload
        w750 = getattr(scan, "w750_velocity", None)
        if scan is None or w750 is None:
            return
        self.add(int(scan.scan_number), int(scan.timestamp_s() * 1000), float(w750))

    def array(self) -> np.ndarray:
        with self._lock:
            return np.fromiter(self._values, dtype=np.float64, count=len(self._values))

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)


@dataclass(frozen=True, slots=True)
class _ExfSource:
    """The engine's `ExternalFactorsSource` over one ExF reading."""

    factors: ExternalFactors

    def factors_for(self, date: str) -> ExternalFactors | None:
        return self.factors


def factors_of(exf: ExfLatest | None) -> tuple[ExternalFactors, list[str]]:
    """The §10.2 factors ExF gives, NaN for a missing or stale one (named in the second value)."""
    if exf is None:
        return ExternalFactors(), list(EXF_FACTORS)
    stale = set(exf.stale)
    values: dict[str, float] = {}
    dropped: list[str] = []
    for name in EXF_FACTORS:
        v = exf.value(name)
        if v is None or name in stale:
            dropped.append(name)
            values[name] = math.nan
        else:
            values[name] = float(v)
    return ExternalFactors(**values), dropped


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class AcbProcessor:
    """Re-evaluates on the triggers above and builds the `acb_boost` payload."""

    def __init__(self, params: AcbParams, *, writer: str, ob_macro_stale_s: float = 180.0) -> None:
        self.params = params
        self.writer = writer
        self.ob_macro_stale_s = ob_macro_stale_s
        self.history = W750History(params.w750_history_bars)
        self.verdict: AcbDay | None = None
        self.payload: AcbBoost | None = None
        self.evaluations = 0
        self._key: tuple[Any, ...] | None = None

    def market_date(self, now: float) -> str:
        """The UTC date of the latest scan (market time), or of the wall clock before any scan."""
        ts = self.history.last_ts_ms
        seconds = ts / 1000.0 if ts is not None else now
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")

    def ob_stress(self, macro: ObMacro | None, now: float) -> bool:
        """OB-4: the latest macro says withdrawal stress (regime +1) and is fresh."""
        return (macro is not None and macro.regime_signal == 1.0
                and now - macro.timestamp_s() <= self.ob_macro_stale_s)

    def step(self, now: float, exf: ExfLatest | None, macro: ObMacro | None) -> str | None:
        """Re-evaluate if a trigger fired; returns the trigger (None: the standing verdict holds)."""
        factors, dropped = factors_of(exf)
        signals = acb_signals(factors, self.params)
        stress = self.ob_stress(macro, now)
        date = self.market_date(now)
        key = (date, signals, tuple(dropped), stress)
        if self._key is not None and key == self._key:
            return None
        if self._key is None:
            trigger = START
        elif key[0] != self._key[0]:
            trigger = DAY
        elif key[3] != self._key[3]:
            trigger = OB
        else:
            trigger = EXF
        self._key = key
        acb = AdaptiveCircuitBreaker(self.params, _ExfSource(factors))
        self.verdict = acb.day(date, self.history.array(), ob_regime_signal=1.0 if stress else 0.0)
        self.evaluations += 1
        self.payload = AcbBoost(
            boost=self.verdict.boost, beta=self.verdict.beta, signals=self.verdict.signals, date=date,
            factors={n: float(getattr(factors, n)) for n in EXF_FACTORS if math.isfinite(getattr(factors, n))},
            stale_factors=dropped, computed_at=now, trigger=trigger, w750_now=_finite(self.verdict.w750_now),
            w750_threshold=_finite(self.verdict.w750_threshold), ob_stress=stress, writer=self.writer)
        return trigger

    def stamped(self, now: float, fence: int | None) -> AcbBoost:
        """The standing verdict, stamped for one write (``_pushed_at`` and the writer's fence)."""
        import msgspec

        assert self.payload is not None
        return msgspec.structs.replace(self.payload, pushed_at=now, fence=fence)
