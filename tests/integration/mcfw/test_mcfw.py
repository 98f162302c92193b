"""The `mcfw` daemon and `dolphin mc run` against a real scan archive and the embedded bus member.

One small archive (12 assets, ~1.7 h of 5 s scans) serves every test; the MC settings
are small (40 paths of 72 minutes) so an assessment takes about a second. Reports are
read back through the bus codec, as the trader and the TUI read them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest

from dolphin.bus import AcbBoost, Bus, EmbeddedMember, schema
from dolphin.bus.client import connect
from dolphin.bus.codec import BusCodec, default_codec  # default_codec: the in-process daemon's reads
from dolphin.bus.payloads import McForewarner
from dolphin.engine.mc_gate import status_for_probability
from dolphin.paths import PROJECT_ROOT
from dolphin.services.mcfw.assess import read_report, report_path
from dolphin.services.mcfw.service import run_mcfw
from dolphin.services.runtime import ServiceContext
from tests.integration.mcfw.support import (
    N_SYMBOLS,
    SMALL_MCFW,
    scan_records,
    services_yml,
    small_services,
    write_archive,
)
from tests.integration.support import ServiceThread
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.degradation, pytest.mark.slow]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_archive(tmp_path_factory.mktemp("archive"), scan_records())


@pytest.fixture(scope="module")
def member():
    with EmbeddedMember(port=0) as m:
        yield m


@pytest.fixture
def bus(member, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOLPHIN_HZ_PORT", str(member.port))
    monkeypatch.setenv("DOLPHIN_HZ_MEMBERS", "")
    client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
    b = Bus(client)
    b.delete(schema.FEATURES, schema.MC_FOREWARNER_LATEST)
    b.delete(schema.FEATURES, schema.ACB_BOOST)
    yield b
    client.shutdown()


def _home(tmp_path: Path, archive: Path | None, name: str = "home") -> Path:
    home = tmp_path / name
    home.mkdir()
    if archive is not None:
        (home / "arrow_scans").symlink_to(archive, target_is_directory=True)
    return home


def _report(bus: Bus, since: float) -> McForewarner | None:
    mc = bus.get(schema.FEATURES, schema.MC_FOREWARNER_LATEST)
    return mc if mc is not None and mc.timestamp_s() >= since else None


def _raw_decodes(bus: Bus) -> McForewarner:
    """The raw bus string decodes through a fresh codec (what every reader does at its edge)."""
    raw = bus.client.get_map(schema.FEATURES).blocking().get(schema.MC_FOREWARNER_LATEST)
    return BusCodec().decode(schema.FEATURES, schema.MC_FOREWARNER_LATEST, raw)


class McfwThread(ServiceThread):
    name = "mcfw"

    def __init__(self, home: Path, **mcfw: object) -> None:
        super().__init__(home)
        self.scfg = small_services(**mcfw)

    async def body(self, ctx: ServiceContext) -> None:
        await run_mcfw(ctx, self.scfg)


def _first_report(bus: Bus, home: Path) -> McForewarner:
    """Run the daemon (in this process) until it has published once; its report, as the raw bus value decodes."""
    since = time.time()
    daemon = McfwThread(home)
    daemon.start_thread()
    try:
        wait_until(lambda: _report(bus, since) is not None, 180, what="an MC-Forewarner report")
    finally:
        daemon.stop()
    return _raw_decodes(bus)


def test_the_daemon_publishes_a_report_the_codec_accepts(archive: Path, bus: Bus, tmp_path: Path) -> None:
    bus.put(schema.FEATURES, schema.ACB_BOOST, AcbBoost(boost=1.3, beta=0.2, pushed_at=time.time()))
    home = _home(tmp_path, archive)
    mc = _first_report(bus, home)
    assert mc == bus.get(schema.FEATURES, schema.MC_FOREWARNER_LATEST)
    assert mc.source == "MONTE_CARLO" and mc.paths == SMALL_MCFW.paths and mc.reason is None
    assert mc.status == status_for_probability(mc.catastrophic_prob)
    assert mc.envelope_score == pytest.approx(1.0 - (mc.median_drawdown or 0.0) / SMALL_MCFW.drawdown_limit)
    assert mc.base_boost == 1.3 and mc.max_leverage == pytest.approx(5.0 * 1.3)   # §12: max_leverage × base_boost
    assert mc.assets == N_SYMBOLS and mc.horizon_days == SMALL_MCFW.horizon_days and mc.seed == SMALL_MCFW.seed
    assert mc.history_start is not None and mc.history_end is not None and mc.compute_s is not None
    assert mc.prob_history == [mc.catastrophic_prob]
    assert read_report(report_path(home)) == mc     # the file beside the bus value

    # No archive: FALLBACK_NO_DATA (ORANGE 0.20 / 0.80, §28.6), continuing the history on the bus
    none = _first_report(bus, _home(tmp_path, None, "empty"))
    assert (none.status, none.catastrophic_prob, none.envelope_score, none.source, none.paths) == (
        "ORANGE", 0.20, 0.80, "FALLBACK_NO_DATA", 0)
    assert none.reason is not None and "no scan archive" in none.reason
    assert none.prob_history == [mc.catastrophic_prob, 0.20]


def test_bad_bus_values_are_counted_and_dropped_and_the_last_good_acb_state_kept(archive: Path, bus: Bus,
                                                                                 tmp_path: Path) -> None:
    """A garbled report and a NaN boost on the bus: rejected by the codec (counted), the daemon goes on with
    its own history and the last good ACB state."""
    acb_label = f"{schema.FEATURES}[{schema.ACB_BOOST}]"
    mc_label = f"{schema.FEATURES}[{schema.MC_FOREWARNER_LATEST}]"
    mine = Bus(bus.client, codec=BusCodec())      # the test's own reads do not touch the daemon's counters
    raw = bus.client.get_map(schema.FEATURES).blocking()
    acb_before, mc_before = default_codec.rejections.count(acb_label), default_codec.rejections.count(mc_label)
    raw.put(schema.MC_FOREWARNER_LATEST, '{"status": "PURPLE", "catastrophic_prob": 7}')
    bus.put(schema.FEATURES, schema.ACB_BOOST, AcbBoost(boost=1.3, beta=0.2, pushed_at=time.time()))

    def report_after(t: float) -> McForewarner | None:
        got = mine.get(schema.FEATURES, schema.MC_FOREWARNER_LATEST)
        return got if got is not None and got.timestamp_s() >= t else None

    since = time.time()
    daemon = McfwThread(_home(tmp_path, archive), interval_h=0.0005)   # a new assessment every ~2 s
    daemon.start_thread()
    try:
        first = wait_until(lambda: report_after(since), 180, what="the first report")
        assert default_codec.rejections.count(mc_label) > mc_before      # the garbled report: counted, dropped
        assert first.base_boost == 1.3 and first.prob_history == [first.catastrophic_prob]   # not continued from it

        raw.put(schema.ACB_BOOST, '{"boost": NaN, "beta": 0.2}')
        wait_until(lambda: default_codec.rejections.count(acb_label) > acb_before, 120,
                   what="the daemon to reject the NaN boost")
        rejected_at = time.time()
        later = wait_until(lambda: report_after(rejected_at), 180, what="a report after the NaN boost")
        assert later.source == "MONTE_CARLO" and later.base_boost == 1.3 and later.max_leverage == pytest.approx(6.5)
        assert later.catastrophic_prob == first.catastrophic_prob         # same history, seed and ACB state
        assert len(later.prob_history or ()) > 1                           # its own history went on
    finally:
        daemon.stop()     # raises what the daemon's thread raised


# ---------------------------------------------------------------- a process, killed -9
def _config_dir(tmp_path: Path, **mcfw: object) -> Path:
    cfg = tmp_path / "configs"
    cfg.mkdir()
    for name in ("blue.yml", "green.yml"):
        shutil.copy(PROJECT_ROOT / "configs" / name, cfg / name)
    (cfg / "services.yml").write_text(services_yml(**mcfw))
    return cfg


def _env(home: Path, config: Path, hz_port: int) -> dict[str, str]:
    return {**os.environ, "DOLPHIN_HOME": str(home), "DOLPHIN_CONFIG_DIR": str(config),
            "DOLPHIN_HZ_PORT": str(hz_port), "DOLPHIN_HZ_MEMBERS": "", "PYTHONUNBUFFERED": "1"}


def test_kill_9_then_restart_publishes_again_and_nothing_is_corrupt(archive: Path, bus: Bus, member,
                                                                    tmp_path: Path) -> None:
    home = _home(tmp_path, archive)
    env = _env(home, _config_dir(tmp_path, interval_h=0.001), member.port)   # a new assessment every ~4 s
    log = open(home / "mcfw.log", "ab")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "dolphin.services.mcfw"], env=env, cwd=PROJECT_ROOT,
                                stdout=log, stderr=subprocess.STDOUT)

    since = time.time()
    proc = start()
    try:
        wait_until(lambda: (r := _report(bus, since)) is not None and len(r.prob_history or ()) >= 2, 180,
                   what="two assessments by the daemon process")
        first = _raw_decodes(bus)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        killed_at = time.time()
        survived = read_report(report_path(home))     # atomic writes: the file is a whole report
        assert survived is not None and survived.source == "MONTE_CARLO"

        proc = start()
        wait_until(lambda: _report(bus, killed_at) is not None, 180, what="a report after the restart")
        again = _raw_decodes(bus)
        # same archive, same seed, same settings → the same assessment
        for name in ("status", "catastrophic_prob", "envelope_score", "median_drawdown", "p95_drawdown",
                     "median_return", "paths", "history_start", "history_end"):
            assert getattr(again, name) == getattr(first, name), name
        assert len(again.prob_history or ()) > len(first.prob_history or ())    # the history continued
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "mcfw did not stop cleanly on SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log.close()
    last = read_report(report_path(home))
    assert last is not None and last.timestamp_s() >= again.timestamp_s()
    assert b"Traceback" not in (home / "mcfw.log").read_bytes()


# ---------------------------------------------------------------- dolphin mc run
def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commands", "mc", "run", *args], capture_output=True, text=True,
                          timeout=300, cwd=PROJECT_ROOT, env=env)


def test_mc_run_prints_publishes_and_fails_in_one_line(archive: Path, bus: Bus, member, tmp_path: Path) -> None:
    home = _home(tmp_path, archive)
    env = _env(home, _config_dir(tmp_path), member.port)

    printed = _cli("--no-publish", "--json", "--boost", "1.3", "--beta", "0.2", env=env)
    assert printed.returncode == 0, printed.stderr
    out = json.loads(printed.stdout)
    assert out["published"] is False and out["acb"] == {"boost": 1.3, "beta": 0.2, "from": "flags"}
    report = msgspec.convert(out["report"], McForewarner)
    assert report.source == "MONTE_CARLO" and report.paths == SMALL_MCFW.paths and report.base_boost == 1.3
    assert bus.get(schema.FEATURES, schema.MC_FOREWARNER_LATEST) is None    # --no-publish never touched the bus

    bus.put(schema.FEATURES, schema.ACB_BOOST, AcbBoost(boost=1.3, beta=0.2, pushed_at=time.time()))
    since = time.time()
    published = _cli("--json", env=env)
    assert published.returncode == 0, published.stderr
    out = json.loads(published.stdout)
    assert out["published"] is True and out["acb"]["from"] == "bus"
    on_bus = _raw_decodes(bus)
    assert on_bus.timestamp_s() >= since and on_bus == msgspec.convert(out["report"], McForewarner)
    # the bus's ACB state gives the same assessment as the same flags (one implementation, one seed)
    for name in ("catastrophic_prob", "envelope_score", "median_drawdown", "median_return", "base_boost"):
        assert getattr(on_bus, name) == getattr(report, name), name
    assert read_report(report_path(home)) == on_bus     # a daemon started later continues from it



def _main(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`dolphin mc run …` in this process (errors happen before any work: no interpreter start per case)."""
    from commands.app import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["dolphin", "mc", "run", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--paths", "0"], 2, "--paths 0: must be between 1 and 100,000"),
    (["--days", "0", "--no-publish"], 2, "--days must be in (0, 365]"),
    (["--boost", "nan", "--no-publish"], 2, "--boost nan"),
    (["--bar", "1m", "--no-publish"], 2, "--bar applies to --klines only"),
    (["--klines", "x.parquet", "--archive", "y"], 2, "choose one history"),
    (["--archive", "/nonexistent/arrow_scans", "--no-publish"], 6, "scan archive not found"),
    (["--paths", "5"], 10, "`dolphin mc run --no-publish` computes and prints it without the bus"),
])
def test_mc_run_errors_are_one_line(args: list[str], code: int, words: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"DOLPHIN_HOME": str(tmp_path / "home"), "DOLPHIN_HZ_PORT": str(free_port()), "DOLPHIN_HZ_MEMBERS": "",
           "DOLPHIN_HZ_CONNECT_TIMEOUT": "2"}
    got, err = _main(args, env, monkeypatch, capsys)
    assert got == code, err
    line = err.strip()
    assert line.startswith("error:") and len(line.splitlines()) == 1 and "Traceback" not in line, line
    assert words in line


