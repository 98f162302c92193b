"""The OBF daemon against `dolphin sim --symbols 540` over real websockets and the embedded member.

One simulator process serves both tests (its start generates history for 540 symbols).
At ``--speed 5`` a 5 s bar of market time closes every wall second, so a handful of bars
takes seconds; the depth streams run at 100 ms (5,400 updates a second).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dolphin.bus import ObFeatures, ObfStatus, ObfUniverse, ObMacro, ThreadQueue, schema, shard_map_name, subscribe
from dolphin.bus.member import EmbeddedMember
from dolphin.bus.payloads import WarmupProgress
from dolphin.enums import WarmupUnit
from dolphin.market.symbols import PRIORITY_SYMBOLS, universe
from dolphin.services.obf import ObfOptions
from dolphin.store.ob_history import FEATURES, MACRO, UNIVERSE, ObHistory, load_ob_history

from .support import BusReader, ObfProcess, ObfThread, SimProcess, wait_until

pytestmark = [pytest.mark.slow]

SPEED = 5.0
N = 540


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    proc = SimProcess(tmp_path_factory.mktemp("sim540"), "--symbols", str(N), "--speed", repr(SPEED))
    try:
        yield proc
    finally:
        proc.stop()


def test_540_perpetuals_feed_the_universe_the_shards_the_macro_and_the_history(
        sim: SimProcess, member: EmbeddedMember, runtime_root: Path) -> None:
    reader = BusReader(member.address)
    macros = ThreadQueue()
    sub = subscribe(reader.client, schema.FEATURES, macros, key=schema.OB_MACRO_LATEST, source="obf test")
    beats = ThreadQueue()
    beat_sub = subscribe(reader.client, schema.HEARTBEAT, beats, key=schema.heartbeat_key("obf"), source="obf test")
    warmup = 3.0
    obf = ObfThread(runtime_root, ObfOptions(rest_url=sim.rest_url, ws_url=sim.ws_url, cadence="100ms",
                                             warmup_s=warmup, snapshot_interval_s=2.0, status_interval_s=0.5),
                    heartbeat_s=0.2).start()
    try:
        uni = wait_until(lambda: (u := reader.get(schema.OBF_UNIVERSE_LATEST)) and u.n_assets == N and u, 120,
                         what="a universe snapshot of 540 assets")
        wait_until(lambda: obf.stats.flushes >= 1 and obf.stats.bars_recorded >= 3, 60, what="three bars recorded")
        st = obf.stats
        streams = st.streams.stats()
        assert [c.streams for c in streams.connections] == [200, 200, 140]      # ≤ 200 streams per connection
        assert isinstance(uni, ObfUniverse) and set(uni.assets) == set(universe(N))
        btc = uni.assets["BTCUSDT"]
        assert btc.best_ask > btc.best_bid > 0 and btc.n_bid_levels == btc.n_ask_levels == 5
        assert btc.spread_bps < uni.assets["SYN001USDT"].spread_bps                # tiers: majors are tighter
        # first-publish warm-up: bars closed during it were not published, the first macro came after it
        first = macros.get(timeout=10).payload
        assert isinstance(first, ObMacro) and first.pushed_at >= st.started_at + warmup
        assert st.bars_closed > st.bars_published
        # the heartbeat carried the warm-up's progress in seconds (MHS: WARMING, the TUI and `dolphin up` print
        # it), and carries none once the first universe is out
        progress: list[WarmupProgress | None] = []

        def warm_up_over() -> bool:   # beats before the daemon exists (venue symbols) carry none either
            progress.append(beats.get(timeout=30).payload.warmup)
            return any(p is not None for p in progress) and progress[-1] is None

        wait_until(warm_up_over, 60, what="heartbeats with the warm-up's progress, then one without")
        shown = [p for p in progress if p is not None]
        assert {(p.unit, p.total) for p in shown} == {(WarmupUnit.SECONDS, 3)} and shown[0].done < 3
        assert [p.done for p in shown] == sorted(p.done for p in shown)
        assert shown[0].describe() == f"{shown[0].done} of 3 s"
        # shards: every symbol's document in its §15.2 shard, discovered without a list
        assert reader.shards.discover_assets() == set(universe(N))
        doc = reader.shards.get_asset("ETHUSDT")
        macro = reader.get(schema.OB_MACRO_LATEST)
        assert isinstance(doc, ObFeatures) and isinstance(macro, ObMacro)
        assert doc.bar_ms is not None and doc.bar_ms % 5_000 == 0 and doc.imbalance_ma5 is not None
        assert macro.assets == len(PRIORITY_SYMBOLS) and macro.regime_signal in (-1.0, 0.0, 1.0)
        raw = reader.client.get_map(shard_map_name("ETHUSDT")).blocking().get("ETHUSDT")
        assert '"imbalance_persistence"' in raw and '"withdrawal_velocity"' in raw
        status = reader.get(schema.OBF_STATUS)
        assert isinstance(status, ObfStatus) and status.symbols == N and status.circuit == "closed"
        assert status.covered == N and status.message_rate > 1_000 and status.connections == 3
        # history: what the bus saw is on disk, readable by DuckDB, one row per symbol and bar. A flush may
        # have carried only a universe snapshot so far (the first one is taken as the warm-up ends): wait for the
        # features of three bars to be on disk.

        def feature_rows() -> int:
            try:
                return int(ObHistory(runtime_root).connect().execute("SELECT count(*) FROM features").fetchone()[0])
            except Exception:   # no features part written yet
                return 0

        wait_until(lambda: feature_rows() >= 3 * N, 120, what="three bars of features in the Parquet history")
        con = ObHistory(runtime_root).connect()
        n, syms, dupes = con.execute("SELECT count(*), count(DISTINCT symbol), count(*) - count(DISTINCT "
                                     "(bar_ms, symbol)) FROM features").fetchone()
        assert syms == N and dupes == 0 and n % N == 0
        assert con.execute("SELECT count(*) FROM macro").fetchone()[0] == n // N
        assert con.execute("SELECT count(DISTINCT symbol) FROM universe").fetchone()[0] == N
        provider = load_ob_history(runtime_root, symbols=PRIORITY_SYMBOLS)
        assert provider.symbols == tuple(sorted(PRIORITY_SYMBOLS)) and provider.asset_values.shape[1:] == (50, 5)
        assert (provider.macro_values[:, 1] == macro.regime_signal).any() or len(provider.macro_ts) >= 3
    finally:
        sub.close()
        beat_sub.close()
        reader.close()
        obf.stop()
    assert st.ingest.counters.dropped == {} and streams.dropped == 0


def test_kill_9_mid_flush_loses_at_most_one_interval_and_the_restart_duplicates_nothing(
        sim: SimProcess, member: EmbeddedMember, runtime_root: Path, tmp_path: Path) -> None:
    interval = 1.0          # wall seconds = 5 bars of market time at speed 5
    env = {"DOLPHIN_OBF_WARMUP_S": "0", "DOLPHIN_OBF_SNAPSHOT_S": repr(interval), "DOLPHIN_OBF_CADENCE": "100ms"}
    history = runtime_root / "ob_history"
    reader = BusReader(member.address)

    def parts() -> list[Path]:
        return sorted(history.glob(f"{FEATURES}/date=*/part-*.parquet")) if history.is_dir() else []

    def temp_files() -> list[Path]:
        return list(history.glob("*/date=*/.*.tmp")) if history.is_dir() else []

    first = ObfProcess(runtime_root, rest_url=sim.rest_url, ws_url=sim.ws_url, hz_port=member.port,
                       log_path=tmp_path / "obf1.log", env_extra=env)
    try:
        wait_until(lambda: len(parts()) >= 3, 120, what="three flushes")
        # kill while a part is being written when we catch one (a flush every second); else right away
        deadline = time.monotonic() + 10
        while not temp_files() and time.monotonic() < deadline:
            time.sleep(0.002)
        first.kill9()
        macro = reader.get(schema.OB_MACRO_LATEST)             # the last bar it published before it died
    finally:
        if first.proc.poll() is None:
            first.kill9()
    con = ObHistory(history).connect()
    on_disk = con.execute("SELECT max(bar_ms) FROM features").fetchone()[0]
    assert isinstance(macro, ObMacro)
    lost_ms = macro.bar_ms - on_disk
    assert lost_ms <= (interval * SPEED + 5) * 1000 + 5_000, f"{lost_ms} ms of bars lost"   # one interval (+ a bar)
    second = ObfProcess(runtime_root, rest_url=sim.rest_url, ws_url=sim.ws_url, hz_port=member.port,
                        log_path=tmp_path / "obf2.log", env_extra=env)
    try:
        wait_until(lambda: ObHistory(history).connect().execute("SELECT max(bar_ms) FROM features").fetchone()[0]
                   > macro.bar_ms + 10_000, 120, what="bars recorded after the restart")
    finally:
        assert second.stop() == 0
    reader.close()
    assert not temp_files(), "an unfinished part was left behind"
    con = ObHistory(history).connect()
    for table, key in ((FEATURES, "(bar_ms, symbol)"), (MACRO, "bar_ms"), (UNIVERSE, "(bar_ms, symbol)")):
        total, distinct = con.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
        assert total == distinct and total > 0, f"{table}: {total - distinct} duplicate row(s)"
    assert con.execute("SELECT count(DISTINCT symbol) FROM features").fetchone()[0] == N
    assert "Traceback" not in second.log_text()
