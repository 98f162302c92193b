"""The lint step: ruff (pyflakes, bugbear, isort, pyupgrade) on the tree, mypy on dolphin/ tui/ commands/.

Both read their configuration from pyproject.toml and are pinned in the test extra, so a
new release cannot change the verdict under a green commit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

pytestmark = pytest.mark.data_integrity


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    proc = _run("ruff", "check", "--no-cache", "--output-format", "concise", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean(tmp_path: Path) -> None:
    proc = _run("mypy", "--cache-dir", str(tmp_path / "mypy_cache"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
