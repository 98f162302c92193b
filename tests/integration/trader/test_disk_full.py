"""ENOSPC on a real (tiny) filesystem: the trader halts and resumes with intact books; MHS keeps reporting.

The journal's directory and the MHS report live on a small tmpfs the test mounts and
fills. Mounting needs root (CI runs as root); elsewhere the test skips saying so, and
with CI=true it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dolphin.bus import MetaHealth
from dolphin.services.mhs.service import FamilyView, HealthMonitor
from dolphin.store.arrow_scans import write_scan
from dolphin.store.journal import Journal
from tests.integration.trader.support import ARCHIVED, Harness
from tests.support import wait_until

pytestmark = [pytest.mark.degradation, pytest.mark.slow]


def _can_mount() -> str | None:
    """None when this process may mount a tmpfs; else why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount/umount are not installed"
    return None


@pytest.fixture
def small_disk_allowed() -> None:
    why = _can_mount()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"ENOSPC test cannot run: {why}")
        pytest.skip(f"ENOSPC test needs a tmpfs: {why}")


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs: {proc.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path, leave_bytes: int) -> Path:
    """Write a filler file until only about `leave_bytes` are free on path's filesystem."""
    filler = path / "filler"
    free = shutil.disk_usage(path).free
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave_bytes))
    return filler


def test_a_full_journal_disk_halts_the_trader_and_it_resumes_with_intact_books(
        small_disk_allowed: None, harness: Harness) -> None:
    recs = harness.records
    harness.step(recs[ARCHIVED])
    harness.stop()
    journal_dir = harness.home / "journal"
    saved = (journal_dir / "blue.jsonl").read_bytes()
    shutil.rmtree(journal_dir)
    with tmpfs(journal_dir, "4m"):
        (journal_dir / "blue.jsonl").write_bytes(saved)
        harness.start()
        harness.step(recs[ARCHIVED + 1])
        for rec in recs[ARCHIVED: ARCHIVED + 14]:   # the scanner archives every scan it publishes
            write_scan(harness.home, rec)
        filler = fill(journal_dir, 0)           # the file's last page may still take a record or two
        halted = None
        for i in range(ARCHIVED + 2, ARCHIVED + 12):
            harness.put(recs[i])
            state = wait_until(lambda i=i: (s := harness.state()) is not None
                               and (s.halted or s.last_scan_number == recs[i].scan_number) and s, 60,
                               what=f"scan {recs[i].scan_number} stepped or the halt reported")
            if state.halted:
                halted, failed_at = state, i
                break
        assert halted is not None and "journal not writable" in halted.halted
        assert halted.last_scan_number == recs[failed_at - 1].scan_number
        harness.put(recs[failed_at + 1])        # arrives while halted: dropped, filled from the archive later
        assert harness.thread is not None and harness.thread.alive
        filler.unlink()                          # an operator frees space: the trader resumes on its own
        wait_until(lambda: (s := harness.state()) is not None and s.halted is None, 60, what="the resume")
        harness.step(recs[failed_at + 2])
        inputs = {r.scan_number: r for r in Journal(journal_dir / "blue.jsonl").iter_records()
                  if type(r).__name__ == "ScanInput"}
        assert {recs[i].scan_number for i in range(ARCHIVED, failed_at + 3)} <= set(inputs)
        harness.stop()
        harness.start()                          # the books recover from the journal written around the outage
        assert harness.state().last_scan_number == recs[failed_at + 2].scan_number


def test_mhs_survives_a_full_disk_and_keeps_publishing(small_disk_allowed: None, tmp_path: Path) -> None:
    import asyncio

    class NoBus:
        async def map(self, name: str) -> object:
            raise ConnectionError("no bus in this test")

    class NoSupervisor:
        def all_processes(self) -> list[object]:
            raise ConnectionError("no supervisord in this test")

    with tmpfs(tmp_path / "disk", "256k") as disk:
        filler = fill(disk, 0)
        monitor = HealthMonitor(NoBus(), NoSupervisor(), FamilyView(programs=()),  # type: ignore[arg-type]
                                report_path=disk / "meta_health.json")

        async def checks() -> list[MetaHealth]:
            return [await monitor.check() for _ in range(3)]

        reports = asyncio.run(checks())
        assert len(reports) == 3 and monitor.report_write_failures == 3
        filler.unlink()
        asyncio.run(monitor.check())
        assert (disk / "meta_health.json").is_file() and monitor.report_write_failures == 3
