"""The trader's crash-safe journal: write-ahead inputs, fills, closed trades, engine snapshots.

One JSON line per record, appended and fsynced before the trader acts on it (so before
anything is published). The journal is event-sourced:

- `ScanInput` is written *before* any order of its step leaves (write-ahead; its fsync
  runs beside the order, `append(durable=False)` + `sync`: docs/trader.md);
- `FillRecord` for every order the step produced, keyed by its deterministic client order id;
- `TradeRecord` for every closed trade;
- `Commit` after the step's effects are all recorded;
- `Snapshot` (the full engine state) on start, periodically and at each day boundary.

Recovery = the last snapshot + a deterministic replay of the inputs after it. Fills
already journaled are reused by client order id, so a replay never orders twice;
fills missing for an uncommitted input are reconciled with the venue. A kill -9 while
appending leaves at most a torn last line, which the reader drops (that record was never
acknowledged). A corrupt line anywhere else is an error: the journal is the books.

The file grows by ~1.7 kB per scan (a month at speed 1 is ~1 M lines, ~0.9 GB), so
`recovery()` streams it: every line is checked as JSON and read for its tag and seq only
(~0.7 µs a line); the session, the closed trades and the records from the last snapshot
on are decoded in full (~6 µs a line). Memory is that tail, not the file.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
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
    ob: list[float] | None = None            # the OB block the step acted on (engine order: 5 per asset, 3 macro)
    mc: tuple[float, float] | None = None    # MC-Forewarner report applied at the top of this step (cp, envelope)
    kill_level: str | None = None            # the kill switch level of this step (dolphin.enums.KillLevel)
    manual_exit: str | None = None           # an operator's force exit taken at this step (asset, or "*")
    ob_source: str | None = None             # where it came from (dolphin.enums.ObSource)


class KillRecord(msgspec.Struct, tag="kill", frozen=True):
    """The kill switch changed level (who, why, when) — applied from the step of `scan_number` on."""

    seq: int
    scan_number: int
    level: str
    reason: str
    by: str
    at: float


class ManualExitRecord(msgspec.Struct, tag="manual_exit", frozen=True):
    """An operator's force exit request, as taken (or refused: nothing to close) at a step."""

    seq: int
    scan_number: int
    request_id: str
    asset: str
    reason: str
    by: str
    at: float
    applied: bool


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
    model_price: float | None = None     # the engine's price for this leg (a venue fill's slippage is measured on it)
    slippage_bps: float | None = None    # venue fill against the model price, + = worse for the book
    venue_ts: int | None = None          # the venue's time of the leg's last fill (ms): where a restart looks from


class RejectRecord(msgspec.Struct, tag="reject", frozen=True):
    """An order that did not go out, or that the venue refused: a pre-trade check, a venue error, no fill.

    A refused entry is voided in the engine (the position never existed); a refused exit
    leaves the engine's own exit in the books and the venue's position to reconciliation.
    """

    seq: int
    scan_number: int
    client_order_id: str
    trade_id: int
    kind: str                   # entry | exit
    symbol: str
    side: str
    source: str                 # risk | venue | unfilled
    reason: str                 # the check's name, or the venue's code
    detail: str


class CashRecord(msgspec.Struct, tag="cash", frozen=True):
    """A cash flow the venue booked outside a trade (funding), applied to the engine's capital at this step."""

    seq: int
    scan_number: int
    amount: float
    reason: str                 # the venue's reason, e.g. FUNDING_FEE
    ref: str                    # the venue's reference (income tranId / event time): a flow is booked once
    venue_ts: int


class AlertRecord(msgspec.Struct, tag="alert", frozen=True):
    """A live trader's alert (reconciliation mismatch, escalation, refused order…), as shown to operators."""

    seq: int
    kind: str
    symbol: str
    detail: str
    action: str                 # alert | escalate | info
    at: float


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


