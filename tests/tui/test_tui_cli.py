"""`dolphin tui` as a command: refuses without a terminal, validates its options, in one line each."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT, dolphin

pytestmark = pytest.mark.cli


def _dolphin(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return dolphin(*args, env={**os.environ, "DOLPHIN_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)})


def test_tui_without_a_terminal_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _dolphin("tui", home=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: dolphin tui needs a terminal (stdin and stdout must be a TTY)"]


def test_journal_needs_replay(tmp_path: Path) -> None:
    result = _dolphin("tui", "--journal", str(tmp_path / "j"), home=tmp_path)
    assert result.returncode == 2 and "--journal goes with --replay" in result.stderr


def test_help_lists_the_keys(tmp_path: Path) -> None:
    result = _dolphin("tui", "--help", home=tmp_path)
    assert result.returncode == 0 and "--replay" in result.stdout and "q quit" in result.stdout
