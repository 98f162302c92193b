"""Operator errors of process management, each with its own exit code (30–39)."""

from __future__ import annotations

from dolphin.errors import DolphinError


class SupervisorNotRunning(DolphinError):
    """No supervisord answers on the family's socket: the family is down."""

    exit_code = 30


class UnknownService(DolphinError):
    exit_code = 31


class AlreadyRunning(DolphinError):
    exit_code = 32


class NotRunning(DolphinError):
    exit_code = 33


class StartFailed(DolphinError):
    """A program did not reach RUNNING (spawn error, exited during startsecs, FATAL)."""

    exit_code = 34


class SupervisionTimeout(DolphinError):
    exit_code = 35


class SupervisorError(DolphinError):
    """Anything else supervisord refused, with its fault name."""

    exit_code = 36
