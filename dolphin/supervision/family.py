"""Bring the daemon family up and down, and drive its programs (shared by CLI, MHS and TUI)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dolphin.bus.settings import BusSettings
from dolphin.config.services import ServicesConfig
from dolphin.enums import ProcessState
from dolphin.paths import runtime_root
from dolphin.supervision.actions import last_log_lines
from dolphin.supervision.errors import (
    StartFailed,
    SupervisionTimeout,
    SupervisorNotRunning,
)
from dolphin.supervision.programs import Program, enabled_programs, resolve
from dolphin.supervision.render import FamilyPaths, market_urls, write_config
from dolphin.supervision.rpc import RUNNING_STATES, ProcessInfo, SupervisorClient
from dolphin.supervision.secrets import clear_program_secrets, prepare_secrets, private_home, scrubbed_environment

SUPERVISORD_READY_S = 20.0
BUS_MODES = ("auto", "embedded", "external")


def select_bus(mode: str) -> BusSettings | None:
    """Apply `dolphin up --bus MODE` to this process's environment, which supervisord, its
    programs and the TUI inherit (the rendered config also names the members explicitly).

    ``external`` needs ``DOLPHIN_HZ_MEMBERS`` (a real cluster; no embedded member runs);
    ``embedded`` ignores it (DOLPHIN's own member under supervisord); ``auto`` is external
    exactly when it is set. Returns the cluster's settings, or None for the embedded member.
    """
    from dolphin.errors import UsageError

    if mode not in BUS_MODES:
        raise UsageError(f"--bus must be one of {', '.join(BUS_MODES)}, got {mode!r}")
    members = os.environ.get("DOLPHIN_HZ_MEMBERS", "").strip()
    if mode == "embedded":
        os.environ.pop("DOLPHIN_HZ_MEMBERS", None)
        return None
    if mode == "external" and not members:
        raise UsageError("--bus external needs DOLPHIN_HZ_MEMBERS=host:port,… naming the cluster's members")
    if not members:
        return None
    return BusSettings.from_env()  # a malformed address is a BusConfigError (exit 11) here, not in every daemon


def family_paths(home: Path | None = None) -> FamilyPaths:
    return FamilyPaths.for_home(home or runtime_root())


def client_for(paths: FamilyPaths, timeout: float = 30.0) -> SupervisorClient:
    return SupervisorClient(paths.socket, timeout=timeout)


@dataclass(frozen=True, slots=True)
class UpResult:
    paths: FamilyPaths
    processes: list[ProcessInfo]
    already_running: bool


def _private_file(path: Path) -> None:
    """Create ``path`` (or tighten it) with mode 0600, keeping its content."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)


def _spawn_supervisord(paths: FamilyPaths) -> None:
    if paths.socket.exists():
        paths.socket.unlink()  # stale: nobody answered on it
    proc = subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(paths.conf)],
                          capture_output=True, text=True, env=scrubbed_environment(os.environ), timeout=60)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise StartFailed(f"supervisord did not start: {detail[-1] if detail else f'exit {proc.returncode}'}")


