"""Services an operator stopped on purpose: `dolphin svc stop --hold NAME` — MHS leaves them stopped.

MHS restarts a critical data service it finds stopped (docs/health.md): right after a crash,
and just as well seconds after an operator's `dolphin svc stop scanner`. A hold is how the
operator says "stopped on purpose": a name in ``<home>/supervisor/holds.json`` (0600, written
atomically) that MHS reads before every restart. `dolphin svc start` (or `restart`) of the
service lifts it. An unreadable file holds nothing — MHS keeps healing — and says why once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec

from dolphin.store.atomic import atomic_write_bytes

log = logging.getLogger("dolphin.supervision")


def holds_path(home: Path) -> Path:
    return home / "supervisor" / "holds.json"


def read_holds(home: Path) -> frozenset[str]:
    """The held service names (empty when there is no file, or it cannot be read)."""
    path = holds_path(home)
    try:
        names = msgspec.json.decode(path.read_bytes(), type=list[str])
    except FileNotFoundError:
        return frozenset()
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("holds file %s unreadable (%s): no service is held", path, exc)
        return frozenset()
    return frozenset(names)


def set_hold(home: Path, name: str, held: bool) -> bool:
    """Hold or release one service; True when that changed anything."""
    holds = set(read_holds(home))
    if (name in holds) == held:
        return False
    holds.add(name) if held else holds.discard(name)
    path = holds_path(home)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_bytes(path, msgspec.json.encode(sorted(holds)))
    return True


__all__ = ["holds_path", "read_holds", "set_hold"]
