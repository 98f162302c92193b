"""The simulator as a process: ``python -m dolphin.market.sim`` and ``dolphin sim``.

SIGTERM stops it cleanly (exit 0, no traceback); with ``--state-dir`` the account
survives a restart; a second simulator on the same state directory refuses to start;
bad flags are one-line errors with the market exit codes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from dolphin.market.sync import SyncBinanceRest

from .conftest import KEY, SECRET, wait_sync

ROOT = Path(__file__).resolve().parents[3]


def start(tmp: Path, *extra: str, name: str = "ready.json") -> tuple[subprocess.Popen[str], dict]:
    ready = tmp / name
    ready.unlink(missing_ok=True)
    env = {**os.environ, "DOLPHIN_SIM_API_KEY": KEY, "DOLPHIN_SIM_API_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "dolphin.market.sim", "--port", "0", "--symbols", "10",
                             "--ready-file", str(ready), "--log-level", "WARNING", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_sync(lambda: ready.exists() or proc.poll() is not None, 120, "the simulator's ready file")
    assert proc.poll() is None, proc.communicate()
    return proc, json.loads(ready.read_text())


def stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_sigterm_is_a_clean_stop(tmp_path: Path) -> None:
    proc, info = start(tmp_path, "--speed", "30")
    try:
        with SyncBinanceRest(info["rest_url"]) as rest:
            first = rest.server_time()
            time.sleep(0.5)
            assert rest.server_time() - first >= 10_000  # 30x
            assert info["ws_url"].startswith("ws://127.0.0.1:")
    finally:
        code, out, err = stop(proc)
    assert code == 0 and "Traceback" not in err
    assert f"REST {info['rest_url']}" in out and f"WS {info['ws_url']}" in out


def test_state_dir_keeps_the_account_across_restarts_and_is_exclusive(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc, info = start(tmp_path, "--state-dir", str(state))
    try:
        with SyncBinanceRest(info["rest_url"], KEY, SECRET) as rest:
            order = rest.new_order("ETHUSDT", "BUY", "MARKET", 0.2, new_client_order_id="persist-1")
            rest.change_leverage("ETHUSDT", 4)
            wallet = rest.account().total_wallet_balance
        second = subprocess.run([sys.executable, "-m", "dolphin.market.sim", "--port", "0", "--state-dir", str(state)],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert second.returncode == 25 and "in use by another simulator" in second.stderr
    finally:
        code, _, err = stop(proc)
    assert code == 0 and "Traceback" not in err
    assert json.loads((state / "account.json").read_text())["used_client_ids"] == ["persist-1"]
    proc, info = start(tmp_path, "--state-dir", str(state), name="ready2.json")
    try:
        with SyncBinanceRest(info["rest_url"], KEY, SECRET) as rest:
            again = rest.query_order("ETHUSDT", orig_client_order_id="persist-1")
            assert again.order_id == order.order_id and again.status == "FILLED"
            position = rest.position_risk("ETHUSDT")[0]
            assert position.position_amt == 0.2 and position.leverage == 4
            assert rest.account().total_wallet_balance == wallet
    finally:
        stop(proc)


def test_cli_errors_are_one_line_with_market_exit_codes(tmp_path: Path) -> None:
    dolphin = [sys.executable, "-m", "commands"]
    bad_symbols = subprocess.run([*dolphin, "sim", "--symbols", "NOSUCHUSDT", "--port", "0"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=120)
    assert bad_symbols.returncode == 24 and "NOSUCHUSDT" in bad_symbols.stderr
    assert "Traceback" not in bad_symbols.stderr
    bad_source = subprocess.run([*dolphin, "sim", "--source", str(tmp_path / "none.parquet")], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
    assert bad_source.returncode == 24 and "no such file" in bad_source.stderr
    bad_fault = subprocess.run([*dolphin, "sim", "--fault", "ack:mode=maybe", "--port", "0"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
    assert bad_fault.returncode == 24 and "bad fault 'ack'" in bad_fault.stderr and "Traceback" not in bad_fault.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = subprocess.run([sys.executable, "-m", "dolphin.market.sim", "--port", port, "--symbols", "5"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert busy.returncode == 25 and "cannot listen" in busy.stderr


def test_kill_9_resumes_the_market_clock_and_the_account(tmp_path: Path) -> None:
    """kill -9 never rewinds the market: the clock, the market's place in time and the account come back."""
    state = tmp_path / "state"
    proc, info = start(tmp_path, "--state-dir", str(state), "--fault", "error:status=503,code=-1001,path=/fapi/v1/ping")
    assert info["clock"] == "wall" and not info["resumed"]
    try:
        with SyncBinanceRest(info["rest_url"], KEY, SECRET) as rest:
            before = rest.server_time()
            assert abs(before - time.time() * 1000) < 5_000  # the live synthetic market runs on the wall clock
            history = rest.klines("BTCUSDT", "1m", limit=30)
            rest.new_order("BTCUSDT", "BUY", "MARKET", 0.01, new_client_order_id="before-kill")
            key = rest_json(info, "POST", "/fapi/v1/listenKey")["listenKey"]
        with urllib.request.urlopen(f"{info['rest_url']}/sim/v1/faults", timeout=30) as resp:
            assert json.loads(resp.read())["rules"][0]["path"] == "/fapi/v1/ping"  # --fault is live
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    proc, info = start(tmp_path, "--state-dir", str(state), name="ready2.json")
    try:
        assert info["resumed"] and info["start_ms"] >= before
        with SyncBinanceRest(info["rest_url"], KEY, SECRET) as rest:
            after = rest.server_time()
            assert after >= before and abs(after - time.time() * 1000) < 5_000
            again = rest.klines("BTCUSDT", "1m", start_ms=history[0].open_time, limit=len(history) - 1)
            assert again == history[:-1]  # the same market, in the same place in time
            assert rest.query_order("BTCUSDT", orig_client_order_id="before-kill").status == "FILLED"
            assert rest.position_risk("BTCUSDT")[0].position_amt == 0.01
            assert rest_json(info, "POST", "/fapi/v1/listenKey")["listenKey"] == key  # the stream's key too
    finally:
        code, _, err = stop(proc)
    assert code == 0 and "Traceback" not in err


def test_a_historical_clock_resumes_instead_of_rewinding_to_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    start_at = "2026-01-06T12:00:00Z"
    proc, info = start(tmp_path, "--state-dir", str(state), "--start", start_at, "--speed", "30")
    assert info["clock"] == "historical" and info["start_ms"] == 1_767_700_800_000
    try:
        with SyncBinanceRest(info["rest_url"]) as rest:
            wait_sync(lambda: rest.server_time() > info["start_ms"] + 15_000, 60, "15 s of market time")
            before = rest.server_time()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    proc, info = start(tmp_path, "--state-dir", str(state), "--start", start_at, "--speed", "30", name="ready2.json")
    try:
        with SyncBinanceRest(info["rest_url"]) as rest:
            assert info["resumed"] and info["start_ms"] >= before and rest.server_time() >= before  # no rewind
    finally:
        stop(proc)


def rest_json(info: dict, method: str, path: str) -> dict:
    req = urllib.request.Request(f"{info['rest_url']}{path}", method=method, headers={"X-MBX-APIKEY": KEY})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())
