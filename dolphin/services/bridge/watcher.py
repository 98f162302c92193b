"""Finding new scan files by modification time (bible §2a.2, §24.4).

An external scanner's scan numbers restart with the scanner, so "newer" cannot mean
"a larger number": it means a later mtime. The watcher polls (inotify is Linux-only
and does not see writes made by another host on a shared mount, which is how
external scanners deliver), and keeps the polling cheap:

* a day directory is listed only when its mtime changed, and for `slack_s` seconds
  after we saw it change — directory mtimes have coarse granularity on some
  filesystems, so an entry added in the same tick as the change we saw is still
  found;
* a file is handed out once per (mtime, size): files at or below the newest mtime
  handed out minus `slack_s` are history and ignored, which bounds the memory to the
  files of the last few seconds;
* `retry()` asks for a file to be looked at again on the next poll (a write still in
  progress), whether or not its directory changes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dolphin.store.arrow_scans import DAY_DIR_RE, SCAN_FILE_RE


@dataclass(frozen=True, slots=True)
class FileSeen:
    """One observation of a scan file."""

    path: str
    mtime_ns: int
    size: int


class ArchiveWatcher:
    """Scan files under an arrow_scans directory that appeared or changed since the last look."""

    def __init__(self, root: str | Path, *, slack_s: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(root)
        self._slack_s = slack_s
        self._slack_ns = int(slack_s * 1e9)
        self._monotonic = monotonic
        self._high_ns = 0
        self._recent: dict[str, tuple[int, int]] = {}
        self._dirs: dict[str, tuple[int, float]] = {}  # day → (mtime_ns, when we saw it change)
        self._retry: dict[str, FileSeen] = {}

    @property
    def exists(self) -> bool:
        return self.root.is_dir()

    def scan_all(self) -> list[FileSeen]:
        """Every scan file present now, oldest mtime first; all of them count as handed out."""
        now = self._monotonic()
        files: list[FileSeen] = []
        for day, mtime in self._days():
            self._dirs[day] = (mtime, now)
            files.extend(self._list(day, floor_ns=None))
        files.sort(key=lambda f: (f.mtime_ns, f.path))
        self._hand_out(files)
        return files

    def poll(self) -> list[FileSeen]:
        """Files new or changed since the last call (and files asked to be retried), oldest mtime first."""
        now = self._monotonic()
        found: dict[str, FileSeen] = {}
        for day, mtime in self._days():
            previous = self._dirs.get(day)
            if previous is None or previous[0] != mtime:
                self._dirs[day] = (mtime, now)
            elif now - previous[1] >= self._slack_s:
                continue
            for seen in self._list(day, floor_ns=self._high_ns - self._slack_ns):
                if self._recent.get(seen.path) != (seen.mtime_ns, seen.size):
                    found[seen.path] = seen
        retry, self._retry = self._retry, {}
        for path in retry:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            found[path] = FileSeen(path, st.st_mtime_ns, st.st_size)
        files = sorted(found.values(), key=lambda f: (f.mtime_ns, f.path))
        self._hand_out(files)
        return files

    def retry(self, seen: FileSeen) -> None:
        """Look at this file again on the next poll."""
        self._retry[seen.path] = seen

    # ------------------------------------------------------------ internals
    def _days(self) -> list[tuple[str, int]]:
        try:
            with os.scandir(self.root) as entries:
                return [(e.name, e.stat().st_mtime_ns) for e in entries if DAY_DIR_RE.match(e.name) and e.is_dir()]
        except FileNotFoundError:
            return []

    def _list(self, day: str, floor_ns: int | None) -> list[FileSeen]:
        out: list[FileSeen] = []
        try:
            with os.scandir(self.root / day) as entries:
                for entry in entries:
                    if not SCAN_FILE_RE.match(entry.name):
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:  # replaced or removed since the listing
                        continue
                    if floor_ns is None or st.st_mtime_ns > floor_ns:
                        out.append(FileSeen(entry.path, st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            pass
        return out

    def _hand_out(self, files: list[FileSeen]) -> None:
        for f in files:
            self._recent[f.path] = (f.mtime_ns, f.size)
            self._high_ns = max(self._high_ns, f.mtime_ns)
        floor = self._high_ns - self._slack_ns
        if files and len(self._recent) > 64:
            self._recent = {p: k for p, k in self._recent.items() if k[0] > floor}
