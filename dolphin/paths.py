"""Where DOLPHIN keeps things on disk.

The runtime root holds everything a running system produces (default ``run_logs/`` of
the source checkout, or of the working directory for a non-editable install; override
with ``DOLPHIN_HOME``). Configs come from ``configs/`` of the checkout unless
``DOLPHIN_CONFIG_DIR`` points elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dolphin.errors import DolphinError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _in_checkout() -> bool:
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "configs").is_dir()


def runtime_root(environ: Mapping[str, str] | None = None, *, create: bool = True) -> Path:
    """The runtime output root (from ``environ``, default the process environment).

    Created on first use with mode 0700: it holds the family's secrets, journal and
    logs, which no other local user has any business reading.
    """
    env = os.environ if environ is None else environ
    raw = env.get("DOLPHIN_HOME")
    root = Path(raw).expanduser() if raw else (PROJECT_ROOT / "run_logs" if _in_checkout() else Path.cwd() / "run_logs")
    if create:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def display_path(path: str | Path, limit: int = 96) -> str:
    """``path`` for a one-line message: shortened in the middle when longer than ``limit`` characters."""
    text = str(path)
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return f"{text[:keep]}…{text[-keep:]} ({len(text)} characters)"


def require_exists(path: Path, what: str, error: type[DolphinError]) -> Path:
    """``path`` if it exists, else ``error`` naming it — also when the OS refuses to look
    (a name longer than the file system allows, a folder we may not enter)."""
    try:
        found = path.exists()
    except OSError as exc:
        raise error(f"{display_path(path)}: {what} cannot be read ({exc.strerror or exc})") from None
    if not found:
        raise error(f"{display_path(path)}: {what} not found")
    return path


def config_dir() -> Path:
    env = os.environ.get("DOLPHIN_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    return PROJECT_ROOT / "configs" if _in_checkout() else Path.cwd() / "configs"


def shared_data_dir() -> Path:
    """Real market history shipped beside the project (``../shared/data``)."""
    env = os.environ.get("DOLPHIN_SHARED_DATA")
    return Path(env).expanduser() if env else PROJECT_ROOT.parent / "shared" / "data"
