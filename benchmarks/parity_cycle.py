"""One parity cycle on a long session: the incremental archive read vs reading the whole archive again.

    python -m benchmarks.parity_cycle [--days 1] [--home /tmp]

Builds `days` of the seeded synthetic market (17,280 scans a day), archives every scan
(plain writes: the harness is not about the archive's fsyncs), journals a paper trader
core over it from scan 901 on, then times in the same process:

* the baseline — what a cycle would cost re-reading the archive: `load_arrow_scans` + the
  three replays and the comparison (`parity_report`);
* the daemon's cycle after a minute of new scans (12 files): `ArchiveCache.table()`
  (reads only the new files) + `parity_report`;
* the parts: the archive read, the journal reads (books + session) and the replays.

Prints each figure, the ratio, and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np

from benchmarks.machine import machine
from dolphin.backtest.parity import Tolerances
from dolphin.backtest.parity_run import ArchiveCache, gather, parity_report
from dolphin.backtest.session import SessionInputs
from dolphin.backtest.synthetic import synthetic_scan_table
from dolphin.bus.scan_codec import bars_from_table, records_from_table
from dolphin.config import load_config
from dolphin.execution.executor import PaperExecutor
from dolphin.execution.trader import TraderCore
from dolphin.store.arrow_scans import encode_scan, scan_path
from dolphin.store.journal import Journal, read_books
from dolphin.store.scan_archive import load_arrow_scans

WARM = 900
NOW = 1.0e9
NEW_PER_MINUTE = 12


def build(home: Path, days: int) -> tuple[Path, list]:  # noqa: ANN001
    table, _ = synthetic_scan_table(days, 7)
    records = list(records_from_table(table))
    held_back = records[-NEW_PER_MINUTE:]
    for rec in records[:-NEW_PER_MINUTE]:
        path = scan_path(home, rec)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_scan(rec))
    cfg = load_config("blue")
    journal = home / "journal" / "blue.jsonl"
    core = TraderCore(cfg, list(table.assets), Journal(journal, fsync=False), PaperExecutor(), clock=lambda: NOW)
    bars = [msgspec.structs.replace(b, published_s=NOW) for b in bars_from_table(table)]   # fresh: traded

    async def go() -> None:
        await core.start()
        core.warm(bars[:WARM])
        for bar in bars[WARM:table.rows - NEW_PER_MINUTE]:
            await core.process(bar)

    asyncio.run(go())
    core.close()
    return journal, held_back


def timed(fn, repeat: int = 3) -> float:  # noqa: ANN001
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()
    print(machine("numpy", "numba", "pyarrow", "msgspec"))
    with tempfile.TemporaryDirectory(dir=args.home) as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        journal, held_back = build(home, args.days)
        print(f"built {args.days} day(s): archive + journal in {time.perf_counter() - t0:.1f} s "
              f"({journal.stat().st_size / 1e6:.0f} MB journal)")
        cfg = load_config("blue")
        tol = Tolerances()
        cache = ArchiveCache(home)
        first = timed(lambda: cache.table(), repeat=1)
        table = cache.table()
        print(f"scans: {table.rows:,}")
        full_read = timed(lambda: load_arrow_scans(home))
        books = timed(lambda: read_books(journal))
        session = timed(lambda: SessionInputs.from_journal(journal))
        replays = timed(lambda: gather(table, cfg, journal))
        baseline = timed(lambda: parity_report(load_arrow_scans(home), cfg, journal, tol=tol))
        for rec in held_back:   # a minute of new scans
            path = scan_path(home, rec)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_scan(rec))
        t0 = time.perf_counter()
        incremental_table = cache.table()
        read_new = time.perf_counter() - t0
        assert np.array_equal(incremental_table.scan_number, load_arrow_scans(home).scan_number)
        report = timed(lambda: parity_report(incremental_table, cfg, journal, tol=tol))
        cycle = read_new + report
        print(f"{'archive, first read (ArchiveCache)':48s} {first:8.2f} s")
        print(f"{'archive, full read (load_arrow_scans)':48s} {full_read:8.2f} s")
        print(f"{'archive, +12 new files (ArchiveCache)':48s} {read_new:8.3f} s")
        print(f"{'journal: read_books':48s} {books:8.2f} s")
        print(f"{'journal: SessionInputs.from_journal':48s} {session:8.2f} s")
        print(f"{'journal reads + three replays (gather)':48s} {replays:8.2f} s")
        print(f"{'cycle, re-reading the archive (baseline)':48s} {baseline:8.2f} s")
        print(f"{'cycle, incremental archive (the daemon)':48s} {cycle:8.2f} s  (report {report:.2f} s)")
        print(f"ratio baseline / daemon: {baseline / cycle:.1f}x")


if __name__ == "__main__":
    main()
