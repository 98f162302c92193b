"""`dolphin svc stop --hold`: the holds file MHS reads before every restart."""

from __future__ import annotations

import stat
from pathlib import Path

from dolphin.supervision.holds import holds_path, read_holds, set_hold


def test_a_hold_is_set_lifted_and_written_privately(tmp_path: Path) -> None:
    assert read_holds(tmp_path) == frozenset()
    assert set_hold(tmp_path, "scanner", True) and not set_hold(tmp_path, "scanner", True)
    assert set_hold(tmp_path, "obf", True)
    assert read_holds(tmp_path) == {"scanner", "obf"}
    assert stat.S_IMODE(holds_path(tmp_path).stat().st_mode) == 0o600
    assert set_hold(tmp_path, "scanner", False) and not set_hold(tmp_path, "scanner", False)
    assert read_holds(tmp_path) == {"obf"}


def test_an_unreadable_holds_file_holds_nothing(tmp_path: Path) -> None:
    holds_path(tmp_path).parent.mkdir(parents=True)
    holds_path(tmp_path).write_text('{"scanner": tr')
    assert read_holds(tmp_path) == frozenset()      # MHS keeps healing rather than trusting a torn file
    assert set_hold(tmp_path, "scanner", True) and read_holds(tmp_path) == {"scanner"}
