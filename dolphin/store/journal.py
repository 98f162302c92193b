"""The trader's crash-safe journal: write-ahead inputs, fills, closed trades, engine snapshots.

One JSON line per record, appended and fsynced before the trader acts on it (so before
anything is published). The journal is event-sourced:

- `ScanInput` is written *before* the engine steps the scan (write-ahead);
- `FillRecord` for every order the step produced, keyed by its deterministic client order id;
- `TradeRecord` for every closed trade;
- `Commit` after the step's effects are all recorded;
- `Snapshot` (the full engine state) on start, periodically and at each day boundary.

Recovery = the last snapshot + a deterministic replay of the inputs after it. Fills
already journaled are reused by client order id, so a replay never orders twice;
fills missing for an uncommitted input are reconciled with the venue. A kill -9 while
appending leaves at most a torn last line, which the reader drops (that record was never
acknowledged). A corrupt line anywhere else is an error: the journal is the books.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger("dolphin.journal")

JOURNAL_VERSION = 1


class SessionStart(msgspec.Struct, tag="session", frozen=True):
    seq: int
    wall_ts: float
    strategy: str
    config_hash: str
    venue: str
    book_id: str          # random per book: keeps client order ids unique across fresh journals
    pid: int
    version: int = JOURNAL_VERSION


class ScanInput(msgspec.Struct, tag="scan", frozen=True):
    """One bar as the engine saw it (everything a replay needs to step it again)."""

    seq: int
    scan_number: int
    ts_ms: int
    vel_div: float | None
    v50: float | None
    v750: float | None
    vol_ok: bool
    prices: dict[str, float]
    trade: bool                 # False: warm-up or stale — histories only
    acb: tuple[float, float] | None = None   # ACB update applied at the top of this step (boost, beta)
    posture: str | None = None               # posture in force for this step
    kill_switch: bool = False                # the kill-switch file was present


class FillRecord(msgspec.Struct, tag="fill", frozen=True):
    seq: int
    scan_number: int
    client_order_id: str
    trade_id: int
    kind: str                   # entry | exit
    symbol: str
    side: str                   # BUY | SELL
    quantity: float
    price: float
    fee: float
    venue: str
    venue_order_id: str | None = None


class TradeRecord(msgspec.Struct, tag="trade", frozen=True):
    seq: int
    scan_number: int
    trade: dict[str, Any]       # a ClosedTrade as builtins


class Commit(msgspec.Struct, tag="commit", frozen=True):
    seq: int
    scan_number: int
    capital: float


class Snapshot(msgspec.Struct, tag="snapshot", frozen=True):
    seq: int
    scan_number: int            # the last scan the state includes (0 before any)
    engine_state: msgspec.Raw
    vol_gate: msgspec.Raw = msgspec.Raw(b"null")   # msgspec cannot decode Raw inside an Optional
    extra: dict[str, Any] = {}


Record = SessionStart | ScanInput | FillRecord | TradeRecord | Commit | Snapshot

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


class JournalCorrupt(Exception):
    """A record that is not the torn tail of a crash: refuse to trade on broken books."""


class JournalLocked(Exception):
    """Another process holds this book: two traders must never write one journal."""


class Journal:
    """Append-only, fsync-per-record journal file (one per strategy book)."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self.seq = 0
        self.dropped_tail = False

    # ---------------------------------------------------------------- reading
    def records(self) -> list[Record]:
        """Every complete record; a torn final line (crash mid-append) is dropped and noted."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        out: list[Record] = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                out.append(_decoder.decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                is_tail = i == len(lines) - 1 or all(not rest.strip() for rest in lines[i + 1:])
                if is_tail and not data.endswith(b"\n"):
                    log.warning("journal %s: dropped a torn last record (%d bytes) left by a crash", self.path,
                                len(line))
                    self.dropped_tail = True
                    break
                raise JournalCorrupt(f"{self.path}: line {i + 1} is not a journal record ({exc})") from None
        if out:
            self.seq = max(r.seq for r in out)
        return out

    # ---------------------------------------------------------------- writing
    def open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalLocked(f"{self.path} is held by another trader process") from None
        if self.dropped_tail:
            self._truncate_torn_tail()
        self._fd = fd

    def _truncate_torn_tail(self) -> None:
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        self.dropped_tail = False

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def append(self, *records: Record) -> None:
        """Write records in one write and one fsync: when this returns they survive a crash.

        A crash mid-write leaves a torn tail that recovery drops, so a group is
        all-or-nothing for everything before its last line.
        """
        if self._fd is None:
            self.open()
        assert self._fd is not None
        data = b"".join(_encoder.encode(r) + b"\n" for r in records)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())


def encode_raw(obj: Any) -> msgspec.Raw:
    return msgspec.Raw(_encoder.encode(obj))
