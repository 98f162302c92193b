"""What machine a benchmark ran on, printed with its figures (they mean nothing without it)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def machine(*packages: str) -> str:
    """CPU, cores, OS, Python, and the versions of ``packages`` whose speed the figures depend on."""
    parts = [cpu_model(), f"{os.cpu_count()} logical cores", f"{platform.system()} {platform.release()}",
             f"Python {platform.python_version()}"]
    for name in packages:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)
