"""Trader restart cost on a long journal: streaming `Journal.recovery()` vs decoding every record.

    python -m benchmarks.journal_recovery [--days 7] [--home /tmp]

Writes a journal shaped like the trader's at speed 1 (17,280 scans a day, each a
write-ahead input with 50 prices plus a commit; a snapshot at every day boundary and
every 1,000 scans; a few fills and trades a day), then reads it both ways in the same
process: `recovery()` (tag + seq of every line, full decode of the session, the trades
and the tail from the last snapshot) and `records()` (every record decoded, the whole
file in memory — what recovery did before). Prints time and peak Python memory
(tracemalloc) of each and checks they agree on what a restart needs.
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.machine import machine
from dolphin.store import journal as J

SCANS_PER_DAY = 17_280
SNAPSHOT_EVERY = 1_000


def write_journal(path: Path, days: int) -> int:
    rnd = random.Random(7)
    symbols = [f"SYM{i:02d}USDT" for i in range(50)]
    state = msgspec.Raw(msgspec.json.encode({"capital": 25_000.0, "history": [rnd.random() for _ in range(800)]}))
    j = J.Journal(path, fsync=False)
    j.append(J.SessionStart(seq=j.next_seq(), wall_ts=time.time(), strategy="blue", config_hash="bench",
                            venue="paper", book_id="bench", pid=0))
    scan, trade_id = 0, 0
    for _day in range(days):
        for k in range(SCANS_PER_DAY):
            if k % SNAPSHOT_EVERY == 0:
                j.append(J.Snapshot(seq=j.next_seq(), scan_number=scan, engine_state=state))
            scan += 1
            prices = {s: 100.0 + rnd.random() for s in symbols}
            batch: list[Any] = [J.ScanInput(seq=j.next_seq(), scan_number=scan, ts_ms=scan * 5_000,
                                            vel_div=rnd.uniform(-0.03, 0.01), v50=0.1, v750=0.2, vol_ok=True,
                                            prices=prices, trade=True)]
            if k % 2_000 == 1_999:
                trade_id += 1
                batch.append(J.FillRecord(seq=j.next_seq(), scan_number=scan, client_order_id=f"c{trade_id}",
                                          trade_id=trade_id, kind="exit", symbol=symbols[0], side="BUY",
                                          quantity=1.0, price=100.0, fee=0.02, venue="paper"))
                batch.append(J.TradeRecord(seq=j.next_seq(), scan_number=scan,
                                           trade={"trade_id": trade_id, "pnl": rnd.uniform(-5, 5)}))
            batch.append(J.Commit(seq=j.next_seq(), scan_number=scan, capital=25_000.0))
            j.append(*batch)
    j.close()
    return j.seq


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, elapsed, peak / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=7, help="days of journal at speed 1 (default 7)")
    p.add_argument("--home", type=Path, default=None, help="where to write the journal (default: a temp dir)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.home) as tmp:
        path = Path(tmp) / "blue.jsonl"
        started = time.perf_counter()
        lines = write_journal(path, args.days)
        print(f"machine: {machine()}")
        print(f"journal: {args.days} days at speed 1, {lines:,} records, {path.stat().st_size / 2**20:,.0f} MiB "
              f"(written in {time.perf_counter() - started:.1f} s)")
        books, t_stream, m_stream = measure(lambda: J.Journal(path).recovery())
        records, t_full, m_full = measure(lambda: J.Journal(path).records())
        last = max(i for i, r in enumerate(records) if isinstance(r, J.Snapshot))
        assert books.tail == records[last:], "recovery() disagrees with the full read"
        assert books.trades == [r for r in records if isinstance(r, J.TradeRecord)]
        print(f"{'read':<44}{'seconds':>10}{'peak MiB':>12}{'records held':>14}")
        print(f"{'recovery() (streaming, tail from snapshot)':<44}{t_stream:>10.2f}{m_stream:>12.1f}"
              f"{len(books.tail) + len(books.trades) + 1:>14,}")
        print(f"{'records() (every record decoded)':<44}{t_full:>10.2f}{m_full:>12.1f}{len(records):>14,}")
        print(f"ratio: {t_full / t_stream:.1f}x faster, {m_full / max(m_stream, 1e-9):.0f}x less memory")


if __name__ == "__main__":
    main()