def _wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise SupervisionTimeout(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


def wait_autostart(sup: SupervisorClient, cfg: ServicesConfig, timeout_s: float,
                   on_progress: Callable[[list[ProcessInfo]], None] | None = None) -> list[ProcessInfo]:
    """Until every autostart program is RUNNING; a FATAL one fails at once with its last log lines."""
    wanted = {p.fullname for p in enabled_programs(cfg) if p.starts_with_family(cfg)}
    deadline = time.monotonic() + timeout_s
    while True:
        infos = sup.all_processes()
        if on_progress is not None:
            on_progress(infos)
        by_name = {i.fullname: i for i in infos}
        for name in sorted(wanted):
            info = by_name.get(name)
            if info is not None and info.state is ProcessState.FATAL:
                raise StartFailed(f"{name} could not start (FATAL: {info.spawnerr or 'exited too quickly'}); "
                                  f"last log lines:\n{last_log_lines(sup, name)}")
        if all(by_name.get(n) is not None and by_name[n].state in RUNNING_STATES for n in wanted):
            return infos
        if time.monotonic() >= deadline:
            pending = ", ".join(f"{n} {by_name[n].state if n in by_name else 'missing'}" for n in sorted(wanted)
                                if n not in by_name or by_name[n].state not in RUNNING_STATES)
            raise SupervisionTimeout(f"not RUNNING after {timeout_s:.0f} s: {pending}")
        time.sleep(0.25)


def mainnet_data(cfg: ServicesConfig) -> bool:
    """True when the family's market data comes from Binance mainnet (`market.binance_network`)."""
    from dolphin.market.urls import is_mainnet_url

    return cfg.market.source == "binance" and any(is_mainnet_url(url) for url in market_urls(cfg))


def check_orders_allowed(cfg: ServicesConfig) -> None:
    """Mainnet market data is fine; orders there need the explicit mainnet flag, which a family never has.

    A trader that places orders (``trader.venue: sim``) on a mainnet market is refused
    here, before anything starts, instead of failing in its log. A family without its
    trader (``--only`` on a data host) places no orders, whatever the venue says.
    """
    from dolphin.market.errors import MainnetNotAllowedError
    from dolphin.market.urls import check_signing_url

    if cfg.trader_venue != "sim" or all(p.name != "trader" for p in enabled_programs(cfg)):
        return
    rest, _ = market_urls(cfg)
    try:
        check_signing_url(rest, allow_mainnet=False)
    except MainnetNotAllowedError as exc:
        raise MainnetNotAllowedError(f"trader.venue: sim would place orders on {rest}: {exc}. Trade on paper "
                                     "(trader.venue: paper) with mainnet data, or use the testnet") from None


def up(cfg: ServicesConfig, paths: FamilyPaths | None = None,
       on_progress: Callable[[list[ProcessInfo]], None] | None = None) -> UpResult:
    """Start supervisord with the rendered config and wait for the autostart programs.

    If the family already runs, report it instead of starting a second one. The home
    becomes 0700, the secrets are written (0600) and supervisord starts with a scrubbed
    environment (`dolphin.supervision.secrets`).
    """
    paths = paths or family_paths()
    check_orders_allowed(cfg)
    sup = client_for(paths)
    if sup.ping():
        return UpResult(paths=paths, processes=sup.all_processes(), already_running=True)
    private_home(paths.home)
    write_config(cfg, paths, prepare_secrets(cfg, paths.home, os.environ))
    _private_file(paths.log_of("supervisord"))  # supervisord opens its own log before it applies its umask
    _spawn_supervisord(paths)
    _wait_until(sup.ping, SUPERVISORD_READY_S, f"supervisord on {paths.socket}")
    try:
        infos = wait_autostart(sup, cfg, cfg.supervisor.up_timeout_s, on_progress)
    except (StartFailed, SupervisionTimeout) as exc:
        raise type(exc)(f"{exc}\nThe rest of the family keeps running: inspect with `dolphin svc status` and "
                        "`dolphin svc logs NAME`, then `dolphin svc start NAME` or `dolphin down`.") from None
    return UpResult(paths=paths, processes=infos, already_running=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class DownResult:
    was_running: bool
    stopped_pids: list[int]


def down(paths: FamilyPaths | None = None, timeout_s: float = 60.0) -> DownResult:
    """Stop every program and supervisord itself; wait until none of their pids is alive."""
    paths = paths or family_paths()
    sup = client_for(paths)
    if not sup.ping():
        return DownResult(was_running=False, stopped_pids=[])
    pids = [p.pid for p in sup.all_processes() if p.pid > 0]
    pids.append(sup.pid())
    sup.shutdown()
    _wait_until(lambda: not any(_alive(pid) for pid in pids), timeout_s,
                "the family's processes to exit (" + ", ".join(str(p) for p in pids) + ")")
    if paths.socket.exists():
        paths.socket.unlink()
    clear_program_secrets(paths.home)
    return DownResult(was_running=True, stopped_pids=pids)


# ------------------------------------------------------------------------ one program at a time
def resolve_many(names: list[str], cfg: ServicesConfig) -> list[Program]:
    return [resolve(n, cfg) for n in names]


def require_running(paths: FamilyPaths) -> SupervisorClient:
    sup = client_for(paths)
    if not sup.ping():
        raise SupervisorNotRunning(f"the family is not running (no supervisord on {paths.socket}); "
                                   "start it with `dolphin up`")
    return sup
