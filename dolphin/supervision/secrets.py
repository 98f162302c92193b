"""Which secret reaches which program of the family — and nothing else reaches any.

`dolphin up` used to start supervisord with its own whole environment, so an API key
exported in the operator's shell sat in ``/proc/<pid>/environ`` of every daemon (hz,
sim, mhs, …). Now:

* supervisord starts with `scrubbed_environment`: an allow-list of ordinary variables
  (PATH, locale, ``DOLPHIN_*`` settings, Python's own) minus anything secret;
* the bus credentials live in a 0600 file (`dolphin.bus.credentials`); every program
  is told its *path* (``DOLPHIN_HZ_CREDENTIALS_FILE``) and the ``hz`` member requires them;
* API keys go to the programs that sign or verify requests only, each through its own
  0600 file under ``<home>/secrets/`` that `dolphin.supervision.launch` reads and turns
  into that one program's environment. The supervisord config holds paths, never a secret.

Who gets keys (`program_secrets`):

* market ``binance``: the trader, when its venue places orders (``venue: sim``), gets
  ``DOLPHIN_BINANCE_API_KEY/SECRET``; nobody else.
* market ``sim``: the operator's Binance keys go nowhere (the simulator is not Binance).
  If ``DOLPHIN_SIM_API_KEY/SECRET`` are set, the simulator gets them (it verifies
  signatures) and the ordering trader signs with them; otherwise both sides use the
  simulator's documented default pair and no file is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dolphin.bus.credentials import (
    CREDENTIALS_FILE_ENV,
    PASSWORD_ENV,
    USERNAME_ENV,
    BusCredentials,
    ensure_family_credentials,
    external_credentials_path,
    secrets_dir,
    write_credentials,
)
from dolphin.config.services import ServicesConfig
from dolphin.market.urls import API_KEY_ENV, API_SECRET_ENV
from dolphin.secret_file import ensure_private_dir, remove_secret_file, write_secret_file
from dolphin.supervision.programs import PROGRAMS

SIM_KEY_ENV = "DOLPHIN_SIM_API_KEY"       # spelled as in dolphin.market.sim.config (not imported: it loads the server)
SIM_SECRET_ENV = "DOLPHIN_SIM_API_SECRET"

SECRET_VARIABLES = frozenset({API_KEY_ENV, API_SECRET_ENV, SIM_KEY_ENV, SIM_SECRET_ENV, USERNAME_ENV, PASSWORD_ENV})
_KEEP_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "VIRTUAL_ENV", "CI",
    "LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR",           # a Python or a CA bundle outside the defaults
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",         # market data from behind a proxy
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
})
_KEEP_PREFIXES = ("LC_", "DOLPHIN_", "PYTHON", "OPENBLAS_", "OMP_", "MKL_", "NUMBA_")
_SECRET_WORDS = re.compile(r"KEY|SECRET|PASSW|TOKEN|CREDENTIAL(?!S_FILE)", re.IGNORECASE)


def scrubbed_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What supervisord (and so every program) inherits from `dolphin up`: ordinary settings, no secrets."""
    return {name: value for name, value in environ.items()
            if (name in _KEEP_NAMES or name.startswith(_KEEP_PREFIXES))
            and name not in SECRET_VARIABLES and not _SECRET_WORDS.search(name)}


def _pair(environ: Mapping[str, str], key_var: str, secret_var: str) -> tuple[str, str] | None:
    key, secret = environ.get(key_var, ""), environ.get(secret_var, "")
    return (key, secret) if key and secret else None


def program_secrets(cfg: ServicesConfig, environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Program name → the secret variables it alone receives (see the module docstring)."""
    trader_signs = cfg.trader_venue == "sim"
    out: dict[str, dict[str, str]] = {}
    if cfg.market.source == "sim":
        pair = _pair(environ, SIM_KEY_ENV, SIM_SECRET_ENV)
        if pair is not None:
            out["sim"] = {SIM_KEY_ENV: pair[0], SIM_SECRET_ENV: pair[1]}
            if trader_signs:
                out["trader"] = {API_KEY_ENV: pair[0], API_SECRET_ENV: pair[1]}
        return out
    pair = _pair(environ, API_KEY_ENV, API_SECRET_ENV)
    if pair is not None and trader_signs:
        out["trader"] = {API_KEY_ENV: pair[0], API_SECRET_ENV: pair[1]}
    return out


def program_secret_path(home: Path, program: str) -> Path:
    return secrets_dir(home) / f"{program}.json"


@dataclass(frozen=True, slots=True)
class FamilySecrets:
    """Paths (never values) the supervisord config refers to."""

    bus_file: Path | None = None                                   # every program's bus credentials
    program_files: dict[str, Path] = field(default_factory=dict)   # program → its 0600 variables file

    def environment(self) -> dict[str, str]:
        """Variables for every program: where the bus credentials are."""
        return {CREDENTIALS_FILE_ENV: str(self.bus_file)} if self.bus_file is not None else {}


def prepare_secrets(cfg: ServicesConfig, home: Path, environ: Mapping[str, str]) -> FamilySecrets:
    """Write this family's secret files (0600 in ``<home>/secrets``, 0700) and say where they are.

    The embedded member's credentials are generated once and kept; a real cluster's
    come from ``DOLPHIN_HZ_USERNAME/PASSWORD`` of this environment (or the file
    ``DOLPHIN_HZ_CREDENTIALS_FILE`` already names, which programs then inherit).
    Program key files are rewritten at every `dolphin up` and removed when not needed.
    """
    ensure_private_dir(secrets_dir(home))
    bus_file: Path | None
    if cfg.external_bus:
        bus_file = None
        pair = _pair(environ, USERNAME_ENV, PASSWORD_ENV)
        if pair is not None:
            bus_file = write_credentials(external_credentials_path(home), BusCredentials(*pair))
        else:
            remove_secret_file(external_credentials_path(home))
    else:
        bus_file = ensure_family_credentials(home)
    wanted = program_secrets(cfg, environ)
    files: dict[str, Path] = {}
    for program in PROGRAMS:
        path = program_secret_path(home, program.name)
        if program.name in wanted:
            files[program.name] = write_secret_file(path, wanted[program.name])
        else:
            remove_secret_file(path)
    return FamilySecrets(bus_file=bus_file, program_files=files)


def clear_program_secrets(home: Path) -> None:
    """Remove the programs' key files (at `dolphin down`); the bus credentials stay for the next `up`."""
    for program in PROGRAMS:
        remove_secret_file(program_secret_path(home, program.name))


def private_home(home: Path) -> Path:
    """The runtime home with mode 0700: it holds the journal, archive, logs and secrets."""
    return ensure_private_dir(home)
