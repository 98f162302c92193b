"""Who gets which secret, how secret files are read, and the mainnet notice of `dolphin up` (issue 12 §1, §5).

The family-level proof (reading /proc/<pid>/environ of every program) is in
tests/e2e/test_family_security.py; these pin the rules and the refusals cheaply.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dolphin.bus import BusConfigError, BusSettings
from dolphin.bus.credentials import family_credentials_path, read_credentials
from dolphin.config.services import ServicesConfig
from dolphin.market.errors import MainnetNotAllowedError
from dolphin.paths import PROJECT_ROOT
from dolphin.secret_file import SecretFileError, read_secret_file, write_secret_file
from dolphin.supervision.family import check_orders_allowed, mainnet_data
from dolphin.supervision.launch import launch_command
from dolphin.supervision.render import FamilyPaths, render
from dolphin.supervision.secrets import prepare_secrets, program_secrets, scrubbed_environment

pytestmark = [pytest.mark.degradation]

KEYS = {"DOLPHIN_BINANCE_API_KEY": "bk", "DOLPHIN_BINANCE_API_SECRET": "bs",
        "DOLPHIN_SIM_API_KEY": "sk", "DOLPHIN_SIM_API_SECRET": "ss"}


def _cfg(source: str = "sim", venue: str = "paper", network: str = "testnet") -> ServicesConfig:
    cfg = ServicesConfig()
    return dataclasses.replace(cfg, market=dataclasses.replace(cfg.market, source=source, binance_network=network),
                               trader=dataclasses.replace(cfg.trader, venue=venue))


def test_supervisord_inherits_no_secret() -> None:
    env = {"PATH": "/bin", "LANG": "C.UTF-8", "DOLPHIN_HOME": "/h", "DOLPHIN_TRADER_VENUE": "sim",
           "DOLPHIN_HZ_CREDENTIALS_FILE": "/h/secrets/bus.json", "PYTHONHASHSEED": "0", **KEYS,
           "DOLPHIN_HZ_USERNAME": "u", "DOLPHIN_HZ_PASSWORD": "p", "DOLPHIN_SOME_TOKEN": "t",
           "AWS_SECRET_ACCESS_KEY": "a", "GITHUB_TOKEN": "g", "SSH_AUTH_SOCK": "/tmp/agent", "LS_COLORS": "x",
           "https_proxy": "http://proxy:3128"}
    assert scrubbed_environment(env) == {
        "PATH": "/bin", "LANG": "C.UTF-8", "DOLPHIN_HOME": "/h", "DOLPHIN_TRADER_VENUE": "sim",
        "DOLPHIN_HZ_CREDENTIALS_FILE": "/h/secrets/bus.json", "PYTHONHASHSEED": "0", "https_proxy": "http://proxy:3128"}


@pytest.mark.parametrize(("source", "venue", "expected"), [
    ("sim", "paper", {"sim": {"DOLPHIN_SIM_API_KEY": "sk", "DOLPHIN_SIM_API_SECRET": "ss"}}),
    ("sim", "sim", {"sim": {"DOLPHIN_SIM_API_KEY": "sk", "DOLPHIN_SIM_API_SECRET": "ss"},
                    "trader": {"DOLPHIN_BINANCE_API_KEY": "sk", "DOLPHIN_BINANCE_API_SECRET": "ss"}}),
    ("binance", "paper", {}),
    ("binance", "sim", {"trader": {"DOLPHIN_BINANCE_API_KEY": "bk", "DOLPHIN_BINANCE_API_SECRET": "bs"}}),
])
def test_keys_go_to_the_programs_that_sign_or_verify(source: str, venue: str, expected: dict) -> None:
    assert program_secrets(_cfg(source, venue), KEYS) == expected


def test_without_simulator_keys_nobody_gets_the_binance_keys_in_a_simulated_family() -> None:
    binance_only = {k: v for k, v in KEYS.items() if "BINANCE" in k}
    assert program_secrets(_cfg("sim", "sim"), binance_only) == {}       # both sides use the default sim pair


def test_prepare_writes_private_files_and_the_config_names_paths_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    secrets = prepare_secrets(_cfg("sim", "sim"), home, KEYS)
    creds = read_credentials(family_credentials_path(home))
    assert prepare_secrets(_cfg("sim", "sim"), home, KEYS).bus_file == secrets.bus_file   # generated once, kept
    assert read_credentials(family_credentials_path(home)) == creds
    assert set(secrets.program_files) == {"sim", "trader"}
    for path in (secrets.bus_file, *secrets.program_files.values()):
        assert path is not None and path.stat().st_mode & 0o777 == 0o600
    assert (home / "secrets").stat().st_mode & 0o777 == 0o700
    conf = render(_cfg("sim", "sim"), FamilyPaths.for_home(home), secrets)
    for value in (*KEYS.values(), creds.password, creds.username):
        assert f'"{value}"' not in conf and f"={value}" not in conf
    assert str(secrets.program_files["trader"]) in conf and "--require-credentials" in conf
    # a later family that does not sign gets no key file at all
    again = prepare_secrets(_cfg("sim", "paper"), home, {})
    assert again.program_files == {} and not (home / "secrets" / "trader.json").exists()


def test_secret_files_others_can_read_are_refused(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "s" / "x.json", {"A": "1"})
    assert read_secret_file(path) == {"A": "1"}
    path.chmod(0o640)
    with pytest.raises(SecretFileError, match="readable by others \\(mode 0640\\)"):
        read_secret_file(path)
    path.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(path)
    with pytest.raises(SecretFileError, match="cannot open"):
        read_secret_file(link)
    path.write_text("[1, 2]")
    with pytest.raises(SecretFileError, match="JSON object of strings"):
        read_secret_file(path)
    with pytest.raises(SecretFileError, match="does not exist"):
        read_secret_file(tmp_path / "nope.json")


def test_bus_settings_find_the_family_credentials(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prepare_secrets(_cfg(), home, {})
    creds = read_credentials(family_credentials_path(home))
    found = BusSettings.from_env({"DOLPHIN_HOME": str(home)})
    assert (found.username, found.password) == (creds.username, creds.password)
    assert creds.password not in repr(found) and creds.password not in found.describe()
    named = BusSettings.from_env({"DOLPHIN_HZ_CREDENTIALS_FILE": str(family_credentials_path(home)),
                                  "DOLPHIN_HZ_MEMBERS": "10.0.0.1:5701"})
    assert named.username == creds.username
    env_wins = BusSettings.from_env({"DOLPHIN_HOME": str(home), "DOLPHIN_HZ_USERNAME": "u", "DOLPHIN_HZ_PASSWORD": "p"})
    assert (env_wins.username, env_wins.password) == ("u", "p")
    # a real cluster never gets the embedded member's pair by accident
    assert BusSettings.from_env({"DOLPHIN_HOME": str(home), "DOLPHIN_HZ_MEMBERS": "10.0.0.1:5701"}).username is None
    family_credentials_path(home).chmod(0o644)
    with pytest.raises(BusConfigError, match="readable by others"):
        BusSettings.from_env({"DOLPHIN_HOME": str(home)})


def _run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT,
                          env={**os.environ, **env})


def test_the_launcher_adds_the_secrets_to_one_program_only(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "p.json", {"DOLPHIN_BINANCE_API_KEY": "k1"})
    probe = [sys.executable, "-c", "import os; print(os.environ.get('DOLPHIN_BINANCE_API_KEY'), os.getpid())"]
    res = _run(*launch_command(path, probe), env={})
    assert res.returncode == 0 and res.stdout.split()[0] == "k1", res.stderr
    path.chmod(0o644)
    res = _run(*launch_command(path, probe), env={})
    assert res.returncode == 3 and "readable by others" in res.stderr and "k1" not in res.stderr + res.stdout


def test_the_member_reads_its_credentials_file(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "bus.json", {"username": "u"})
    res = _run(sys.executable, "-m", "dolphin.bus.member", "--port", "0", "--require-credentials",
               env={"DOLPHIN_HZ_CREDENTIALS_FILE": str(path), "DOLPHIN_HZ_USERNAME": "", "DOLPHIN_HZ_PASSWORD": ""})
    assert res.returncode == 11 and "needs a non-empty" in res.stderr


def test_orders_on_mainnet_are_refused_before_the_family_starts() -> None:
    assert mainnet_data(_cfg("binance", "paper", "mainnet")) and not mainnet_data(_cfg("binance", "paper"))
    assert not mainnet_data(_cfg("sim", "paper", "mainnet"))          # the network only matters for Binance
    check_orders_allowed(_cfg("binance", "paper", "mainnet"))        # mainnet data, paper orders: fine
    check_orders_allowed(_cfg("binance", "sim", "testnet"))
    check_orders_allowed(_cfg("sim", "sim"))
    with pytest.raises(MainnetNotAllowedError, match="trader.venue: sim would place orders"):
        check_orders_allowed(_cfg("binance", "sim", "mainnet"))
    data_host = _cfg("binance", "sim", "mainnet")  # a family without its trader (`dolphin up --only`) orders nothing
    check_orders_allowed(dataclasses.replace(data_host, supervisor=dataclasses.replace(data_host.supervisor,
                                                                                       programs="scanner,mhs")))


@pytest.mark.cli
def test_up_says_mainnet_data_prominently(tmp_path: Path) -> None:
    (tmp_path / "services.yml").write_text("market:\n  source: binance\n  binance_network: mainnet\n"
                                           "trader:\n  venue: sim\n")
    for name in ("blue.yml", "green.yml"):
        (tmp_path / name).write_text((PROJECT_ROOT / "configs" / name).read_text())
    env = {"DOLPHIN_CONFIG_DIR": str(tmp_path), "DOLPHIN_HOME": str(tmp_path / "home"), "DOLPHIN_MARKET": "",
           "DOLPHIN_TRADER_VENUE": "", "COLUMNS": "200"}
    res = _run(sys.executable, "-m", "commands", "up", "--detach", env=env)
    assert res.returncode == 22, res.stdout + res.stderr
    assert "MAINNET MARKET DATA" in res.stdout and "https://fapi.binance.com" in res.stdout
    assert "trader.venue: sim would place orders" in res.stderr
    assert not (tmp_path / "home" / "supervisor").exists()                # nothing was started
