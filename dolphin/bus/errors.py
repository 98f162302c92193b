"""Operator-facing errors of the bus (exit codes 10-13).

These are `DolphinError`s: the CLI prints the message as one line and exits with the
code. Bad *payloads* are not here on purpose: a payload from the bus is edge input,
rejected and counted by the codec (`dolphin.bus.codec.PayloadError`), never an error
that stops a command or a daemon.
"""

from __future__ import annotations

from dolphin.errors import DolphinError


class BusError(DolphinError):
    """Base class of bus errors."""

    exit_code = 10


class BusUnavailableError(BusError):
    """No Hazelcast member could be reached (or it refused us) within the connect timeout."""

    exit_code = 10


class BusCredentialsError(BusUnavailableError):
    """The bus answered but refused this client: wrong cluster name, or wrong or missing credentials."""

    exit_code = 13


class BusConfigError(BusError):
    """``DOLPHIN_HZ_*`` settings or member flags that cannot work."""

    exit_code = 11


class MemberStartError(BusError):
    """The embedded member could not start: port in use, data dir locked by another member."""

    exit_code = 12
