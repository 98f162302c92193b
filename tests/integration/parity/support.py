"""Helpers of the parity integration tests: seeded scans, a quick archive, a paper session's journal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from dolphin.execution.executor import PaperExecutor
from dolphin.execution.trader import TraderCore
from dolphin.scan.record import ScanRecord
from dolphin.store.arrow_scans import encode_scan, scan_path
from dolphin.store.journal import Journal
from dolphin.store.scan_archive import load_arrow_scans
from tests.integration.trader import support as trader_support
from tests.unit.trader.support import NOW, bars_of

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def seeded_records(last: int, seed: int = 7) -> list[ScanRecord]:
    """Scans 1..last of the seeded synthetic market (numbered from the first defined vel_div).

    With seed 7 (synthetic stream v2) the engine (blue) enters LTCUSDT at scan 779 and exits at 899 (MAX_HOLD).
    """
    return trader_support.synthetic_records(last, seed=seed)


def archive(home: Path, records: list[ScanRecord]) -> None:
    """Archive files as the scanner names them — without its fsync per file: these tests are not about
    the archive's crash safety, and a thousand fsyncs take seconds on a busy disk."""
    for record in records:
        path = scan_path(home, record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_scan(record))


def paper_session(home: Path, cfg, first_live: int, last: int, *, skip: range | None = None) -> Path:  # noqa: ANN001
    """A paper trader core's journal over the archive: warmed on the scans before `first_live`, stepping to `last`."""
    table = load_arrow_scans(home)
    start = int(np.searchsorted(table.scan_number, first_live))
    stop = int(np.searchsorted(table.scan_number, last, side="right"))
    path = home / "journal" / f"{cfg.name}.jsonl"
    core = TraderCore(cfg, list(table.assets), Journal(path, fsync=False), PaperExecutor(), clock=lambda: NOW)

    async def go() -> None:
        await core.start()
        core.warm(bars_of(table, 0, start, published=None))
        for bar in bars_of(table, start, stop):
            if skip is None or bar.scan_number not in skip:
                await core.process(bar)

    asyncio.run(go())
    core.close()
    return path
