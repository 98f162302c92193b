"""``python -m dolphin.supervision.launch --secrets FILE -- COMMAND…``: start a program with its secrets.

supervisord's configuration must not hold a secret, and supervisord itself runs with a
scrubbed environment. A program that signs or verifies requests is therefore started
through this launcher: it reads the program's 0600 variables file (refusing one others
could read), adds those variables to its environment and *execs* the command — same
pid, so supervisord supervises and signals the program itself, and only that program's
``/proc/<pid>/environ`` ever holds the keys. Nothing is printed but a one-line error.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from dolphin.secret_file import SecretFileError, read_secret_file

EXIT_USAGE = 2
EXIT_SECRETS = 3
_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def launch_command(secrets_file: Path, command: list[str]) -> list[str]:
    """The launcher's argv that runs ``command`` with the variables of ``secrets_file``."""
    return [sys.executable, "-m", "dolphin.supervision.launch", "--secrets", str(secrets_file), "--", *command]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 4 or args[0] != "--secrets" or args[2] != "--":
        print("usage: python -m dolphin.supervision.launch --secrets FILE -- COMMAND [ARG…]", file=sys.stderr)
        return EXIT_USAGE
    path, command = Path(args[1]), args[3:]
    try:
        values = read_secret_file(path)
    except SecretFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SECRETS
    bad = sorted(name for name in values if not _NAME.fullmatch(name))
    if bad:
        print(f"error: secret file {path} names invalid variables: {', '.join(bad)}", file=sys.stderr)
        return EXIT_SECRETS
    env = {**os.environ, **values}
    try:
        os.execve(command[0], command, env)
    except OSError as exc:
        print(f"error: cannot run {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    return 0  # not reached: execve replaced this process


if __name__ == "__main__":
    raise SystemExit(main())
