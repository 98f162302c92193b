"""What the scanner must fetch at start: the archive's state and the backfill plan (pure functions).

First start (empty archive): the last `WARMUP_BARS` closed bars. The first 750 only
fill the windows; from the first bar whose vel_div is defined (the 751st) on, every
bar becomes an archived scan numbered 1, 2, … — not published — so consumers can warm
from the archive (the trader's volatility gate needs ~770 bars).

Restart (archive not empty): scan numbers resume at ``highest + 1``. The windows are
re-warmed on the `REWARM_BARS` bars up to and including the last archived bar (no new
scans for them), then every bar after it up to now becomes a scan: the gap is filled
and the archive has no hole. 752 bars, not 751: the first resumed scan's
``w750_acceleration`` needs the window-750 share two bars back.

If the market is behind the archive (a simulator restarted from an earlier time), the
plan re-warms what history exists and the live loop keeps feeding bars without scans
until it passes the last archived bar.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from dolphin.store.scan_archive import last_valid_scan

log = logging.getLogger("dolphin.scanner")

WARMUP_BARS = 1_650
"""Bars fetched on a first start: 751 to warm the windows, ~900 more archived as scans."""

REWARM_BARS = 752
"""Bars up to and including the last archived one, re-fed on a restart (see the module doc)."""

CHUNK_BARS = 4_320
"""Bars fetched and scanned per step of a long backfill (6 hours of 5 s bars): bounded memory."""


@dataclass(frozen=True, slots=True)
class ArchiveState:
    """What the archive says at start: the highest scan number and its bar's open time."""

    highest: int
    last_open_ms: int | None
    assets: tuple[str, ...] | None = None
    path: str | None = None

    @property
    def empty(self) -> bool:
        return self.highest == 0


def inspect_archive(root: str | Path) -> ArchiveState:
    """The highest *valid* scan (by content, not by name) and the open time of its bar.

    Unreadable files and files whose content names another scan number are moved to the
    quarantine beside the archive (`dolphin.store.scan_archive.last_valid_scan`), so a
    foreign or torn ``scan_…arrow`` can never renumber the archive or set the bar times.
    """
    found = last_valid_scan(root)
    if found is None:
        return ArchiveState(0, None)
    f, record = found
    return ArchiveState(record.scan_number, record.timestamp_ns // 1_000_000, record.assets, f.path)


def last_closed_open(now_ms: int, bar_ms: int) -> int:
    """Open time of the latest bar closed at ``now_ms`` (bars on the epoch grid; a bar closes at open + bar)."""
    return (int(now_ms) // bar_ms) * bar_ms - bar_ms


@dataclass(frozen=True, slots=True)
class BackfillPlan:
    """Fetch bars opening in ``[first_open, last_open]``; bars at or before ``warm_through`` get no scan."""

    first_open: int
    last_open: int
    warm_through: int | None
    first_start: bool
    bar_ms: int

    @property
    def bars(self) -> int:
        return max(0, (self.last_open - self.first_open) // self.bar_ms + 1)

    @property
    def missing(self) -> int:
        """Bars after the archive's last one that the backfill turns into scans (restart)."""
        if self.warm_through is None:
            return 0
        return max(0, (self.last_open - self.warm_through) // self.bar_ms)

    def chunks(self, size: int = CHUNK_BARS) -> list[tuple[int, int]]:
        """``[(first, last), …]`` covering the plan in order, at most ``size`` bars each."""
        out = []
        t = self.first_open
        while t <= self.last_open:
            end = min(self.last_open, t + (size - 1) * self.bar_ms)
            out.append((t, end))
            t = end + self.bar_ms
        return out


def plan_backfill(now_ms: int, bar_ms: int, archive: ArchiveState, *, warmup_bars: int = WARMUP_BARS,
                  rewarm_bars: int = REWARM_BARS) -> BackfillPlan:
    """The bars to fetch at start (see the module doc)."""
    last = last_closed_open(now_ms, bar_ms)
    if archive.empty or archive.last_open_ms is None:
        return BackfillPlan(last - (warmup_bars - 1) * bar_ms, last, None, True, bar_ms)
    archived = int(archive.last_open_ms)
    first = archived - (rewarm_bars - 1) * bar_ms
    return BackfillPlan(first, last, archived, False, bar_ms)


__all__ = ["CHUNK_BARS", "REWARM_BARS", "WARMUP_BARS", "ArchiveState", "BackfillPlan", "inspect_archive",
           "last_closed_open", "plan_backfill"]
