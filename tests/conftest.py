"""Suite-wide fixtures: every test runs with its own runtime root so nothing lands in run_logs/."""

from __future__ import annotations

import os

# One BLAS thread: on a small shared machine multi-threaded BLAS makes the many small
# matrix operations of the scan oracle tens of times slower. Must precede numpy's import.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_runtime_root(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("dolphin_home")
    monkeypatch.setenv("DOLPHIN_HOME", str(root))
    return root


@pytest.fixture
def runtime_root(_isolated_runtime_root: Path) -> Path:
    return _isolated_runtime_root
