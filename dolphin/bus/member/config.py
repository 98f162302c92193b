"""Settings of the embedded member.

Defaults mirror a real single-node Hazelcast 5.x member where the client can tell
(271 partitions, 300 s CP session TTL, 5 s session heartbeat, 60 s idle-client
timeout). Tests shrink the timers; operators rarely touch anything but host, port,
cluster name and data dir.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 5701
DEFAULT_CLUSTER_NAME = "dolphin"
PARTITION_COUNT = 271  # must never change across restarts: the client refuses a different count
SERVER_VERSION = "5.5.0"


@dataclass(frozen=True)
class MemberConfig:
    """How one member listens, authenticates, times out and persists.

    `username`/`password` are None unless credential checking is wanted (open-source
    Hazelcast ignores credentials, so by default only the cluster name is checked).
    The password is excluded from repr so it never reaches a log line.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    cluster_name: str = DEFAULT_CLUSTER_NAME
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    data_dir: Path | None = None
    snapshot_interval_s: float = 2.0
    session_ttl_s: float = 300.0
    session_heartbeat_s: float = 5.0
    idle_timeout_s: float = 60.0  # close clients silent this long; 0 disables
    expiry_sweep_s: float = 0.25
    max_frame_bytes: int = 64 * 1024 * 1024
    max_write_buffer_bytes: int = 64 * 1024 * 1024  # a listener slower than this is disconnected
    handshake_timeout_s: float = 10.0
    server_version: str = SERVER_VERSION
    cp_enabled: bool = True  # False answers every CP call UnsupportedOperation, like a cluster without CP

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is outside 0..65535")
        if not self.cluster_name:
            raise ValueError("cluster name must not be empty")
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        for name in ("snapshot_interval_s", "session_ttl_s", "session_heartbeat_s", "expiry_sweep_s",
                     "handshake_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.idle_timeout_s < 0:
            raise ValueError("idle_timeout_s must be >= 0")
        if self.session_heartbeat_s >= self.session_ttl_s:
            raise ValueError("session_heartbeat_s must be shorter than session_ttl_s")

    @property
    def checks_credentials(self) -> bool:
        return self.username is not None