def test_the_daemons_archive_cache_reads_only_new_files(tmp_path: Path) -> None:
    """Cycle 1 reads the window, cycle 2 only the files written since; the table equals a full read."""
    from dolphin.services.mcfw.assess import ArchiveCache
    from dolphin.store.scan_archive import load_arrow_scans

    records = scan_records()
    home = tmp_path / "home"
    write_archive(home, records[:1000])
    cache = ArchiveCache()
    first = cache.history(home, 1.0)
    assert first.table is not None and first.table.rows == 1000 and (cache.full_reads, cache.files_read) == (1, 1000)
    assert cache.history(home, 1.0).table is first.table and cache.files_read == 1000   # nothing new: nothing read
    write_archive(home, records[1000:])
    second = cache.history(home, 1.0)
    assert second.table is not None and (cache.full_reads, cache.files_read) == (1, 1250)
    whole = load_arrow_scans(home / "arrow_scans")
    for name in ("ts", "scan_number", "vel_div", "v750_lambda_max_velocity", "prices"):
        assert np.array_equal(getattr(second.table, name), getattr(whole, name), equal_nan=True), name
    assert second.table.assets == whole.assets
    # the archive replaced by a shorter one (a new run from scan 1): read whole again
    shutil.rmtree(home / "arrow_scans")
    write_archive(home, records[:300])
    third = cache.history(home, 1.0)
    assert third.table is not None and third.table.rows == 300 and cache.full_reads == 2
