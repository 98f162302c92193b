"""Snapshots: atomic files, fallbacks, quarantine of corrupt files, one member per data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dolphin.bus.member.persistence import (
    LOCK_NAME,
    PREVIOUS_NAME,
    SNAPSHOT_NAME,
    DataDirLocked,
    SnapshotStore,
    build_snapshot,
)


def _snapshot(value: bytes = b"v"):  # type: ignore[no-untyped-def]
    return build_snapshot("dolphin", {"DOLPHIN_SAFETY": [(b"k", value, None), (b"t", b"x", 1.9e9)]},
                          [("default", "DOLPHIN_SAFETY", b"ref"), ("default", "cleared", None)])


def test_round_trip_and_previous_copy(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.lock()
    try:
        store.write(_snapshot(b"one"))
        store.write(_snapshot(b"two"))
        loaded = store.load()
        assert loaded is not None
        assert loaded.maps[0].entries[0].value == b"two" and loaded.maps[0].entries[1].expires_at == 1.9e9
        assert [(r.name, r.value) for r in loaded.atomic_refs] == [("DOLPHIN_SAFETY", b"ref"), ("cleared", None)]
        assert (tmp_path / PREVIOUS_NAME).exists()
        assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # no temp file left behind
    finally:
        store.unlock()


def test_a_corrupt_snapshot_is_moved_aside_and_the_previous_one_used(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.write(_snapshot(b"old"))
    store.write(_snapshot(b"new"))
    (tmp_path / SNAPSHOT_NAME).write_bytes(b"\x93garbage")
    loaded = store.load()
    assert loaded is not None and loaded.maps[0].entries[0].value == b"old"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("bus-snapshot.corrupt-")]


def test_nothing_readable_means_an_empty_start(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    assert store.load() is None
    (tmp_path / SNAPSHOT_NAME).write_bytes(b"not msgpack at all")
    assert store.load() is None
    assert not (tmp_path / SNAPSHOT_NAME).exists()  # quarantined, never deleted


def test_one_member_per_data_dir(tmp_path: Path) -> None:
    first = SnapshotStore(tmp_path)
    first.lock()
    try:
        with pytest.raises(DataDirLocked):
            SnapshotStore(tmp_path).lock()
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    finally:
        first.unlock()
    second = SnapshotStore(tmp_path)
    second.lock()
    second.unlock()
