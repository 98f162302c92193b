"""Helpers every test layer shares: the project root, a free loopback port, polling with a hang guard.

Naming: helpers live in a module named ``support.py`` — this one for every layer, and one
per test directory that needs its own (``tests/tui/support.py``, ``tests/e2e/support.py``,
``tests/integration/support.py``, ``tests/integration/<room>/support.py``…), imported as
``tests.<dir>.support``. A layer's support module does not re-export these. ``conftest.py``
files hold fixtures only; nothing imports from a conftest. Every test directory with Python
files is a package (an empty ``__init__.py``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: A CLI call's guard against hangs, not a speed check: a cold `python -m commands` on a
#: loaded 2-core machine takes many seconds before it does anything.
CLI_TIMEOUT_S = 300.0


def dolphin(*args: str, env: Mapping[str, str] | None = None, timeout: float = CLI_TIMEOUT_S,
            cwd: Path = PROJECT_ROOT, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``dolphin ARGS`` as an operator runs it (``python -m commands``), no terminal, output captured.

    ``env`` replaces the environment (None: this process's); ``prefix`` runs it elsewhere
    (e.g. ``ip netns exec HOST`` for a host of a split family).
    """
    return subprocess.run([*prefix, sys.executable, "-m", "commands", *args], cwd=cwd, capture_output=True, text=True,
                          env=None if env is None else dict(env), timeout=timeout, stdin=subprocess.DEVNULL)


def pid_alive(pid: int) -> bool:
    """A process with this pid exists (it may belong to someone else)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for services that must be told their port up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.02,
               what: str = "condition", *, tolerate_errors: bool = False) -> Any:
    """Poll until `predicate()` is truthy and return its value; the timeout only guards against hangs.

    ``tolerate_errors``: an exception from the predicate counts as "not yet" (the thing
    waited for may not exist yet) and the last one is named if time runs out.
    """
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            if not tolerate_errors:
                raise
            last_exc = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_exc})" if last_exc is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


class ManualClock:
    """A clock the test moves by hand (``clock.t += 5``), for code that takes ``clock=`` or ``monotonic=``."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