Record = (SessionStart | ScanInput | FillRecord | TradeRecord | Commit | Snapshot | KillRecord | ManualExitRecord
          | RejectRecord | CashRecord | AlertRecord)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


TAIL_CHUNK = 1 << 16


class _Head(msgspec.Struct):
    """What recovery needs of a line it does not keep: its tag and seq (the rest is skipped)."""

    type: str
    seq: int


_head_decoder = msgspec.json.Decoder(_Head)


@dataclass
class Recovery:
    """What a restart needs of the books, read in one streaming pass."""

    session: SessionStart | None         # the book's first session record
    trades: list[TradeRecord]            # every closed trade, in order
    tail: list[Record]                   # the last snapshot and everything after it (all, if none)

    @property
    def empty(self) -> bool:
        return self.session is None and not self.tail

    @property
    def snapshot(self) -> Snapshot | None:
        return self.tail[0] if self.tail and isinstance(self.tail[0], Snapshot) else None


class JournalCorrupt(Exception):
    """A record that is not the torn tail of a crash: refuse to trade on broken books."""


class JournalLocked(Exception):
    """Another process holds this book: two traders must never write one journal."""


class JournalWriteError(OSError):
    """An append did not reach the disk (disk full, I/O error); the file was cut back to before it."""


class Journal:
    """Append-only, fsync-per-append journal file (one per strategy book)."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self.seq = 0
        self.dropped_tail = False
        self._unsynced = False   # a non-durable append not yet fsynced

    # ---------------------------------------------------------------- reading
    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, line) of every non-blank line, streamed."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    yield number, line

    def _decode(self, number: int, line: bytes, decoder: msgspec.json.Decoder[Any]) -> Any:
        """Decode one line; None for the torn last line of a crash, `JournalCorrupt` for anything else."""
        try:
            return decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if not line.endswith(b"\n"):   # only the file's last line can lack its newline
                log.warning("journal %s: dropped a torn last record (%d bytes) left by a crash", self.path,
                            len(line))
                self.dropped_tail = True
                return None
            raise JournalCorrupt(f"{self.path}: line {number} is not a journal record ({exc})") from None

    def iter_records(self) -> Iterator[Record]:
        """Every complete record, streamed; a torn final line (crash mid-append) is dropped and noted."""
        for number, line in self._lines():
            record = self._decode(number, line, _decoder)
            if record is None:
                return
            self.seq = max(self.seq, record.seq)
            yield record

    def records(self) -> list[Record]:
        """Every complete record (the whole file in memory: for tools and tests, not for recovery)."""
        return list(self.iter_records())

    def recovery(self) -> Recovery:
        """The session, the closed trades and the tail from the last snapshot, in one streaming pass."""
        session: SessionStart | None = None
        trades: list[TradeRecord] = []
        tail: list[tuple[int, bytes]] = []
        for number, line in self._lines():
            head = self._decode(number, line, _head_decoder)
            if head is None:
                break
            if head.type == "snapshot":
                tail = []
            tail.append((number, line))
            if head.type == "session" and session is None:
                session = self._decode(number, line, _decoder)
            elif head.type == "trade" and (trade := self._decode(number, line, _decoder)) is not None:
                trades.append(trade)
            self.seq = max(self.seq, head.seq)
        records = [self._decode(number, line, _decoder) for number, line in tail]
        return Recovery(session=session, trades=trades, tail=[r for r in records if r is not None])

    # ---------------------------------------------------------------- writing
    def open(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalLocked(f"{self.path} is held by another trader process") from None
        if self.dropped_tail:
            self._truncate_torn_tail()
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            # a complete last record whose newline never made it: end its line before appending
            os.write(fd, b"\n")
            os.fsync(fd)
        self._fd = fd

    def _truncate_torn_tail(self) -> None:
        """Cut the file after its last newline, reading backwards from the end (not the whole file)."""
        with open(self.path, "r+b") as fh:
            end = fh.seek(0, os.SEEK_END)
            pos, keep = end, 0
            while pos > 0:
                step = min(TAIL_CHUNK, pos)
                pos -= step
                fh.seek(pos)
                cut = fh.read(step).rfind(b"\n")
                if cut >= 0:
                    keep = pos + cut + 1
                    break
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        self.dropped_tail = False

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def append(self, *records: Record, durable: bool = True) -> None:
        """Write records in one write and one fsync: when this returns they survive a crash.

        A crash mid-write leaves a torn tail that recovery drops, so a group is
        all-or-nothing for everything before its last line.

        ``durable=False`` is the trader's write-ahead record before an order leaves: the
        group is written (in the page cache, so a kill -9 of the process loses nothing)
        but not fsynced; `sync` makes it durable while the order travels, and the next
        durable append covers it anyway. docs/trader.md ("Write-ahead, then fsync") has
        the argument for why an OS crash in between cannot duplicate an order.
        """
        if self._fd is None:
            self.open()
        assert self._fd is not None
        data = b"".join(_encoder.encode(r) + b"\n" for r in records)
        view = memoryview(data)
        start = os.fstat(self._fd).st_size
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self.fsync and durable:
                os.fsync(self._fd)
        except OSError as exc:
            try:   # leave no torn group behind: the books end where they ended before this append
                os.ftruncate(self._fd, start)
            except OSError:
                pass   # recovery drops a torn tail anyway
            raise JournalWriteError(exc.errno, f"{self.path}: append failed ({exc.strerror})") from exc
        self._unsynced = not durable and self.fsync

    def sync(self) -> None:
        """fsync what `append(durable=False)` wrote (thread-safe to run beside the event loop; no-op if nothing).

        A failure is a `JournalWriteError` but the file is *not* cut back: the records may
        already have been acted on (an order sent), and the page cache still holds them
        for a restart of this process to read.
        """
        if not self._unsynced or self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalWriteError(exc.errno, f"{self.path}: fsync failed ({exc.strerror})") from exc
        self._unsynced = False

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    def __iter__(self) -> Iterator[Record]:
        return self.iter_records()


def encode_raw(obj: Any) -> msgspec.Raw:
    return msgspec.Raw(_encoder.encode(obj))


# ---------------------------------------------------------------- reading the books (CLI, reports, parity)
@dataclass(frozen=True)
class Books:
    """What a journal says happened: the closed trades (each once, in order) and the last committed capital."""

    trades: list[Any]            # dolphin.engine.trades.ClosedTrade
    capital: float | None        # the last commit's capital (None before any step)
    venue: str | None
    strategy: str | None
    config_hash: str | None = None   # the strategy config the book was opened with
    first_ts_ms: int | None = None   # market time of the first and the last journaled step
    last_ts_ms: int | None = None


def read_books(path: str | Path) -> Books:
    """Stream a trader's journal into its closed trades and capital (JournalCorrupt on a broken record)."""
    from dolphin.engine.trades import ClosedTrade

    journal = Journal(path)
    seen: set[int] = set()
    trades: list[Any] = []
    capital: float | None = None
    venue = strategy = config_hash = None
    first_ts: int | None = None
    last_ts: int | None = None
    for r in journal.iter_records():
        if isinstance(r, ScanInput):
            first_ts = r.ts_ms if first_ts is None else first_ts
            last_ts = r.ts_ms
        elif isinstance(r, TradeRecord):
            trade = msgspec.convert(r.trade, ClosedTrade)
            if trade.trade_id not in seen:
                seen.add(trade.trade_id)
                trades.append(trade)
        elif isinstance(r, Commit):
            capital = r.capital
        elif isinstance(r, SessionStart) and venue is None:
            venue, strategy, config_hash = r.venue, r.strategy, r.config_hash
    return Books(trades=trades, capital=capital, venue=venue, strategy=strategy, config_hash=config_hash,
                 first_ts_ms=first_ts, last_ts_ms=last_ts)
