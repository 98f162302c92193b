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
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = subprocess.run([sys.executable, "-m", "dolphin.market.sim", "--port", port, "--symbols", "5"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert busy.returncode == 25 and "cannot listen" in busy.stderr
