"""Suite-wide fixtures: every test runs with its own runtime root so nothing lands in run_logs/."""

from __future__ import annotations

import os

# One BLAS thread: on a small shared machine multi-threaded BLAS makes the many small
# matrix operations of the scan oracle tens of times slower. Must precede numpy's import.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Compile the numba kernels once in the controlling process, before any worker starts (tests/numba_warmup.py)."""
    if hasattr(config, "workerinput") or os.environ.get("DOLPHIN_TEST_NO_WARMUP") == "1":
        return
    if config.getoption("collectonly", False) or config.getoption("help", False):
        return
    root = Path(__file__).resolve().parents[1]
    started = time.perf_counter()
    groups = [subprocess.Popen([sys.executable, "-m", "tests.numba_warmup", group], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
              for group in ("engine", "scan")]
    failed = [(p.args[-1], err) for p in groups for _, err in [p.communicate()] if p.returncode != 0]
    if failed:   # the tests that need the kernels will fail with the real error; say it here once too
        for group, err in failed:
            sys.stderr.write(f"numba warm-up ({group}) failed:\n{err[-2000:]}\n")
    else:
        sys.stderr.write(f"numba kernels compiled or loaded in {time.perf_counter() - started:.1f} s\n")


@pytest.fixture(autouse=True)
def _isolated_runtime_root(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("dolphin_home")
    monkeypatch.setenv("DOLPHIN_HOME", str(root))
    return root


@pytest.fixture
def runtime_root(_isolated_runtime_root: Path) -> Path:
    return _isolated_runtime_root
