"""A real DOLPHIN family for end-to-end tests: `dolphin up --detach` on free ports, `dolphin down` after.

Everything runs for real — supervisord, the bus member, the simulator exchange, the
scanner, MHS, the trader — on loopback, in a temporary runtime root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import free_port, wait_until  # noqa: F401 - free_port re-exported

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.25) -> Any:
    """`wait_until` at the family's pace: services may not exist yet, so errors mean "not yet"."""
    return wait_until(predicate, timeout, poll, what, tolerate_errors=True)


@dataclass
class Family:
    home: Path
    env: dict[str, str]
    pids: set[int] = field(default_factory=set)
    prefix: tuple[str, ...] = ()  # runs every command elsewhere, e.g. on a network-namespace host

    def cli(self, *args: str, timeout: float = 300.0, check: bool = False,
            env_update: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*self.prefix, sys.executable, "-m", "commands", *args], capture_output=True, text=True,
                             env={**self.env, **(env_update or {})}, timeout=timeout, cwd=PROJECT_ROOT)
        if check and res.returncode != 0:
            raise AssertionError(f"dolphin {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def status(self) -> dict[str, dict[str, Any]]:
        res = self.cli("svc", "status", "--json", check=True)
        procs = {p["name"]: p for p in json.loads(res.stdout)["processes"]}
        self.pids |= {p["pid"] for p in procs.values() if p["pid"]}
        return procs

    def pid(self, name: str) -> int | None:
        return self.status()[name]["pid"]

    def archive_numbers(self) -> list[int]:
        from dolphin.store.arrow_scans import parse_scan_filename

        root = self.home / "arrow_scans"
        found = []
        for path in root.rglob("scan_*.arrow"):
            parsed = parse_scan_filename(path.name)
            if parsed:
                found.append(parsed[0])
        return sorted(found)

    def bus_client(self):
        from dolphin.bus import BusSettings, connect

        return connect(BusSettings.from_env(self.env), cluster_connect_timeout=10.0)

    def down(self) -> None:
        self.cli("down", timeout=180)
        for pid in self.pids:  # belt and braces: nothing of the family may outlive the test
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_family(home: Path, *, speed: float = 30.0, extra_env: dict[str, str] | None = None,
                 args: tuple[str, ...] = (), prefix: tuple[str, ...] = ()) -> Family:
    env = dict(os.environ)
    env.update({
        "DOLPHIN_HOME": str(home),
        "DOLPHIN_HZ_PORT": str(free_port()),
        "DOLPHIN_SIM_PORT": str(free_port()),
        "DOLPHIN_SIM_SPEED": repr(speed),
        "DOLPHIN_HZ_MEMBERS": "",
        "DOLPHIN_MARKET": "sim",
    })
    env.update(extra_env or {})
    fam = Family(home=home, env=env, prefix=prefix)
    res = fam.cli("up", "--detach", "--json", *args, timeout=300)
    if res.returncode != 0:
        fam.down()
        raise AssertionError(f"dolphin up failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    fam.status()
    return fam
