"""The trader's trust boundary for bus scans: what may become an engine step.

Anything can be written to ``DOLPHIN_FEATURES["latest_eigen_scan"]``. The bus codec has
already refused what is not a scan at all (bad JSON, wrong types, NaN); this gate refuses
what is a well-formed scan but cannot be the next one:

* ``implausible`` — outside the math's bounds, or pricing no asset of the universe
  (`scan_codec.implausible_reason`);
* ``backwards`` — a higher number with a bar time at or before the last step's;
* ``jump`` — numbers and bar times are locked together (the scanner numbers every bar):
  scan N+k must open k bars after scan N. A scan that breaks the lock, or jumps further
  than `max_jump_bars` ahead, is refused — one forged number can no longer make every
  real scan after it a "duplicate";
* ``future`` — a bar that has not closed yet on the market's own clock;
* ``archive_mismatch`` — the archive (the source of truth for what a number means) holds
  this number with other content.

A refused scan is counted by reason and logged once per reason per minute with its
source (`Rejections`); the trader goes on with the next scan. Duplicates (a number at or
below the last step) are not rejections: the bus re-delivers values after reconnects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from dolphin.bus.codec import Rejections
from dolphin.bus.scan_codec import implausible_reason, same_scan
from dolphin.enums import ScanRejection
from dolphin.scan.record import ScanRecord

log = logging.getLogger("dolphin.trader")

SOURCE = "DOLPHIN_FEATURES[latest_eigen_scan]"
MAX_JUMP_BARS = 17_280          # one day of 5 s bars: a longer outage restarts the book's day anyway
FUTURE_TOLERANCE_BARS = 2       # clock skew between the trader's view of the market clock and the scanner's


@dataclass(frozen=True, slots=True)
class Verdict:
    """None reason: admitted. `duplicate`: already stepped (not a rejection)."""

    reason: ScanRejection | None = None
    detail: str = ""
    duplicate: bool = False

    @property
    def admitted(self) -> bool:
        return self.reason is None and not self.duplicate


ADMITTED = Verdict()
DUPLICATE = Verdict(duplicate=True)


class ScanGate:
    """Admission of bus scans against the last step, the universe, the market clock and the archive.

    `screen` is what can be judged from the scan alone (plausibility, the market clock);
    `check` adds the sequence (duplicate, backwards, jump) and the archive. The trader
    screens first, so nothing implausible or from the future ever triggers a gap fill.
    """

    def __init__(self, assets: list[str], bar_ms: int, *, market_now: Callable[[], int | None] = lambda: None,
                 archived: Callable[[ScanRecord], ScanRecord | None] = lambda r: None,
                 max_jump_bars: int = MAX_JUMP_BARS, rejections: Rejections | None = None) -> None:
        self.known = frozenset(assets)
        self.bar_ms = int(bar_ms)
        self.market_now = market_now
        self.archived = archived
        self.max_jump_bars = max_jump_bars
        self.rejections = rejections if rejections is not None else Rejections()
        self.counts: dict[str, int] = {}

    def refuse(self, reason: ScanRejection, scan_number: int, detail: str) -> Verdict:
        """Count and log (once per reason per minute) a refused scan."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.rejections.record(SOURCE, str(scan_number), reason, detail, "the bus")
        return Verdict(reason, detail)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def screen(self, record: ScanRecord) -> Verdict:
        """What the scan alone says: plausible for this universe, and closed on the market's clock."""
        n = record.scan_number
        why = implausible_reason(record, self.known)
        if why is not None:
            return self.refuse(ScanRejection.IMPLAUSIBLE, n, f"scan {n}: {why}")
        ts_ms = record.timestamp_ns // 1_000_000
        now = self.market_now()
        if now is not None and ts_ms + self.bar_ms > now + FUTURE_TOLERANCE_BARS * self.bar_ms:
            return self.refuse(ScanRejection.FUTURE, n, f"scan {n}'s bar closes at {ts_ms + self.bar_ms} ms, "
                                                        f"the market is at {now} ms")
        return ADMITTED

    def check(self, record: ScanRecord, last_number: int, last_ts_ms: int | None) -> Verdict:
        """Is `record` admissible after the step (`last_number`, `last_ts_ms`)? Counts and logs refusals."""
        n = record.scan_number
        if n <= last_number:
            return DUPLICATE
        screened = self.screen(record)
        if screened.reason is not None:
            return screened
        ts_ms = record.timestamp_ns // 1_000_000
        if last_ts_ms is not None and last_number > 0:
            if ts_ms <= last_ts_ms:
                return self.refuse(ScanRejection.BACKWARDS, n, f"scan {n} opens at {ts_ms} ms, not after scan "
                                                               f"{last_number} ({last_ts_ms} ms)")
            steps = n - last_number
            if steps > self.max_jump_bars:
                return self.refuse(ScanRejection.JUMP, n, f"scan {n} is {steps} scans after {last_number} "
                                                          f"(more than {self.max_jump_bars} the archive could not fill)")
            if ts_ms - last_ts_ms != steps * self.bar_ms:
                return self.refuse(ScanRejection.JUMP, n, f"scan {n} opens {ts_ms - last_ts_ms} ms after scan "
                                                          f"{last_number}: {steps} bar(s) of {self.bar_ms} ms "
                                                          f"would be {steps * self.bar_ms}")
        stored = self.archived(record)
        if stored is not None:
            diff = same_scan(record, stored)
            if diff is not None:
                return self.refuse(ScanRejection.ARCHIVE_MISMATCH, n, f"scan {n} differs from its archived file: "
                                                                      f"{diff}")
        return ADMITTED


__all__ = ["ADMITTED", "DUPLICATE", "MAX_JUMP_BARS", "ScanGate", "Verdict"]
