"""The family keeps its secrets (issue 12 §1 bus access, §5 secrets and file modes).

One real family (supervisord, member, simulator, scanner, MHS, an ordering trader) is
started from an environment that carries every kind of secret: Binance keys, simulator
keys, a stray cloud key. Then, reading the kernel's own view of each process:

* only the programs that sign or verify requests hold keys, and only the keys they
  need (the simulator is not Binance: the real Binance keys reach nobody);
* supervisord and its config hold none;
* the bus refuses a client without or with wrong credentials, clearly; the family's
  programs and operator commands on the same home connect;
* after the family has run, the home is 0700 and every file in it 0600, every folder 0700.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from .support import Family, start_family, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.degradation]

SIM_KEY, SIM_SECRET = "sim-key-4b1d7e", "sim-secret-9c2f0a"
REAL_KEY, REAL_SECRET = "real-binance-key-77aa21", "real-binance-secret-5e6f33"
STRAY = "stray-cloud-secret-0d9e8c"
FAMILY_PROGRAMS = ("hz", "sim", "scanner", "obf", "mhs", "trader")


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory):
    fam = start_family(tmp_path_factory.mktemp("secure") / "home", speed=30.0, extra_env={
        "DOLPHIN_MHS_RECOVERY": "0",
        "DOLPHIN_TRADER_VENUE": "sim",                  # the trader places (simulated) orders: it signs
        "DOLPHIN_SIM_API_KEY": SIM_KEY, "DOLPHIN_SIM_API_SECRET": SIM_SECRET,
        "DOLPHIN_BINANCE_API_KEY": REAL_KEY, "DOLPHIN_BINANCE_API_SECRET": REAL_SECRET,
        "AWS_SECRET_ACCESS_KEY": STRAY,
    })
    try:
        yield fam
    finally:
        fam.down()


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _bus_password(fam: Family) -> str:
    return json.loads((fam.home / "secrets" / "bus.json").read_text())["password"]


def test_keys_reach_only_the_programs_that_sign_or_verify(family: Family) -> None:
    procs = family.status()
    pids = {name: procs[name]["pid"] for name in FAMILY_PROGRAMS}
    assert all(pids.values()), procs
    sup_pid = int((family.home / "supervisor" / "supervisord.pid").read_text())
    password = _bus_password(family)
    for name, pid in [*pids.items(), ("supervisord", sup_pid)]:
        env, cmd = _environ(pid), _cmdline(pid)
        seen = "\n".join(f"{k}={v}" for k, v in env.items()) + "\n" + cmd
        for secret in (REAL_KEY, REAL_SECRET, STRAY, password):
            assert secret not in seen, f"{name} (pid {pid}) holds a secret it does not need"
        if name == "sim":
            assert (env.get("DOLPHIN_SIM_API_KEY"), env.get("DOLPHIN_SIM_API_SECRET")) == (SIM_KEY, SIM_SECRET)
        elif name == "trader":
            assert (env.get("DOLPHIN_BINANCE_API_KEY"), env.get("DOLPHIN_BINANCE_API_SECRET")) == (SIM_KEY, SIM_SECRET)
            assert "dolphin.services.trader" in cmd             # the launcher exec'd it: same pid
        else:
            assert SIM_KEY not in seen and SIM_SECRET not in seen, f"{name} holds the simulator's keys"
        if name != "supervisord":
            assert env["DOLPHIN_HZ_CREDENTIALS_FILE"] == str(family.home / "secrets" / "bus.json")
    conf = (family.home / "supervisor" / "dolphin-supervisord.conf").read_text()
    for secret in (REAL_KEY, REAL_SECRET, SIM_KEY, SIM_SECRET, STRAY, password):
        assert secret not in conf
    assert "umask=077" in conf


def test_the_simulator_verifies_the_key_the_trader_signs_with(family: Family) -> None:
    from dolphin.market.errors import ApiKeyError
    from dolphin.market.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET
    from dolphin.market.sync import SyncBinanceRest

    url = f"http://127.0.0.1:{family.env['DOLPHIN_SIM_PORT']}"
    with SyncBinanceRest(url, SIM_KEY, SIM_SECRET) as rest:
        wait_for(rest.server_time, 120, "the simulator to listen")          # RUNNING comes before the bind
        assert rest.account().total_wallet_balance > 0
    with SyncBinanceRest(url, DEFAULT_API_KEY, DEFAULT_API_SECRET) as rest, pytest.raises(ApiKeyError):
        rest.account()


def test_the_bus_refuses_clients_without_the_family_credentials(family: Family, tmp_path: Path) -> None:
    from dolphin.bus import Bus, BusSettings, connect, schema
    from dolphin.bus.errors import BusCredentialsError

    address = f"127.0.0.1:{family.env['DOLPHIN_HZ_PORT']}"
    bare = BusSettings(members=(address,), connect_timeout_s=1.0)
    with pytest.raises(BusCredentialsError, match="refused this client.*no credentials were sent") as info:
        connect(bare)
    assert info.value.exit_code == 13
    wrong = BusSettings(members=(address,), connect_timeout_s=1.0, username="dolphin", password="guess",
                        credentials_source="a test")
    with pytest.raises(BusCredentialsError, match="credentials from a test were not accepted"):
        connect(wrong)
    # the family's programs are connected: the scanner's scans reach a client with the family's pair
    client = family.bus_client()
    try:
        wait_for(lambda: Bus(client).get(schema.FEATURES, schema.LATEST_EIGEN_SCAN), 90, "a scan from the scanner")
    finally:
        client.shutdown()
    # operator commands on the same home find the pair; on another home they are refused in one line
    ok = family.cli("hz", "status", "--json")
    assert ok.returncode == 0, ok.stderr
    elsewhere = family.cli("hz", "status", "--timeout", "1", env_update={"DOLPHIN_HOME": str(tmp_path)})
    assert elsewhere.returncode == 13, elsewhere.stderr
    assert elsewhere.stderr.strip().startswith("error: the bus refused this client") and "Traceback" not in elsewhere.stderr
    log = (family.home / "logs" / "hz.log").read_text()
    assert "wrong username or password" in log and _bus_password(family) not in log


def test_svc_status_filters_by_name(family: Family) -> None:
    res = family.cli("svc", "status", "trader", "--json")
    assert res.returncode == 0, res.stderr
    assert [p["name"] for p in json.loads(res.stdout)["processes"]] == ["trader"]


def test_every_file_the_family_wrote_is_private(family: Family) -> None:
    home = family.home
    wait_for(lambda: len(family.archive_numbers()) > 3, 120, "scans in the archive")
    wait_for(lambda: any((home / "hz").glob("bus-snapshot.*")), 60, "a bus snapshot")
    wait_for(lambda: any((home / "journal").glob("*.jsonl")), 60, "the trader's journal")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    open_to_others = []
    for path in [home, *home.rglob("*")]:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue  # a temp file renamed into place meanwhile (atomic writes)
        if stat.S_ISLNK(mode) or stat.S_ISSOCK(mode):
            continue
        expected = 0o700 if stat.S_ISDIR(mode) else 0o600
        if stat.S_IMODE(mode) & ~expected & 0o777:
            open_to_others.append(f"{stat.S_IMODE(mode):04o} {path.relative_to(home)}")
    assert not open_to_others, "\n".join(open_to_others)
    for must in ("logs/supervisord.log", "logs/scanner.log", "secrets/bus.json", "secrets/trader.json",
                 "secrets/sim.json", "supervisor/dolphin-supervisord.conf"):
        assert (home / must).is_file(), must
    assert os.stat(home / "secrets").st_mode & 0o077 == 0
