"""What a paper session must show after a failure: nothing lost, nothing doubled, the backtest equal.

Shared by the end-to-end tests that break the bus under a trading family (a member
killed, a host cut off): the scanner's archive has every scan once; the trader journaled
every scan in order; `dolphin backtest --journal` over the archive gives its trades
exactly.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .support import Family


def journal(home: Path) -> list[dict[str, Any]]:
    path = home / "journal" / "blue.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.endswith(b"}")]


def last_commit(home: Path) -> int:
    """The last scan number the trader committed (0 before the first)."""
    return max((r["scan_number"] for r in journal(home) if r["type"] == "commit"), default=0)


def with_trader_log(fam: Family, wait: Callable[[], object]) -> object:
    """Run a wait; if it times out, say what the trader was doing."""
    try:
        return wait()
    except AssertionError as exc:
        log = fam.cli("svc", "logs", "trader", "-n", "40").stdout
        records = journal(fam.home)
        kinds = {k: sum(r["type"] == k for r in records) for k in {r["type"] for r in records}}
        raise AssertionError(f"{exc}\njournal records: {kinds}\ntrader log:\n{log}") from None


def assert_nothing_lost(fam: Family, records: list[dict[str, Any]], journal_path: Path | None = None) -> int:
    """Archive contiguous; every scan journaled in order; the backtest of the session equals it. Returns trades.

    The archive is `fam`'s; the journal is `fam`'s too unless the trader ran on another host.
    """
    numbers = fam.archive_numbers()
    assert numbers == list(range(1, len(numbers) + 1)), "the archive has a gap or a duplicate"
    inputs = [r["scan_number"] for r in records if r["type"] == "scan"]
    commits = [r["scan_number"] for r in records if r["type"] == "commit"]
    assert inputs == list(range(inputs[0], commits[-1] + 1)), "the trader missed or repeated a scan"
    live = [r["trade"] for r in records if r["type"] == "trade"]
    journal_file = journal_path if journal_path is not None else fam.home / "journal" / "blue.jsonl"
    res = fam.cli("backtest", "--scans", str(fam.home), "--journal", str(journal_file), "--json", timeout=600)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    with open(summary["files"]["trades"]) as fh:
        replayed = list(csv.DictReader(fh))
    assert summary["metrics"]["trades"] == len(replayed) == len(live)
    for bt, lv in zip(replayed, live):
        assert (bt["asset"], bt["side"], int(bt["entry_bar"]), int(bt["exit_bar"]), bt["exit_reason"]) == (
            lv["asset"], lv["side"], lv["entry_bar"], lv["exit_bar"], lv["exit_reason"])
        assert float(bt["pnl"]) == lv["pnl"]
    return len(live)
