"""The journal as the books: streaming recovery, torn tails, corrupt lines, appends after a crash."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from dolphin.store import journal as J

pytestmark = [pytest.mark.degradation]

PRICES = {f"A{i}USDT": 100.0 + i for i in range(50)}


def _books(path: Path, days: int = 3, scans_per_day: int = 40) -> J.Journal:
    """A journal as the trader writes it: session, snapshots, scans + commits, a fill and a trade per day."""
    j = J.Journal(path, fsync=False)
    j.append(J.SessionStart(seq=j.next_seq(), wall_ts=1.0, strategy="blue", config_hash="h", venue="paper",
                            book_id="book", pid=1))
    scan = 0
    for day in range(days):
        j.append(J.Snapshot(seq=j.next_seq(), scan_number=scan, engine_state=msgspec.Raw(b'{"day":%d}' % day)))
        for _ in range(scans_per_day):
            scan += 1
            j.append(J.ScanInput(seq=j.next_seq(), scan_number=scan, ts_ms=scan * 5000, vel_div=-0.03, v50=0.1,
                                 v750=0.2, vol_ok=True, prices=PRICES, trade=True),
                     J.Commit(seq=j.next_seq(), scan_number=scan, capital=25_000.0))
        j.append(J.FillRecord(seq=j.next_seq(), scan_number=scan, client_order_id=f"c{day}", trade_id=day,
                              kind="exit", symbol="A1USDT", side="BUY", quantity=1.0, price=101.0, fee=0.1,
                              venue="paper"),
                 J.TradeRecord(seq=j.next_seq(), scan_number=scan, trade={"trade_id": day}))
    j.close()
    return j


def test_recovery_holds_the_session_every_trade_and_the_tail_from_the_last_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "blue.jsonl"
    written = _books(path)
    books = J.Journal(path).recovery()
    everything = J.Journal(path).records()
    last_snap = max(i for i, r in enumerate(everything) if isinstance(r, J.Snapshot))
    assert books.session == everything[0]
    assert books.trades == [r for r in everything if isinstance(r, J.TradeRecord)] and len(books.trades) == 3
    assert books.tail == everything[last_snap:] and books.snapshot == everything[last_snap]
    assert len(books.tail) == 1 + 2 * 40 + 2      # memory is the last day, not the file
    reader = J.Journal(path)
    reader.recovery()
    assert reader.seq == written.seq == everything[-1].seq


def test_an_empty_or_missing_journal_is_a_fresh_book(tmp_path: Path) -> None:
    assert J.Journal(tmp_path / "none.jsonl").recovery().empty
    (tmp_path / "blank.jsonl").write_bytes(b"\n\n")
    assert J.Journal(tmp_path / "blank.jsonl").recovery().empty


def test_a_torn_last_record_is_dropped_and_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "blue.jsonl"
    _books(path, days=1)
    whole = path.read_bytes()
    torn = b'{"type":"snapshot","seq":999,"scan_number":40,"engine_state":"' + b"x" * (3 * J.TAIL_CHUNK)
    path.write_bytes(whole + torn)                    # longer than the backward read chunk
    j = J.Journal(path)
    books = j.recovery()
    assert j.dropped_tail and books.snapshot is not None and books.snapshot.seq != 999
    j.open()
    assert path.read_bytes() == whole                 # cut at the last newline
    j.append(J.Commit(seq=j.next_seq(), scan_number=41, capital=1.0))
    j.close()
    assert J.Journal(path).records()[-1] == J.Commit(seq=j.seq, scan_number=41, capital=1.0)


def test_a_whole_last_record_without_its_newline_is_kept_and_its_line_ended(tmp_path: Path) -> None:
    path = tmp_path / "blue.jsonl"
    _books(path, days=1)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    j = J.Journal(path)
    last = j.recovery().tail[-1]
    assert isinstance(last, J.TradeRecord) and not j.dropped_tail
    j.open()
    j.append(J.Commit(seq=j.next_seq(), scan_number=41, capital=1.0))
    j.close()
    records = J.Journal(path).records()
    assert records[-2] == last and isinstance(records[-1], J.Commit)


@pytest.mark.parametrize("where", ["before the last snapshot", "after it"])
def test_a_corrupt_line_anywhere_but_the_end_refuses_the_books(tmp_path: Path, where: str) -> None:
    path = tmp_path / "blue.jsonl"
    _books(path)
    lines = path.read_bytes().split(b"\n")
    k = 5 if where == "before the last snapshot" else len(lines) - 4
    lines[k] = lines[k][: len(lines[k]) // 2]         # a scan line cut in half, followed by more records
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(J.JournalCorrupt, match=f"line {k + 1} "):
        J.Journal(path).recovery()
    with pytest.raises(J.JournalCorrupt):
        J.Journal(path).records()


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blue.jsonl"
    first = J.Journal(path)
    first.open()
    with pytest.raises(J.JournalLocked):
        J.Journal(path).open()
    first.close()
