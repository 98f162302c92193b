"""The kill switch (ARCHITECTURE decision 7): a file whose presence halts new entries.

A file, not a bus key, so it works when the bus is down and an operator can flip it
with `touch` from any shell. Open positions keep being managed while it is present.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class KillSwitch:
    path: Path

    @classmethod
    def under(cls, home: Path, configured: str) -> KillSwitch:
        p = Path(configured).expanduser()
        return cls(p if p.is_absolute() else home / p)

    def active(self) -> bool:
        return self.path.exists()
