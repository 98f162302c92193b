"""A real DOLPHIN family for end-to-end tests: `dolphin up --detach` on free ports, `dolphin down` after.

Everything runs for real — supervisord, the bus member, the simulator exchange, the
scanner, MHS, the trader — on loopback, in a temporary runtime root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support import CLI_TIMEOUT_S, PROJECT_ROOT, dolphin, free_port, wait_until

if TYPE_CHECKING:
    from dolphin.supervision.rpc import ProcessInfo


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.25) -> Any:
    """`wait_until` at the family's pace: services may not exist yet, so errors mean "not yet"."""
    return wait_until(predicate, timeout, poll, what, tolerate_errors=True)


@dataclass
class Family:
    home: Path
    env: dict[str, str]
    pids: set[int] = field(default_factory=set)
    prefix: tuple[str, ...] = ()  # runs every command elsewhere, e.g. on a network-namespace host

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT_S, check: bool = False,
            env_update: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        res = dolphin(*args, env={**self.env, **(env_update or {})}, timeout=timeout, prefix=self.prefix)
        if check and res.returncode != 0:
            raise AssertionError(f"dolphin {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def status(self) -> dict[str, dict[str, Any]]:
        res = self.cli("svc", "status", "--json", check=True)
        procs = {p["name"]: p for p in json.loads(res.stdout)["processes"]}
        self.pids |= {p["pid"] for p in procs.values() if p["pid"]}
        return procs

    def process(self, name: str) -> ProcessInfo:
        """One program straight from supervisord's RPC: cheap enough to poll (a CLI call starts a whole Python)."""
        from dolphin.supervision.programs import BY_NAME
        from dolphin.supervision.render import FamilyPaths
        from dolphin.supervision.rpc import SupervisorClient

        info = SupervisorClient(FamilyPaths.for_home(self.home).socket, timeout=30).process(BY_NAME[name].fullname)
        if info.pid:
            self.pids.add(info.pid)
        return info

    def health_report(self) -> dict[str, Any]:
        """MHS's latest report as it writes it after every check (what `dolphin health` reads without a bus)."""
        path = self.home / "meta_health.json"
        return json.loads(path.read_bytes()) if path.exists() else {}

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


def configs_with(root: Path, section: str, **values: Any) -> Path:
    """A copy of the project's configs/ with some keys of one services.yml section replaced.

    Give it to a family as ``DOLPHIN_CONFIG_DIR``: the strategy configs stay the project's own.
    """
    import shutil

    import yaml

    target = root / "configs"
    shutil.copytree(PROJECT_ROOT / "configs", target)
    services = yaml.safe_load((target / "services.yml").read_text()) or {}
    services.setdefault(section, {}).update(values)
    (target / "services.yml").write_text(yaml.safe_dump(services, sort_keys=False))
    return target


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
        # Cat3 (OB microstructure) off: the simulator's books withdraw liquidity in its panics, and at 15–30×
        # a panic every few wall minutes holds the posture at TURTLE (no entries) for much of a short test.
        # These tests are about the family (nothing lost, parity, healing); the watchdog's sensors, Cat3
        # included, are tested in tests/integration/risk. A test can set it back through extra_env.
        "DOLPHIN_WATCHDOG_OB_SENSOR": "off",
        # OBF's first-publish warm-up (60 s of wall time) and its 60 s universe snapshot would hold MHS's M3
        # below GREEN for the first minute of every family; both are tested in tests/integration/obf
        "DOLPHIN_OBF_WARMUP_S": "1",
        "DOLPHIN_OBF_SNAPSHOT_S": "10",
    })
    env.update(extra_env or {})
    fam = Family(home=home, env=env, prefix=prefix)
    res = fam.cli("up", "--detach", "--json", *args, timeout=300)
    if res.returncode != 0:
        fam.down()
        raise AssertionError(f"dolphin up failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    fam.status()
    return fam
