"""`dolphin hz serve|status` as an operator runs them (real processes, real exit codes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import hazelcast
import pytest

from tests.integration.bus.support import PROJECT_ROOT, free_port, wait_until

DOLPHIN = [sys.executable, "-m", "commands"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOLPHIN_HZ_")}
    env.update(PYTHONPATH=str(PROJECT_ROOT), **extra)
    return env


def test_status_without_a_bus_is_one_line_and_exit_10() -> None:
    result = subprocess.run([*DOLPHIN, "hz", "status", "--timeout", "0.3"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, env=_env(DOLPHIN_HZ_PORT=str(free_port())), timeout=60)
    assert result.returncode == 10
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the bus" in lines[0] and "dolphin hz serve" in lines[0]


def test_serve_runs_until_sigterm_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([*DOLPHIN, "hz", "serve", "--port", str(port), "--data-dir", str(tmp_path / "hz"),
                             "--ready-file", str(ready)], cwd=PROJECT_ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(ready.exists, timeout=30)
        info = json.loads(ready.read_text())
        assert info["port"] == port and info["host"] == "127.0.0.1"
        client = hazelcast.HazelcastClient(cluster_members=[f"127.0.0.1:{port}"], cluster_name="dolphin",
                                           cluster_connect_timeout=10, reconnect_mode="OFF")
        client.get_map("DOLPHIN_SAFETY").blocking().put("latest", '{"posture": "APEX", "Rm": 1.0}')
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        client.shutdown()
        assert proc.returncode == 0
        assert "Traceback" not in err and "stopped" in err
        assert (tmp_path / "hz" / "bus-snapshot.msgpack").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_serve_on_a_busy_port_fails_with_exit_12() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*DOLPHIN, "hz", "serve", "--port", str(port)], cwd=PROJECT_ROOT, env=_env(),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 12
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_member_module_runs_as_a_plain_subprocess(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "dolphin.bus.member", "--port", "0", "--ready-file", str(ready)],
                            cwd=PROJECT_ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_until(ready.exists, timeout=30)
        port = json.loads(ready.read_text())["port"]
        assert port > 0  # port 0 picked a free port and advertises it
        client = hazelcast.HazelcastClient(cluster_members=[f"127.0.0.1:{port}"], cluster_name="dolphin",
                                           cluster_connect_timeout=10)
        assert client.get_map("m").blocking().put("k", "v") is None
        client.shutdown()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_require_credentials_needs_them_in_the_environment() -> None:
    result = subprocess.run([*DOLPHIN, "hz", "serve", "--port", "0", "--require-credentials"], cwd=PROJECT_ROOT,
                            env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 11
    assert "DOLPHIN_HZ_USERNAME" in result.stderr


def test_up_with_an_external_bus_needs_members_and_a_reachable_cluster(tmp_path: Path) -> None:
    """`dolphin up --bus external` refuses, in one line, before starting anything."""
    missing = subprocess.run([*DOLPHIN, "up", "--bus", "external", "--detach"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, env=_env(DOLPHIN_HOME=str(tmp_path)), timeout=60)
    assert missing.returncode == 2 and "DOLPHIN_HZ_MEMBERS" in missing.stderr and "Traceback" not in missing.stderr
    port = free_port()
    away = subprocess.run([*DOLPHIN, "up", "--detach"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
                          env=_env(DOLPHIN_HOME=str(tmp_path), DOLPHIN_HZ_MEMBERS=f"127.0.0.1:{port}",
                                   DOLPHIN_HZ_CONNECT_TIMEOUT="1"))
    assert away.returncode == 10 and f"127.0.0.1:{port}" in away.stderr and "Traceback" not in away.stderr
    assert not (tmp_path / "supervisor").exists()  # nothing was started


def test_bus_selection_for_the_family(monkeypatch: pytest.MonkeyPatch) -> None:
    from dolphin.bus.errors import BusConfigError
    from dolphin.errors import UsageError
    from dolphin.supervision.family import select_bus

    monkeypatch.setenv("DOLPHIN_HZ_MEMBERS", "10.0.0.1")
    with pytest.raises(BusConfigError, match="not host:port"):  # exit 11, before anything starts
        select_bus("auto")
    monkeypatch.setenv("DOLPHIN_HZ_MEMBERS", "10.0.0.1:5701, 10.0.0.2:5701")
    settings = select_bus("external")
    assert settings is not None and settings.members == ("10.0.0.1:5701", "10.0.0.2:5701") and not settings.embedded
    assert select_bus("embedded") is None and "DOLPHIN_HZ_MEMBERS" not in os.environ  # the family's own member
    assert select_bus("auto") is None
    with pytest.raises(UsageError, match="--bus must be one of"):
        select_bus("cloud")
