"""Snapshots of the member's maps and CP AtomicReference values in ``--data-dir``.

Layout of the data dir::

    member.lock              held (flock) while a member uses the dir; a second member refuses to start
    bus-snapshot.msgpack     the latest complete snapshot
    bus-snapshot.prev        the one before it (fallback if the latest cannot be read)
    bus-snapshot.corrupt-*   unreadable snapshots moved aside for inspection

A snapshot is written to a temp file, fsynced and renamed over the old one (then the
directory is fsynced), so a crash at any moment leaves either the old or the new
snapshot, never a torn one. Values are the clients' serialized bytes, unchanged.
What is *not* saved: CP sessions and lock ownership (they belong to live clients),
listener registrations (clients re-register on reconnect) and member identity (a new
one is chosen on every start, as a real cluster does).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

import msgspec

from dolphin.store.atomic import atomic_write_bytes

log = logging.getLogger("dolphin.bus.member")

SNAPSHOT_FORMAT = 1
SNAPSHOT_NAME = "bus-snapshot.msgpack"
PREVIOUS_NAME = "bus-snapshot.prev"
LOCK_NAME = "member.lock"


class SnapshotEntry(msgspec.Struct, array_like=True, frozen=True):
    key: bytes
    value: bytes
    expires_at: float | None  # wall clock (unix seconds); None = no TTL


class MapSnapshot(msgspec.Struct, frozen=True):
    name: str
    entries: list[SnapshotEntry]


class RefSnapshot(msgspec.Struct, array_like=True, frozen=True):
    group: str
    name: str
    value: bytes | None


class Snapshot(msgspec.Struct, frozen=True):
    """Everything that survives a restart, in one msgpack document."""

    format: int
    written_at: float
    cluster_name: str
    maps: list[MapSnapshot]
    atomic_refs: list[RefSnapshot]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)


class DataDirLocked(Exception):
    """Another live member holds the data dir."""


class SnapshotStore:
    """Reads and writes snapshots in one data dir, which it locks for its lifetime."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / SNAPSHOT_NAME
        self.previous = data_dir / PREVIOUS_NAME
        self._lock_fd: int | None = None
        self.last_written_at: float | None = None
        self.last_bytes = 0

    def lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise DataDirLocked(f"data dir {self.data_dir} is in use by another member") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def load(self) -> Snapshot | None:
        """The newest readable snapshot; unreadable files are moved aside, never deleted."""
        for path in (self.path, self.previous):
            if not path.exists():
                continue
            try:
                snapshot = _decoder.decode(path.read_bytes())
            except (msgspec.DecodeError, msgspec.ValidationError, OSError) as exc:
                aside = path.with_name(f"bus-snapshot.corrupt-{int(time.time())}-{path.suffix.lstrip('.')}")
                log.error("snapshot %s is unreadable (%s); moved to %s", path, exc, aside.name)
                try:
                    os.replace(path, aside)
                except OSError:
                    log.exception("could not move %s aside", path)
                continue
            if snapshot.format != SNAPSHOT_FORMAT:
                log.error("snapshot %s has format %s (expected %s); ignored", path, snapshot.format, SNAPSHOT_FORMAT)
                continue
            return snapshot
        return None

    def write(self, snapshot: Snapshot) -> int:
        """Write atomically (temp + fsync + rename + dir fsync), keeping the previous one; returns the size."""
        payload = _encoder.encode(snapshot)
        if self.path.exists():
            os.replace(self.path, self.previous)
        atomic_write_bytes(self.path, payload)
        self.last_written_at = time.time()
        self.last_bytes = len(payload)
        return len(payload)


def build_snapshot(cluster_name: str, maps: dict[str, list[tuple[bytes, bytes, float | None]]],
                   refs: list[tuple[str, str, bytes | None]]) -> Snapshot:
    return Snapshot(
        format=SNAPSHOT_FORMAT,
        written_at=time.time(),
        cluster_name=cluster_name,
        maps=[MapSnapshot(name, [SnapshotEntry(k, v, e) for k, v, e in entries]) for name, entries in maps.items()],
        atomic_refs=[RefSnapshot(g, n, v) for g, n, v in refs],
    )
