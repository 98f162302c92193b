"""The bridge's pure parts: double output vs restart (by mtime), and finding new files by mtime."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dolphin.services.bridge import ArchiveWatcher, RunTracker, Verdict

S = 1_000_000_000  # one second in ns


def test_numbers_in_a_run_are_new_and_a_repeat_is_a_duplicate() -> None:
    runs = RunTracker(window_s=600)
    assert [runs.classify(n, n * 5 * S) for n in (1, 2, 3)] == [Verdict.NEW] * 3
    assert runs.classify(2, 180 * S) is Verdict.DUPLICATE  # NG7's slow cycle, 3 minutes late
    assert runs.classify(3, 181 * S) is Verdict.DUPLICATE
    assert runs.classify(4, 182 * S) is Verdict.NEW and runs.last == 4 and runs.runs == 1


def test_a_lower_number_not_seen_recently_starts_a_new_run() -> None:
    runs = RunTracker(window_s=600)
    for n in range(1, 200):
        runs.classify(n, n * 5 * S)
    restart = 200 * 5 * S + 60 * S
    assert runs.classify(1, restart) is Verdict.RESET  # scan 1 was seen ~17 minutes ago
    assert runs.classify(2, restart + 5 * S) is Verdict.NEW
    assert runs.classify(1, restart + 10 * S) is Verdict.DUPLICATE  # a double output in the new run
    assert runs.runs == 2 and runs.last == 2


def test_a_quick_restart_pauses_until_its_counter_passes_the_old_run() -> None:
    runs = RunTracker(window_s=600)
    for n in (1, 2, 3):
        runs.classify(n, n * 5 * S)
    verdicts = [runs.classify(n, (20 + n * 5) * S) for n in (1, 2, 3, 4)]
    assert verdicts == [Verdict.DUPLICATE, Verdict.DUPLICATE, Verdict.DUPLICATE, Verdict.NEW]


def test_the_tracker_forgets_numbers_older_than_its_window() -> None:
    runs = RunTracker(window_s=10)
    for n in range(1, 1001):
        runs.classify(n, n * S)
    assert len(runs._seen) <= 11
    assert runs.classify(5, 1001 * S) is Verdict.RESET


def _put(path: Path, mtime_ns: int, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_the_watcher_hands_out_new_and_changed_files_in_mtime_order(tmp_path: Path) -> None:
    root = tmp_path / "arrow_scans"
    watcher = ArchiveWatcher(root, slack_s=5.0)
    assert watcher.scan_all() == [] and watcher.poll() == []  # no directory yet: nothing, no error
    now = time.time_ns()
    _put(root / "2026-04-05" / "scan_000001_120005.arrow", now)
    _put(root / "2026-04-05" / "scan_000002_120010.arrow", now - 1 * S)  # renamed in later, written earlier
    _put(root / "2026-04-05" / ".scan_000003_120015.arrow.abc.tmp", now)  # a write in progress
    _put(root / "2026-04-05" / "readme.txt", now)
    found = watcher.poll()
    assert [Path(f.path).name for f in found] == ["scan_000002_120010.arrow", "scan_000001_120005.arrow"]
    assert watcher.poll() == []  # handed out once

    _put(root / "2026-04-05" / "scan_000001_120005.arrow", now + 1 * S, b"rewritten")
    _put(root / "2026-04-06" / "scan_000003_000000.arrow", now + 2 * S)  # a new day directory
    assert [Path(f.path).name for f in watcher.poll()] == ["scan_000001_120005.arrow", "scan_000003_000000.arrow"]

    _put(root / "2026-04-06" / "scan_000000_235959.arrow", now - 3600 * S)  # copied in with an old mtime: history
    assert watcher.poll() == []

    seen = watcher.scan_all()[-1]
    watcher.retry(seen)  # e.g. still being written: looked at again even though nothing changed
    assert watcher.poll() == [seen]
    assert watcher.poll() == []


def test_scan_all_lists_everything_oldest_first(tmp_path: Path) -> None:
    root = tmp_path / "arrow_scans"
    now = time.time_ns()
    for k in range(5):
        _put(root / "2026-04-05" / f"scan_{k + 1:06d}_12000{k}.arrow", now - (5 - k) * S)
    watcher = ArchiveWatcher(root)
    assert [Path(f.path).name[:11] for f in watcher.scan_all()] == [f"scan_{k:06d}" for k in range(1, 6)]
    assert watcher.poll() == []
