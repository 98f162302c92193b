"""Command line of the member process, shared by ``python -m dolphin.bus.member`` and `dolphin hz serve`.

Credentials, when wanted, come only from the environment (``DOLPHIN_HZ_USERNAME`` and
``DOLPHIN_HZ_PASSWORD``) or from the 0600 file ``DOLPHIN_HZ_CREDENTIALS_FILE`` names
(how the family's ``hz`` program gets them), and are never printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from dolphin.bus.credentials import CREDENTIALS_FILE_ENV, PASSWORD_ENV, USERNAME_ENV, read_credentials
from dolphin.bus.member.config import DEFAULT_CLUSTER_NAME, DEFAULT_PORT, MemberConfig
from dolphin.bus.member.embedded import serve
from dolphin.bus.member.member import MemberStartFailed
from dolphin.secret_file import SecretFileError

# Exit codes shared with dolphin.bus.errors (kept literal here so the member imports nothing client-side).
EXIT_CONFIG = 11
EXIT_START = 12


class MemberConfigError(ValueError):
    """Flags or environment that cannot make a member."""


def configure_logging(level: str = "INFO") -> None:
    """One line per event on stderr; quiet if the host process already configured logging."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(stream=sys.stderr, level=level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dolphin.bus.member").setLevel(level.upper())


def build_config(*, host: str, port: int, cluster_name: str, data_dir: Path | None, require_credentials: bool,
                 snapshot_interval_s: float = 2.0, session_ttl_s: float = 300.0,
                 session_heartbeat_s: float = 5.0, cp_enabled: bool = True) -> MemberConfig:
    username = password = None
    if require_credentials:
        username = os.environ.get(USERNAME_ENV)
        password = os.environ.get(PASSWORD_ENV)
        named = os.environ.get(CREDENTIALS_FILE_ENV, "").strip()
        if not username and not password and named:
            try:
                creds = read_credentials(Path(named).expanduser())
            except SecretFileError as exc:
                raise MemberConfigError(str(exc)) from None
            username, password = creds.username, creds.password
        if not username or not password:
            raise MemberConfigError(f"--require-credentials needs {USERNAME_ENV} and {PASSWORD_ENV} in the environment, "
                                    f"or {CREDENTIALS_FILE_ENV} naming a 0600 credentials file")
    try:
        return MemberConfig(host=host, port=port, cluster_name=cluster_name, username=username, password=password,
                            data_dir=data_dir.expanduser().resolve() if data_dir else None,
                            snapshot_interval_s=snapshot_interval_s, session_ttl_s=session_ttl_s,
                            session_heartbeat_s=session_heartbeat_s, cp_enabled=cp_enabled)
    except ValueError as exc:
        raise MemberConfigError(str(exc)) from exc


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dolphin.bus.member",
                                description="Run the DOLPHIN embedded Hazelcast-protocol member in the foreground.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=os.environ.get("DOLPHIN_HZ_PORT") or str(DEFAULT_PORT),
                   help=f"port to bind, 0 = any free (default $DOLPHIN_HZ_PORT or {DEFAULT_PORT})")
    p.add_argument("--cluster-name", default=os.environ.get("DOLPHIN_HZ_CLUSTER") or DEFAULT_CLUSTER_NAME,
                   help=f"cluster name clients must present (default $DOLPHIN_HZ_CLUSTER or {DEFAULT_CLUSTER_NAME})")
    p.add_argument("--data-dir", type=Path, default=None, help="snapshot maps and CP values here and restore on start")
    p.add_argument("--require-credentials", action="store_true",
                   help=f"also check username/password ({USERNAME_ENV}, {PASSWORD_ENV}, or {CREDENTIALS_FILE_ENV})")
    p.add_argument("--snapshot-interval", type=float, default=2.0, help="seconds between snapshots (default 2)")
    p.add_argument("--session-ttl", type=float, default=300.0, help="CP session TTL in seconds (default 300)")
    p.add_argument("--session-heartbeat", type=float, default=5.0, help="CP session heartbeat in seconds (default 5)")
    p.add_argument("--no-cp", action="store_true",
                   help="answer CP calls UnsupportedOperation (behave like a cluster without CP)")
    p.add_argument("--ready-file", type=Path, default=None, help="write {host, port, pid, member_uuid} JSON when ready")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        config = build_config(host=args.host, port=args.port, cluster_name=args.cluster_name, data_dir=args.data_dir,
                              require_credentials=args.require_credentials,
                              snapshot_interval_s=args.snapshot_interval, session_ttl_s=args.session_ttl,
                              session_heartbeat_s=args.session_heartbeat, cp_enabled=not args.no_cp)
    except MemberConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        serve(config, ready_file=args.ready_file)
    except MemberStartFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_START
    except KeyboardInterrupt:
        return 130
    return 0
