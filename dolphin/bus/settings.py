"""Bus settings from the environment.

=========================== ========================================================
variable                    meaning (default)
=========================== ========================================================
DOLPHIN_HZ_MEMBERS          comma-separated ``host:port`` of a real cluster; empty =
                            the local embedded member at 127.0.0.1:DOLPHIN_HZ_PORT
DOLPHIN_HZ_PORT             port of the embedded member (5701)
DOLPHIN_HZ_CLUSTER          cluster name ("dolphin")
DOLPHIN_HZ_USERNAME         username, only if the cluster checks credentials
DOLPHIN_HZ_PASSWORD         password (never logged, never in repr)
DOLPHIN_HZ_CREDENTIALS_FILE a 0600 JSON file {"username", "password"}, read when the
                            two above are unset. Unset too, and the bus is the local
                            embedded member: ``<DOLPHIN_HOME>/secrets/bus.json`` if it
                            exists (the family's generated pair, see
                            `dolphin.bus.credentials`)
DOLPHIN_HZ_CONNECT_TIMEOUT  seconds to find a cluster before giving up (20). The
                            client's own default is infinite: never left so.
DOLPHIN_HZ_INVOCATION_TIMEOUT seconds an operation may retry (30; client default 120)
DOLPHIN_HZ_SMART_ROUTING    1/0 (1)
DOLPHIN_HZ_HEARTBEAT_TIMEOUT seconds without a byte from a member before the client
                            drops that connection and reconnects (60, the client's
                            default; lower it across hosts, where a cut link sends no
                            reset and TCP alone would hide it)
=========================== ========================================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dolphin.bus.credentials import (
    CREDENTIALS_FILE_ENV,
    PASSWORD_ENV,
    USERNAME_ENV,
    BusCredentials,
    family_credentials_path,
    read_credentials,
)
from dolphin.bus.errors import BusConfigError
from dolphin.paths import runtime_root
from dolphin.secret_file import SecretFileError

DEFAULT_PORT = 5701
DEFAULT_CLUSTER = "dolphin"
DEFAULT_CONNECT_TIMEOUT_S = 20.0
DEFAULT_INVOCATION_TIMEOUT_S = 30.0
DEFAULT_CONNECTION_TIMEOUT_S = 5.0
DEFAULT_HEARTBEAT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class BusSettings:
    """Where the bus is and how long to wait for it. The password never appears in repr."""

    members: tuple[str, ...] = (f"127.0.0.1:{DEFAULT_PORT}",)
    cluster_name: str = DEFAULT_CLUSTER
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    invocation_timeout_s: float = DEFAULT_INVOCATION_TIMEOUT_S
    connection_timeout_s: float = DEFAULT_CONNECTION_TIMEOUT_S
    heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S
    smart_routing: bool = True
    embedded: bool = True  # True when DOLPHIN_HZ_MEMBERS was empty (the local dev member)
    credentials_source: str | None = field(default=None, compare=False)  # where the pair came from, for messages

    def __post_init__(self) -> None:
        if not self.members:
            raise BusConfigError("the bus needs at least one member address")
        for address in self.members:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise BusConfigError(f"member address {address!r} is not host:port")
        if not self.cluster_name:
            raise BusConfigError("the cluster name must not be empty")
        if (self.username is None) != (self.password is None):
            raise BusConfigError("set both DOLPHIN_HZ_USERNAME and DOLPHIN_HZ_PASSWORD, or neither")
        for name in ("connect_timeout_s", "invocation_timeout_s", "connection_timeout_s", "heartbeat_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise BusConfigError(f"{name} must be a finite number of seconds > 0, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BusSettings:
        env = os.environ if environ is None else environ

        def seconds(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise BusConfigError(f"{name}={raw!r} is not a number of seconds") from None

        raw_members = env.get("DOLPHIN_HZ_MEMBERS", "").strip()
        embedded = not raw_members
        if embedded:
            port = env.get("DOLPHIN_HZ_PORT", "").strip() or str(DEFAULT_PORT)
            members: tuple[str, ...] = (f"127.0.0.1:{port}",)
        else:
            members = tuple(m.strip() for m in raw_members.split(",") if m.strip())
        smart = env.get("DOLPHIN_HZ_SMART_ROUTING", "1").strip().lower()
        if smart not in ("1", "0", "true", "false", "yes", "no"):
            raise BusConfigError(f"DOLPHIN_HZ_SMART_ROUTING={smart!r} is not 1 or 0")
        username, password, source = _credentials(env, embedded)
        return cls(
            members=members,
            cluster_name=env.get("DOLPHIN_HZ_CLUSTER", "").strip() or DEFAULT_CLUSTER,
            username=username,
            password=password,
            credentials_source=source,
            connect_timeout_s=seconds("DOLPHIN_HZ_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT_S),
            invocation_timeout_s=seconds("DOLPHIN_HZ_INVOCATION_TIMEOUT", DEFAULT_INVOCATION_TIMEOUT_S),
            heartbeat_timeout_s=seconds("DOLPHIN_HZ_HEARTBEAT_TIMEOUT", DEFAULT_HEARTBEAT_TIMEOUT_S),
            smart_routing=smart in ("1", "true", "yes"),
            embedded=embedded,
        )

    def describe(self) -> str:
        """Where we connect, for messages (no secrets)."""
        kind = "embedded member" if self.embedded else "cluster"
        return f"{kind} {','.join(self.members)} (cluster name {self.cluster_name!r})"


def _credentials(env: Mapping[str, str], embedded: bool) -> tuple[str | None, str | None, str | None]:
    """(username, password, where from): the variables, else the named file, else the family's file."""
    username, password = env.get(USERNAME_ENV) or None, env.get(PASSWORD_ENV) or None
    if username is not None or password is not None:
        return username, password, f"{USERNAME_ENV}/{PASSWORD_ENV}"
    named = env.get(CREDENTIALS_FILE_ENV, "").strip()
    path = Path(named).expanduser() if named else None
    if path is None and embedded:
        family = family_credentials_path(runtime_root(env, create=False))
        path = family if family.exists() else None
    if path is None:
        return None, None, None
    try:
        creds: BusCredentials = read_credentials(path)
    except SecretFileError as exc:
        raise BusConfigError(str(exc)) from None
    return creds.username, creds.password, str(path)


def default_member_data_dir() -> Path:
    """Where `dolphin up` keeps the embedded member's snapshots: ``<runtime root>/hz``."""
    return runtime_root() / "hz"
