"""The kill switch (ARCHITECTURE decision 7): three levels an operator sets, and a bare file that halts.

`dolphin kill pause|reduce|halt|clear`, the TUI and (later) automatic escalation all go
through `KillSwitch.engage`: it writes the state file ``<home>/kill_switch.json``
atomically (0600) with who set it, why and when, so the level survives any restart and is
read by the trader at every step. The bare file (``trader.kill_switch``, ``KILL`` under the
runtime root) keeps working as **halt** — `touch run_logs/KILL` from any shell stops every
order even with the bus and the CLI down; the effective level is the stricter of the two.

What each level does is in `dolphin.enums.KillLevel`; the trader journals every change
(`KillRecord`) and the level of every step, so `backtest --journal` replays it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from dolphin.enums import KillLevel
from dolphin.store.atomic import atomic_write_bytes

log = logging.getLogger("dolphin.trader")

STATE_FILE = "kill_switch.json"


class KillState(msgspec.Struct, frozen=True, kw_only=True):
    """The switch as set: level, why, by whom, when (wall clock)."""

    level: KillLevel = KillLevel.CLEAR
    reason: str = ""
    by: str = ""
    at: float = 0.0
    until: float = 0.0    # a temporary level (the live trader's automatic 5-minute pause) lapses then; 0 = standing

    def lapsed(self, now: float) -> bool:
        return self.until > 0.0 and now >= self.until


CLEAR = KillState()
_DECODER = msgspec.json.Decoder(KillState)


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """The bare file (`path`, halt when present) and the level file beside the runtime root."""

    path: Path
    state_path: Path

    @classmethod
    def under(cls, home: Path, configured: str) -> KillSwitch:
        p = Path(configured).expanduser()
        return cls(p if p.is_absolute() else home / p, home / STATE_FILE)

    # ------------------------------------------------------------ reading (every step)
    def state(self) -> KillState:
        """The effective switch: the level file, raised to halt while the bare file exists."""
        current = self._read_level_file()
        if current.lapsed(time.time()):   # a temporary pause ran out: clear, saying which one
            current = KillState(level=KillLevel.CLEAR, reason=f"{current.level} lapsed ({current.reason})",
                                by=current.by, at=current.until)
        if self.path.exists() and current.level is not KillLevel.HALT:
            return KillState(level=KillLevel.HALT, reason=f"the file {self.path} exists", by="kill file",
                             at=_mtime(self.path))
        return current

    def level(self) -> KillLevel:
        return self.state().level

    def active(self) -> bool:
        """Any level but clear (kept for callers that only ask whether entries are blocked)."""
        return self.level() is not KillLevel.CLEAR

    def _read_level_file(self) -> KillState:
        try:
            data = self.state_path.read_bytes()
        except FileNotFoundError:
            return CLEAR
        except OSError as exc:   # unreadable: refuse to trade rather than guess
            log.error("kill switch %s unreadable (%s): treating it as halt", self.state_path, exc)
            return KillState(level=KillLevel.HALT, reason=f"{self.state_path} unreadable: {exc}", by="dolphin")
        try:
            return _DECODER.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("kill switch %s is not a kill state (%s): treating it as halt", self.state_path, exc)
            return KillState(level=KillLevel.HALT, reason=f"{self.state_path} is corrupt: {exc}", by="dolphin")

    # ------------------------------------------------------------ writing (CLI, TUI, escalation)
    def engage(self, level: KillLevel, *, reason: str = "", by: str = "", for_s: float = 0.0) -> KillState:
        """Set the level (clear included), durable before this returns; ``for_s`` > 0 makes it lapse after that."""
        now = time.time()
        state = KillState(level=level, reason=reason.strip(), by=by or _who(), at=now,
                          until=now + for_s if for_s > 0 else 0.0)
        atomic_write_bytes(self.state_path, msgspec.json.encode(state))
        if level is KillLevel.CLEAR and self.path.exists():
            log.warning("kill switch cleared, but the file %s still holds it at halt: remove it too", self.path)
        return state


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _who() -> str:
    """The operator's name for the record (the login user, else the uid)."""
    for var in ("DOLPHIN_OPERATOR", "USER", "LOGNAME"):
        value = os.environ.get(var)
        if value:
            return value
    return f"uid {os.getuid()}"


__all__ = ["CLEAR", "STATE_FILE", "KillState", "KillSwitch"]
