"""Atomic file writes: write a temp file beside the target, fsync, rename over it.

Readers (the TUI footer, MHS consumers, restarts) then see either the old file or the
new one, never a torn write, even if the writer is killed mid-way.

Files are 0600 unless the caller asks otherwise: everything DOLPHIN writes (archive,
journal, bus snapshots, reports, account state) is read by the family and its operator
only, never by another local user.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes, mode: int = 0o600) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


def atomic_write_text(path: str | Path, text: str, mode: int = 0o600) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), mode)
