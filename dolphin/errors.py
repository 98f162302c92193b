"""User-facing error types.

Every error an operator can cause (bad argument, bad config, missing file, a service
that is not running) is a `DolphinError`. The CLI prints its message as one line and
exits with its `exit_code`; anything else is a bug and is reported as such.
Exit codes are distinct so scripts can tell failures apart.
"""

from __future__ import annotations


class DolphinError(Exception):
    """An error caused by input or environment, reported to the operator in one line."""

    exit_code = 1


class UsageError(DolphinError):
    """A command was called with arguments that cannot work together."""

    exit_code = 2


class ConfigError(DolphinError):
    """A configuration file is missing, malformed or has out-of-range values."""

    exit_code = 3

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class DriftError(DolphinError):
    """Blue's frozen parameters differ from the frozen champion."""

    exit_code = 4

    def __init__(self, message: str, drifted: list[str]) -> None:
        self.drifted = list(drifted)
        super().__init__(message)


class DataError(DolphinError):
    """Input data (klines, scan tables, archives) is missing or malformed."""

    exit_code = 6
