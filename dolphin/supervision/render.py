"""Render the supervisord configuration for a family into its runtime root.

Secrets are never written here, only paths to them (`dolphin.supervision.secrets`):
every program gets ``DOLPHIN_HZ_CREDENTIALS_FILE``; a program with a key file is
started through `dolphin.supervision.launch`. Everything else a program needs (runtime
root, config dir, bus port, market URLs) is passed as explicit environment in the file.
supervisord runs with ``umask=077``, so every file the family writes is 0600 and every
folder 0700.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from string import Template

from dolphin.config.services import ServicesConfig
from dolphin.paths import PROJECT_ROOT, config_dir
from dolphin.store.atomic import atomic_write_text
from dolphin.supervision.launch import launch_command
from dolphin.supervision.programs import DATA_GROUP, TRADING_GROUP, Program, enabled_programs
from dolphin.supervision.secrets import FamilySecrets

TEMPLATE_DIR = PROJECT_ROOT / "supervisor"
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 108 bytes


@dataclass(frozen=True, slots=True)
class FamilyPaths:
    """Where a family's supervisord keeps its files (all under the runtime root)."""

    home: Path
    conf: Path
    socket: Path
    pidfile: Path
    logdir: Path

    @classmethod
    def for_home(cls, home: Path) -> FamilyPaths:
        home = home.resolve()
        sup = home / "supervisor"
        socket = sup / "supervisor.sock"
        if len(str(socket)) > MAX_SOCKET_PATH:
            digest = hashlib.sha1(str(home).encode()).hexdigest()[:12]
            socket = Path("/tmp") / f"dolphin-{digest}.sock"
        return cls(home=home, conf=sup / "dolphin-supervisord.conf", socket=socket, pidfile=sup / "supervisord.pid",
                   logdir=home / "logs")

    def log_of(self, program: str) -> Path:
        return self.logdir / f"{program}.log"


def market_urls(cfg: ServicesConfig) -> tuple[str, str]:
    """(REST base, WS base) the services use: the simulator, or Binance testnet/mainnet."""
    if cfg.market.source == "sim":
        return cfg.sim_rest_url, cfg.sim_ws_url
    from dolphin.market.urls import endpoints

    chosen = endpoints(cfg.market.binance_network, allow_mainnet=cfg.market.binance_network == "mainnet")
    return chosen.rest_url, chosen.ws_url


def _escape(value: str) -> str:
    """supervisord expands %(name)s in values: a literal % must be doubled."""
    return value.replace("%", "%%")


def program_environment(cfg: ServicesConfig, paths: FamilyPaths) -> dict[str, str]:
    rest, ws = market_urls(cfg)
    return {
        "DOLPHIN_HOME": str(paths.home),
        "DOLPHIN_CONFIG_DIR": str(config_dir().resolve()),
        "DOLPHIN_HZ_PORT": str(cfg.bus.port),
        "DOLPHIN_HZ_CLUSTER": cfg.bus.cluster_name,
        # empty = the family's own member; else the external cluster every program joins
        "DOLPHIN_HZ_MEMBERS": os.environ.get("DOLPHIN_HZ_MEMBERS", "").strip() if cfg.external_bus else "",
        "DOLPHIN_PROGRAMS": cfg.supervisor.programs,  # this host's share of a split family (empty: all)
        "DOLPHIN_MARKET": cfg.market.source,
        "DOLPHIN_MARKET_REST_URL": rest,
        "DOLPHIN_MARKET_WS_URL": ws,
        "DOLPHIN_SUPERVISOR_SOCKET": str(paths.socket),
        "PYTHONUNBUFFERED": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


def _env_line(env: dict[str, str]) -> str:
    return ",".join(f'{k}="{_escape(v).replace(chr(34), chr(92) + chr(34))}"' for k, v in env.items())


def _command(program: Program, cfg: ServicesConfig, paths: FamilyPaths, secrets: FamilySecrets) -> list[str]:
    command = program.command(cfg, paths.home)
    own = secrets.program_files.get(program.name)
    return launch_command(own, command) if own is not None else command


def render(cfg: ServicesConfig, paths: FamilyPaths, secrets: FamilySecrets) -> str:
    """The config text; ``secrets`` (from `prepare_secrets`) says where the family's secret files are."""
    main = Template((TEMPLATE_DIR / "dolphin-supervisord.conf.tmpl").read_text())
    block = Template((TEMPLATE_DIR / "program.tmpl").read_text())
    s = cfg.supervisor
    common = {"home": _escape(str(paths.home)), "logdir": _escape(str(paths.logdir)),
              "log_max_mb": f"{s.log_max_mb}MB", "log_backups": str(s.log_backups)}
    env = _env_line({**program_environment(cfg, paths), **secrets.environment()})
    programs: list[Program] = enabled_programs(cfg)
    blocks = [block.substitute(common, name=p.name, command=_escape(shlex.join(_command(p, cfg, paths, secrets))),
                               autostart="true" if p.starts_with_family(cfg) else "false", startsecs=s.startsecs,
                               startretries=s.startretries, stopwaitsecs=s.stopwaitsecs, priority=p.priority,
                               environment=env)
              for p in programs]
    groups = []
    for group in (DATA_GROUP, TRADING_GROUP):
        members = [p.name for p in programs if p.group == group]
        if members:
            groups.append(f"\n[group:{group}]\nprograms={','.join(members)}\n")
    return main.substitute(common, socket=_escape(str(paths.socket)), pidfile=_escape(str(paths.pidfile)),
                           programs="".join(blocks), groups="".join(groups))


def write_config(cfg: ServicesConfig, paths: FamilyPaths, secrets: FamilySecrets) -> Path:
    paths.conf.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths.logdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return atomic_write_text(paths.conf, render(cfg, paths, secrets), mode=0o600)
