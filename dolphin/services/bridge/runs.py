"""Telling a double output from a scanner restart (bible §27.1, §2a.2).

Files arrive in mtime order. Within one run of an external scanner the scan numbers
grow. NG7 wrote a second file for the same scan number about three minutes after the
first (its slow cycle, with stale prices); the first file is the useful one. A scanner
restart starts its counter again, so numbers go back (usually to 1).

Both show up as "a number lower than the last one". What tells them apart is how
recently that number was seen, by file mtime (the writer's wall clock — never by
market timestamps, which a simulator may rewind):

* n seen in the current run less than `window_s` before this file → DUPLICATE (skip);
* otherwise n lower than the last number → RESET (a new run starts with n; push);
* otherwise → NEW (push).

Known limit: a scanner that restarts within `window_s` of its previous start
re-issues numbers that are still "recent": those files are taken as duplicates
until its counter passes the previous run's last number (pushing pauses for at most
that long, then resumes by itself). The memory holds only the numbers of the last
`window_s`, so it stays small.
"""

from __future__ import annotations

from collections import OrderedDict
from enum import StrEnum

DEFAULT_WINDOW_S = 600.0  # NG7's second file came ~3 min after the first


class Verdict(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    RESET = "reset"


class RunTracker:
    """The scan numbers of the external scanner's current run seen within the last `window_s` (by mtime)."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        self._window_ns = int(window_s * 1e9)
        self._seen: OrderedDict[int, int] = OrderedDict()  # scan number → mtime of its first file, oldest first
        self.last: int | None = None
        self.runs = 0

    def classify(self, scan_number: int, mtime_ns: int) -> Verdict:
        """Decide on one file (files must come in mtime order) and remember it."""
        self._forget_before(mtime_ns - self._window_ns)
        if scan_number in self._seen:
            return Verdict.DUPLICATE
        if self.last is not None and scan_number < self.last:
            self._seen.clear()
            verdict = Verdict.RESET
        else:
            verdict = Verdict.NEW
        if self.last is None or verdict is Verdict.RESET:
            self.runs += 1
        self._seen[scan_number] = mtime_ns
        self.last = scan_number
        return verdict

    def _forget_before(self, cutoff_ns: int) -> None:
        while self._seen:
            number, first_ns = next(iter(self._seen.items()))
            if first_ns >= cutoff_ns:
                return
            del self._seen[number]
