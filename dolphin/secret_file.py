"""Secret files: a small JSON object of strings, mode 0600 in a 0700 folder, owned by us.

Why files and not the environment: a variable in a process's environment is inherited
by every child and readable in ``/proc/<pid>/environ`` of each, so one key exported in
the shell of `dolphin up` used to reach every daemon of the family. A secret file is
read only by the program that is told its path, and its mode keeps other local users
out. Readers refuse a file others could read or that is not ours (as ssh does with a
private key): a secret that leaked must be noticed, not silently used. Error messages
name the file, never its content.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from dolphin.errors import ConfigError
from dolphin.store.atomic import atomic_write_bytes

MAX_SECRET_FILE_BYTES = 64 * 1024
SECRET_DIR_MODE = 0o700
SECRET_FILE_MODE = 0o600


class SecretFileError(ConfigError):
    """A secret file is missing, unsafe (readable by others, not ours, a symlink) or malformed."""


def read_secret_file(path: Path) -> dict[str, str]:
    """The ``{name: value}`` strings of a 0600 JSON file owned by this user."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SecretFileError(f"secret file {path} does not exist") from None
    except OSError as exc:
        raise SecretFileError(f"cannot open secret file {path} ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"secret file {path} is not a regular file")
        if info.st_uid != os.getuid():
            raise SecretFileError(f"secret file {path} belongs to uid {info.st_uid}, not to this user")
        if info.st_mode & 0o077:
            raise SecretFileError(f"secret file {path} is readable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
                                  f"run `chmod 600 {path}` if it did not leak, else replace the secret")
        if info.st_size > MAX_SECRET_FILE_BYTES:
            raise SecretFileError(f"secret file {path} is larger than {MAX_SECRET_FILE_BYTES} bytes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(MAX_SECRET_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SecretFileError(f"secret file {path} is not a JSON object") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise SecretFileError(f"secret file {path} must be a JSON object of strings")
    return data


def write_secret_file(path: Path, values: Mapping[str, str]) -> Path:
    """Write ``values`` atomically as a 0600 file; its folder is created (or tightened) to 0700."""
    ensure_private_dir(path.parent)
    body = json.dumps(dict(values), indent=2, sort_keys=True).encode("utf-8") + b"\n"
    return atomic_write_bytes(path, body, mode=SECRET_FILE_MODE)


def ensure_private_dir(directory: Path) -> Path:
    """``directory`` exists with mode 0700 (its parents are created with 0700 too)."""
    directory.mkdir(parents=True, exist_ok=True, mode=SECRET_DIR_MODE)
    if stat.S_IMODE(directory.stat().st_mode) != SECRET_DIR_MODE:
        directory.chmod(SECRET_DIR_MODE)
    return directory


def remove_secret_file(path: Path) -> bool:
    """Delete a secret file; True if there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
