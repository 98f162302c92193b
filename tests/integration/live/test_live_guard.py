"""The mainnet guard: testnet by default; mainnet only with `--mainnet` and a confirmation, never from config.

Every refusal is one readable line and a non-zero exit, and it happens before any
connection is made (no venue runs here: a refusal that tried to connect would hang or
fail differently). The typed confirmation is checked on a real pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dolphin.config.services import load_services_config
from dolphin.execution.live.venue import resolve_venue
from dolphin.market.errors import MainnetNotAllowedError
from dolphin.market.urls import MAINNET, TESTNET
from dolphin.supervision.programs import PROGRAMS
from tests.integration.live.support import API_KEY, API_SECRET, PROJECT_ROOT, write_configs

pytestmark = [pytest.mark.degradation]

MAINNET_ENV = {"DOLPHIN_LIVE_REST_URL": "https://fapi.binance.com", "DOLPHIN_LIVE_WS_URL": "wss://fstream.binance.com"}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOLPHIN_LIVE_", "DOLPHIN_BINANCE_"))}
    env.update({"DOLPHIN_HOME": str(tmp_path / "home"), "DOLPHIN_CONFIG_DIR": str(write_configs(tmp_path / "cfg")),
                "DOLPHIN_HZ_PORT": "1", "DOLPHIN_HZ_MEMBERS": "", "DOLPHIN_BINANCE_API_KEY": API_KEY,
                "DOLPHIN_BINANCE_API_SECRET": API_SECRET, "NO_COLOR": "1", **extra})
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def _refused(res: subprocess.CompletedProcess[str], *words: str) -> str:
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "Traceback" not in out, out
    assert API_KEY not in out and API_SECRET not in out
    for word in words:
        assert word in out, out
    return out


def test_testnet_is_the_default_and_the_config_cannot_select_mainnet(tmp_path: Path) -> None:
    venue = resolve_venue(mainnet=False, environ={})
    assert venue.network == "testnet" and venue.rest_url == TESTNET.rest_url and not venue.is_mainnet
    assert resolve_venue(mainnet=True, environ={}).rest_url == MAINNET.rest_url
    with pytest.raises(MainnetNotAllowedError):              # a mainnet URL in the environment, without the flag
        resolve_venue(mainnet=False, environ=dict(MAINNET_ENV))
    live = next(p for p in PROGRAMS if p.name == "live")     # the supervised program never carries the flags
    assert not live.autostart
    assert not any("mainnet" in a for a in live.command(load_services_config(), tmp_path))
    cfg = write_configs(tmp_path / "cfg-mainnet")
    services = yaml.safe_load((cfg / "services.yml").read_text())
    services["live"]["mainnet"] = True
    (cfg / "services.yml").write_text(yaml.safe_dump(services))
    env = _env(tmp_path, DOLPHIN_CONFIG_DIR=str(cfg))
    _refused(_run(env, "-m", "commands", "preflight"), "live.mainnet: unknown key")


def test_mainnet_is_refused_without_the_flag_and_its_confirmation(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _refused(_run(env, "-m", "commands", "live", "--mainnet"), "typed confirmation")
    _refused(_run(env, "-m", "commands", "live", "--yes-mainnet"), "--yes-mainnet confirms --mainnet")
    res = _run(env, "-m", "dolphin.services.live", "--mainnet")
    assert _refused(res, "--yes-mainnet") and res.returncode == 2
    # a mainnet URL slipped into the rehearsal variables: refused before any connection, with or without preflight
    _refused(_run({**env, **MAINNET_ENV}, "-m", "commands", "preflight"), "mainnet")
    _refused(_run({**env, **MAINNET_ENV}, "-m", "dolphin.services.live", "--skip-preflight"), "mainnet")


def test_the_typed_confirmation_on_a_terminal(tmp_path: Path) -> None:
    """A wrong word on a real terminal is refused before anything is checked or sent."""
    env = _env(tmp_path)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "commands", "live", "--mainnet"], env=env, cwd=PROJECT_ROOT,
                            stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + 120
    try:
        while b"Type MAINNET" not in out:
            assert time.monotonic() < deadline and proc.poll() is None, out.decode(errors="replace")
            if select.select([primary], [], [], 1.0)[0]:
                out += os.read(primary, 4096)
        os.write(primary, b"yes\r")
        while proc.poll() is None or select.select([primary], [], [], 0.2)[0]:
            assert time.monotonic() < deadline, out.decode(errors="replace")
            if select.select([primary], [], [], 1.0)[0]:
                try:
                    out += os.read(primary, 4096)
                except OSError:                     # the terminal closed with the process
                    break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        os.close(primary)
    text = out.decode(errors="replace")
    assert proc.returncode != 0 and "mainnet not confirmed" in text and "Traceback" not in text, text
    assert "preflight" not in text.lower(), "checks ran before the confirmation"
