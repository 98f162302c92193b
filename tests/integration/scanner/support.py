"""Helpers for the scanner integration tests: the scanner in a thread or a process, a bus listener, archive checks."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from dolphin.services.runtime import ServiceContext
from dolphin.services.scanner import ScannerOptions, ScannerStats, run_scanner
from dolphin.store.arrow_scans import archive_dir
from dolphin.store.scan_archive import list_scan_files, load_arrow_scans
from tests.integration.support import ServiceThread
from tests.support import PROJECT_ROOT, wait_until


class ScannerThread(ServiceThread):
    """The scanner service body in-process (its counters readable), stopped like SIGTERM would."""

    name = "scanner"

    def __init__(self, home: Path, options: ScannerOptions) -> None:
        super().__init__(home)
        self.options = options
        self.stats = ScannerStats()

    async def body(self, ctx: ServiceContext) -> None:
        await run_scanner(ctx, self.options, stats=self.stats)

    def start(self) -> ScannerThread:
        self.start_thread()
        return self

    def wait_live(self, scans: int, timeout: float = 300.0) -> None:
        wait_until(lambda: self.stats.live >= scans or self.error or not self.alive, timeout,
                   what=f"{scans} live scans")
        assert self.error is None, self.error
        assert self.alive, "the scanner stopped by itself"


class ScannerProcess:
    """``python -m dolphin.services.scanner`` with the environment `dolphin up` gives it."""

    def __init__(self, home: Path, *, rest_url: str, ws_url: str, hz_port: int, log_path: Path,
                 extra_args: tuple[str, ...] = ()) -> None:
        env = dict(os.environ)
        env.update({"DOLPHIN_HOME": str(home), "DOLPHIN_MARKET": "sim", "DOLPHIN_MARKET_REST_URL": rest_url,
                    "DOLPHIN_MARKET_WS_URL": ws_url, "DOLPHIN_HZ_PORT": str(hz_port),
                    "DOLPHIN_HZ_CONNECT_TIMEOUT": "10", "PYTHONUNBUFFERED": "1"})
        env.pop("DOLPHIN_HZ_MEMBERS", None)
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "dolphin.services.scanner", *extra_args],
                                     cwd=PROJECT_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log_text(self) -> str:
        return self.log_path.read_text()

    def backfilled_range(self) -> tuple[int, int] | None:
        match = re.search(r"backfill done .*\(scans (\d+)…(\d+)\)", self.log_text())
        return (int(match[1]), int(match[2])) if match else None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._log.close()
        return self.proc.returncode


def archive_numbers(home: Path) -> list[int]:
    return [f.scan_number for f in list_scan_files(archive_dir(home))]


def check_archive(home: Path, bar_ms: int = 5_000) -> tuple[list[int], np.ndarray]:
    """Scan numbers 1..N without gap or duplicate, bar times exactly one bar apart."""
    numbers = archive_numbers(home)
    assert numbers == list(range(1, len(numbers) + 1)), "scan numbers have a gap or a duplicate"
    ts = np.asarray(load_arrow_scans(home).ts)
    steps = np.diff(ts)
    assert (steps == bar_ms).all(), f"bar times not {bar_ms} ms apart: {sorted(set(steps.tolist()))[:5]}"
    return numbers, ts
