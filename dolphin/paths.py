"""Where DOLPHIN keeps things on disk.

The runtime root holds everything a running system produces (default ``run_logs/`` of
the source checkout, or of the working directory for a non-editable install; override
with ``DOLPHIN_HOME``). Configs come from ``configs/`` of the checkout unless
``DOLPHIN_CONFIG_DIR`` points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _in_checkout() -> bool:
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "configs").is_dir()


def runtime_root() -> Path:
    """The runtime output root; created on first use."""
    env = os.environ.get("DOLPHIN_HOME")
    root = Path(env).expanduser() if env else (PROJECT_ROOT / "run_logs" if _in_checkout() else Path.cwd() / "run_logs")
    root.mkdir(parents=True, exist_ok=True)
    return root


def config_dir() -> Path:
    env = os.environ.get("DOLPHIN_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    return PROJECT_ROOT / "configs" if _in_checkout() else Path.cwd() / "configs"


def shared_data_dir() -> Path:
    """Real market history shipped beside the project (``../shared/data``)."""
    env = os.environ.get("DOLPHIN_SHARED_DATA")
    return Path(env).expanduser() if env else PROJECT_ROOT.parent / "shared" / "data"
