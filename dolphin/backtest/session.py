"""A live trader's session inputs, read from its journal, for an exact replay.

The scan archive holds the market; some inputs of a live session are not in it: whether
a scan was traded (a stale scan feeds the histories only), the ACB updates that arrived
by listener, the posture in force, the kill switch. The trader journals them with every
step (`ScanInput`). Replaying a journal's inputs over the archive reproduces the session
trade for trade — and shows any difference that remains as a bug, not as noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dolphin.enums import Posture
from dolphin.errors import DataError
from dolphin.store.journal import (
    CashRecord,
    Commit,
    FillRecord,
    Journal,
    JournalCorrupt,
    RejectRecord,
    ScanInput,
    SessionStart,
)


@dataclass(frozen=True, slots=True)
class StepFlags:
    trade: bool
    acb: tuple[float, float] | None
    posture: str
    kill_switch: bool
    mc: tuple[float, float] | None = None
    manual_exit: str | None = None   # an operator's force exit taken at this step (asset or "*")
    kill_level: str | None = None    # the kill switch level of the step (parity tells a halt from a stale scan)

    def same_regime(self, other: StepFlags) -> bool:
        """Consecutive scans with these flags can run in one engine block (no update between them)."""
        return (other.acb is None and other.mc is None and other.manual_exit is None and self.trade == other.trade
                and self.posture == other.posture and self.kill_switch == other.kill_switch)


@dataclass(frozen=True, slots=True)
class VenueFill:
    """A leg the venue filled, as journaled: applied to the replayed engine after its scan's step."""

    kind: str            # entry | exit | void (a refused entry: the position never existed) | cash (funding)
    trade_id: int
    price: float
    quantity: float
    fee: float
    amount: float = 0.0  # cash only


@dataclass(frozen=True, slots=True)
class StepOb:
    """A journaled step's OB input: the block it acted on (None: the record carries none) and its source."""

    scan_number: int
    ts_ms: int
    values: list[float] | None   # engine order (5 per asset, 3 macro), as `flat_from_view` froze it
    source: str | None           # dolphin.enums.ObSource, as journaled


@dataclass(frozen=True, slots=True)
class SessionInputs:
    first_scan: int
    last_scan: int
    steps: dict[int, StepFlags]
    venue: str = "paper"
    fills: dict[int, list[VenueFill]] = field(default_factory=dict)
    ob_records: list[StepOb] = field(default_factory=list)   # every journaled step's OB input, in scan order

    @property
    def ob_steps(self) -> list[tuple[int, list[float]]]:
        """(ts_ms, OB block) of the journaled steps that carry one: what a `--journal` replay reads."""
        return [(r.ts_ms, r.values) for r in self.ob_records if r.values is not None]

    def ob_between(self, first: int, last: int) -> list[StepOb]:
        """The steps of scans ``first``…``last`` (what `backtest --journal --ob` cross-checks)."""
        return [r for r in self.ob_records if first <= r.scan_number <= last]

    @property
    def venue_truth(self) -> bool:
        """The session's books were the venue's fills (engine friction off, fills applied)."""
        return self.venue != "paper"

    @classmethod
    def from_journal(cls, path: str | Path) -> SessionInputs:
        journal = Journal(path)
        if not journal.path.is_file():
            raise DataError(f"trader journal not found: {journal.path}")
        steps: dict[int, StepFlags] = {}
        fills: dict[int, list[VenueFill]] = {}
        ob_records: list[StepOb] = []
        venue = "paper"
        seen_fills: set[str] = set()
        posture: str = Posture.APEX
        last_commit: int | None = None
        try:
            for r in journal.iter_records():
                if isinstance(r, SessionStart):
                    venue = r.venue
                elif isinstance(r, FillRecord):
                    if r.client_order_id not in seen_fills:   # a recovery re-journals nothing twice, but be sure
                        seen_fills.add(r.client_order_id)
                        fills.setdefault(r.scan_number, []).append(VenueFill(r.kind, r.trade_id, r.price, r.quantity,
                                                                             r.fee))
                elif isinstance(r, RejectRecord):
                    if r.kind == "entry" and r.client_order_id not in seen_fills:   # a refused entry is voided
                        seen_fills.add(r.client_order_id)
                        fills.setdefault(r.scan_number, []).append(VenueFill("void", r.trade_id, 0.0, 0.0, 0.0))
                elif isinstance(r, CashRecord):
                    if r.ref not in seen_fills:
                        seen_fills.add(r.ref)
                        fills.setdefault(r.scan_number, []).append(VenueFill("cash", 0, 0.0, 0.0, 0.0, r.amount))
                elif isinstance(r, ScanInput):
                    if r.scan_number not in steps:   # a recovery's replay re-steps an input: the first one counts
                        ob_records.append(StepOb(r.scan_number, r.ts_ms, r.ob, r.ob_source))
                    posture = r.posture or posture
                    steps[r.scan_number] = StepFlags(
                        trade=r.trade, acb=(float(r.acb[0]), float(r.acb[1])) if r.acb else None, posture=posture,
                        kill_switch=r.kill_switch, mc=(float(r.mc[0]), float(r.mc[1])) if r.mc else None,
                        manual_exit=r.manual_exit, kill_level=r.kill_level)
                elif isinstance(r, Commit):
                    last_commit = r.scan_number if last_commit is None else max(last_commit, r.scan_number)
        except JournalCorrupt as exc:
            raise DataError(str(exc)) from None
        if not steps or last_commit is None:
            raise DataError(f"{journal.path}: no committed live step to replay")
        return cls(first_scan=min(steps), last_scan=last_commit, steps=steps, venue=venue, fills=fills,
                   ob_records=ob_records)
