"""An operator's force exit: a durable request the trader takes at its next step (issue 15 §1).

`dolphin trade exit SYMBOL|all` and the TUI write one request file each under
``<home>/requests/`` (atomic, 0600). The trader lists the directory at every step, hands
each request to the engine's own exit path (`NDAlphaEngine.request_exit` — reason MANUAL,
never an order around the engine), journals it with the step, and only then removes the
file: a crash in between re-reads a request whose id the journal already holds and drops
it. Files work with the bus down, like the kill switch.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from dolphin.execution.kill_switch import _who
from dolphin.store.atomic import atomic_write_bytes

REQUESTS_DIR = "requests"
ALL = "*"


class ExitRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Close the position in `asset` (`ALL`: whatever is open)."""

    id: str
    asset: str
    reason: str = ""
    by: str = ""
    at: float = 0.0

    def matches(self, asset: str) -> bool:
        return self.asset in (ALL, asset)


_DECODER = msgspec.json.Decoder(ExitRequest)


@dataclass(frozen=True, slots=True)
class ExitRequests:
    directory: Path

    @classmethod
    def under(cls, home: Path) -> ExitRequests:
        return cls(home / REQUESTS_DIR)

    def submit(self, asset: str, *, reason: str = "", by: str = "") -> ExitRequest:
        """Write a request (durable when this returns); `asset` ``all`` or ``*`` closes whatever is open."""
        target = ALL if asset.lower() in ("all", ALL) else asset.upper()
        at = time.time()
        request = ExitRequest(id=f"{int(at * 1000):013d}-{secrets.token_hex(4)}", asset=target,
                              reason=reason.strip(), by=by or _who(), at=at)
        atomic_write_bytes(self.directory / f"exit-{request.id}.json", msgspec.json.encode(request))
        return request

    def pending(self) -> list[ExitRequest]:
        """Requests not yet taken, oldest first (an unreadable file is dropped with its name in the error)."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.startswith("exit-") and n.endswith(".json"))
        except FileNotFoundError:
            return []
        out: list[ExitRequest] = []
        for name in names:
            path = self.directory / name
            try:
                out.append(_DECODER.decode(path.read_bytes()))
            except (OSError, msgspec.DecodeError, msgspec.ValidationError):
                path.unlink(missing_ok=True)
        return out

    def done(self, request: ExitRequest) -> None:
        (self.directory / f"exit-{request.id}.json").unlink(missing_ok=True)


__all__ = ["ALL", "ExitRequest", "ExitRequests"]
