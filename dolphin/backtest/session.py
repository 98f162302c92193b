"""A live trader's session inputs, read from its journal, for an exact replay.

The scan archive holds the market; some inputs of a live session are not in it: whether
a scan was traded (a stale scan feeds the histories only), the ACB updates that arrived
by listener, the posture in force, the kill switch. The trader journals them with every
step (`ScanInput`). Replaying a journal's inputs over the archive reproduces the session
trade for trade — and shows any difference that remains as a bug, not as noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dolphin.enums import Posture
from dolphin.errors import DataError
from dolphin.store.journal import Commit, Journal, JournalCorrupt, ScanInput


@dataclass(frozen=True, slots=True)
class StepFlags:
    trade: bool
    acb: tuple[float, float] | None
    posture: str
    kill_switch: bool

    def same_regime(self, other: StepFlags) -> bool:
        """Consecutive scans with these flags can run in one engine block (no update between them)."""
        return (other.acb is None and self.trade == other.trade and self.posture == other.posture
                and self.kill_switch == other.kill_switch)


@dataclass(frozen=True, slots=True)
class SessionInputs:
    first_scan: int
    last_scan: int
    steps: dict[int, StepFlags]

    @classmethod
    def from_journal(cls, path: str | Path) -> SessionInputs:
        journal = Journal(path)
        if not journal.path.is_file():
            raise DataError(f"trader journal not found: {journal.path}")
        steps: dict[int, StepFlags] = {}
        posture: str = Posture.APEX
        last_commit: int | None = None
        try:
            for r in journal.iter_records():
                if isinstance(r, ScanInput):
                    posture = r.posture or posture
                    steps[r.scan_number] = StepFlags(trade=r.trade, acb=tuple(r.acb) if r.acb else None,  # type: ignore[arg-type]
                                                     posture=posture, kill_switch=r.kill_switch)
                elif isinstance(r, Commit):
                    last_commit = r.scan_number if last_commit is None else max(last_commit, r.scan_number)
        except JournalCorrupt as exc:
            raise DataError(str(exc)) from None
        if not steps or last_commit is None:
            raise DataError(f"{journal.path}: no committed live step to replay")
        return cls(first_scan=min(steps), last_scan=last_commit, steps=steps)
