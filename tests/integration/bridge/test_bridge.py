"""The scan bridge against a real embedded member: pushes, double outputs, restarts, bad files."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from dolphin.bus import schema
from dolphin.services.bridge import BridgeOptions
from dolphin.store.arrow_scans import encode_scan
from tests.integration.bridge.support import BridgeThread, ExternalScanner, make_record
from tests.integration.support import ScanWatch
from tests.support import wait_until

pytestmark = [pytest.mark.degradation, pytest.mark.data_integrity]


WINDOW_S = 120.0  # the duplicate window: far longer than any pause of a loaded machine between two drops


def _options(scanner: ExternalScanner) -> BridgeOptions:
    return BridgeOptions(watch=scanner.root, poll_s=0.05, settle_s=0.3, stats_log_s=0.5, duplicate_window_s=WINDOW_S)


def _foreign_schema_file() -> bytes:
    table = pa.table({"scan_number": [6], "vel_div": [-0.05]})
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_bridge_pushes_new_scans_and_skips_what_it_must(runtime_root: Path, scanner: ExternalScanner,
                                                        bus_watch: ScanWatch) -> None:
    bridge = BridgeThread(runtime_root, _options(scanner)).start()
    stats = bridge.stats

    first = [make_record(n, vel_div=-0.03 - n / 1000) for n in (1, 2, 3)]
    for record in first:
        scanner.drop(record)
    pushes = bus_watch.wait_numbers([1, 2, 3])
    for record, pushed in zip(first, pushes, strict=True):
        assert pushed.vel_div == record.vel_div and pushed.timestamp_ns == record.timestamp_ns
        assert pushed.asset_prices == {"BTCUSDT": 70_000.0, "ETHUSDT": 3_500.0}  # SOLUSDT had no price
        assert pushed.multi_window_results["50"].velocity == record.w50_velocity
        assert "300" not in pushed.eigenvalue_gradients  # NaN acceleration left out
        assert pushed.bridge_ts is not None and abs(pushed.bridge_ts - time.time()) < 60

    # NG7 double output: the same scan number again, minutes later, with a stale price → skipped
    scanner.drop(make_record(2, at_ns=make_record(2).timestamp_ns + 180 * 10**9, btc=60_000.0))
    wait_until(lambda: stats.duplicates == 1)

    # corrupt, truncated and foreign files: counted, skipped, the bridge goes on
    scanner.drop_bytes(make_record(4, at_ns=make_record(4).timestamp_ns + 1 * 10**9), b"\x00garbage" * 50)
    good = encode_scan(make_record(5, at_ns=make_record(5).timestamp_ns + 1 * 10**9))
    scanner.drop_bytes(make_record(5, at_ns=make_record(5).timestamp_ns + 1 * 10**9), good[: len(good) // 2])
    scanner.drop_bytes(make_record(6, at_ns=make_record(6).timestamp_ns + 1 * 10**9), _foreign_schema_file())
    wait_until(lambda: stats.corrupt == 3)
    scanner.drop(make_record(4))
    bus_watch.wait_numbers([1, 2, 3, 4])

    # a warm-up scan (vel_div undefined) stays in the archive, is not pushed
    scanner.drop(make_record(5, vel_div=math.nan))
    wait_until(lambda: stats.warmup == 1)

    # the external scanner restarts (a while later): its counter starts again at 1 → a new run
    scanner.advance(WINDOW_S + 1)
    scanner.drop(make_record(1, at_ns=make_record(400).timestamp_ns))
    scanner.drop(make_record(2, at_ns=make_record(401).timestamp_ns))
    bus_watch.wait_numbers([1, 2, 3, 4, 1, 2])
    assert bus_watch.scans[-1].timestamp_ns == make_record(401).timestamp_ns
    scanner.drop(make_record(1, at_ns=make_record(400).timestamp_ns + 10**9))  # a double output in the new run
    wait_until(lambda: stats.duplicates == 2)

    expected = "pushed=6 duplicates=2 corrupt=3 resets=1 warmup=1 stale=0 bus_errors=0 last_scan=2"
    assert stats.summary() == expected
    beat = wait_until(lambda: (b := bus_watch.get(schema.HEARTBEAT, schema.heartbeat_key("bridge"))) is not None
                      and expected in (b.phase or "") and b)
    assert beat.service == "bridge"
    bridge.stop()
    assert bus_watch.numbers() == [1, 2, 3, 4, 1, 2]  # nothing else was ever pushed


def test_a_restarted_bridge_pushes_only_what_is_newer_than_the_bus(runtime_root: Path, scanner: ExternalScanner,
                                                                   bus_watch: ScanWatch) -> None:
    first = BridgeThread(runtime_root, _options(scanner)).start()
    for n in (1, 2, 3):
        scanner.drop(make_record(n))
    bus_watch.wait_numbers([1, 2, 3])
    first.stop()

    scanner.drop(make_record(4))  # arrives while the bridge is down
    second = BridgeThread(runtime_root, _options(scanner)).start()
    bus_watch.wait_numbers([1, 2, 3, 4])  # caught up with 4 only: 1..3 are not older news pushed again
    scanner.drop(make_record(3, at_ns=make_record(3).timestamp_ns + 180 * 10**9))  # late double output of 3
    wait_until(lambda: second.stats.duplicates == 1)
    scanner.drop(make_record(5))
    bus_watch.wait_numbers([1, 2, 3, 4, 5])
    assert second.stats.resets == 0 and second.stats.pushed == 2
    second.stop()


def test_with_an_empty_bus_files_from_before_the_start_are_history(runtime_root: Path, scanner: ExternalScanner,
                                                                   bus_watch: ScanWatch) -> None:
    for n in (1, 2):
        scanner.drop(make_record(n))
    bridge = BridgeThread(runtime_root, _options(scanner)).start()
    scanner.drop(make_record(3))
    bus_watch.wait_numbers([3])
    bridge.stop()


def test_the_catch_up_after_a_long_outage_is_bounded(runtime_root: Path, scanner: ExternalScanner,
                                                     bus_watch: ScanWatch) -> None:
    opts = BridgeOptions(watch=scanner.root, poll_s=0.05, settle_s=0.3, catchup_max=2)
    first = BridgeThread(runtime_root, opts).start()
    scanner.drop(make_record(1))
    bus_watch.wait_numbers([1])
    first.stop()
    for n in range(2, 7):
        scanner.drop(make_record(n))
    second = BridgeThread(runtime_root, opts).start()
    bus_watch.wait_numbers([1, 5, 6])
    assert second.stats.stale == 3
    second.stop()


def test_the_daemon_runs_under_run_service_and_stops_cleanly(runtime_root: Path, scanner: ExternalScanner,
                                                             bus_watch: ScanWatch, tmp_path: Path) -> None:
    env = {**os.environ, "DOLPHIN_HOME": str(runtime_root)}
    log_path = tmp_path / "bridge.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "dolphin.services.bridge", "--watch", str(scanner.root.parent),
                                 "--poll", "0.1"], env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: "watching" in log_path.read_text() or proc.poll() is not None, 60.0, 0.1)
            assert proc.poll() is None, log_path.read_text()
            scanner.drop(make_record(1))
            bus_watch.wait_numbers([1])
            beat = wait_until(lambda: bus_watch.get(schema.HEARTBEAT, schema.heartbeat_key("bridge")), 60.0, 0.1)
            assert beat.pid == proc.pid
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    text = log_path.read_text()
    assert "bridge counters: pushed=1 " in text and "Traceback" not in text
    assert str(scanner.root) in text  # --watch accepts the root holding arrow_scans/


def test_the_bridge_refuses_the_familys_own_archive(runtime_root: Path, tmp_path: Path) -> None:
    """In the family the scanner publishes its own scans: a bridge on its archive republished the backfill."""
    env = {**os.environ, "DOLPHIN_HOME": str(runtime_root)}
    proc = subprocess.run([sys.executable, "-m", "dolphin.services.bridge"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert "refusing to bridge" in proc.stdout + proc.stderr and "own scanner archive" in proc.stdout + proc.stderr


def test_the_bridge_never_pushes_a_scan_older_than_the_live_edge(runtime_root: Path, scanner: ExternalScanner,
                                                                 bus_watch: ScanWatch) -> None:
    bridge = BridgeThread(runtime_root, _options(scanner)).start()
    scanner.drop(make_record(10))
    bus_watch.wait_numbers([10])
    scanner.advance(WINDOW_S + 1)
    for n in (3, 4):    # an archive's backfill, written after the live scan: history, not the market now
        scanner.drop(make_record(n))
    wait_until(lambda: bridge.stats.stale == 2)
    scanner.drop(make_record(11))
    bus_watch.wait_numbers([10, 11])
    bridge.stop()
    assert bus_watch.numbers() == [10, 11]
