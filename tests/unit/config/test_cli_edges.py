"""CLI and config edges (issue 12 §6): each one a readable line with the right exit code.

Each case used to end in "internal error: OSError/UnicodeDecodeError" (exit 1), or in a
silently accepted bad file. The command runs in a subprocess: the exit code and stderr
are what an operator sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dolphin.config.services import load_services_config
from dolphin.errors import ConfigError
from dolphin.paths import PROJECT_ROOT

pytestmark = [pytest.mark.cli, pytest.mark.degradation]

LONG = "a" * 300


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commands", *args], capture_output=True, text=True, timeout=120,
                          cwd=PROJECT_ROOT, env={**os.environ, **(env or {})})


def _one_clean_line(res: subprocess.CompletedProcess[str]) -> str:
    err = res.stderr.strip()
    assert err.startswith("error:") and "internal error" not in err and "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def _config_dir(tmp_path: Path, files: dict[str, bytes]) -> dict[str, str]:
    for name, body in files.items():
        (tmp_path / name).write_bytes(body)
    return {"DOLPHIN_CONFIG_DIR": str(tmp_path), "DOLPHIN_HOME": str(tmp_path / "home")}


@pytest.mark.parametrize("args", [
    ("config", "show", LONG),
    ("config", "show", LONG + ".yml"),
    ("config", "check", f"/tmp/{LONG}/blue.yml"),
])
def test_over_long_config_names_are_a_config_error(args: tuple[str, ...]) -> None:
    res = _cli(*args)
    assert res.returncode == 3, res.stderr
    assert "File name too long" in _one_clean_line(res)


def test_over_long_backtest_inputs_are_a_data_error() -> None:
    res = _cli("backtest", "--scans", LONG, "--no-write")
    assert res.returncode == 6, res.stderr
    assert "File name too long" in _one_clean_line(res)
    res = _cli("backtest", "--scans", ".", "--journal", LONG, "--no-write")
    assert res.returncode == 6 and "trader journal" in _one_clean_line(res)


def test_a_binary_services_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    env = _config_dir(tmp_path, {"services.yml": b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary"})
    res = _cli("svc", "status", env=env)
    assert res.returncode == 3, res.stderr
    line = _one_clean_line(res)
    assert "services.yml" in line and "not UTF-8" in line


def test_a_bad_file_value_is_reported_even_when_the_environment_overrides_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "services.yml"
    path.write_text('bus:\n  port: "not-a-port"\n')
    monkeypatch.setenv("DOLPHIN_HZ_PORT", "5799")
    with pytest.raises(ConfigError, match="bus.port: must be an integer, got 'not-a-port'"):
        load_services_config(path)
    path.write_text("bus:\n  port: 5701\n")
    monkeypatch.setenv("DOLPHIN_HZ_PORT", "99999")
    with pytest.raises(ConfigError, match=r"above the maximum 65535 \(from DOLPHIN_HZ_PORT\)"):
        load_services_config(path)
    monkeypatch.setenv("DOLPHIN_HZ_PORT", "5799")
    assert load_services_config(path).bus.port == 5799


@pytest.mark.parametrize("body", [b"", b"# only a comment\n", b"{}\n"])
def test_an_empty_strategy_file_is_an_error_naming_it(tmp_path: Path, body: bytes) -> None:
    env = _config_dir(tmp_path, {"blue.yml": body})
    res = _cli("config", "show", "blue", env=env)
    assert res.returncode == 3, res.stderr
    line = _one_clean_line(res)
    assert "blue.yml" in line and "empty" in line


def test_svc_status_takes_service_names(tmp_path: Path) -> None:
    """README: `dolphin svc status NAME…` — names are checked before supervisord is asked."""
    env = {"DOLPHIN_HOME": str(tmp_path)}
    res = _cli("svc", "status", "trader", env=env)
    assert res.returncode == 30 and "not running" in res.stderr, res.stderr  # accepted; no family here
    res = _cli("svc", "status", "trader", "nosuch", env=env)
    assert res.returncode == 31 and "unknown service 'nosuch'" in _one_clean_line(res)


def test_the_one_handler_maps_os_and_decode_errors() -> None:
    from commands.app import environment_error_line

    line = environment_error_line(OSError(36, "File name too long", "/x/" + LONG))
    assert line.startswith("/x/aaa") and line.endswith("File name too long") and "…" in line and len(line) < 160
    decode = environment_error_line(_decode_error())
    assert "not utf-8 text" in decode and "0xff" in decode


def _decode_error() -> UnicodeDecodeError:
    try:
        b"ok\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("unreachable")
