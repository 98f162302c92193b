"""Shared output helpers: one rich console, JSON for `--json`, one-line errors."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def print_json(data: Any) -> None:
    """Machine output: strict JSON (NaN/inf become null) on stdout, nothing else."""
    sys.stdout.write(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def fail_line(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
