"""The OB history (Parquet, crash-safe parts, DuckDB readers) and the fallback file, on disk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dolphin.bus import ob_codec
from dolphin.bus.payloads import ObFeatures, ObMacro
from dolphin.engine.ob import OB_ASSET_FIELDS, RecordedOBProvider
from dolphin.errors import DataError
from dolphin.market.ob_features import AssetTracker, macro_of, snapshot_of
from dolphin.store.ob_cache import ObCacheFile, cache_path, read_fallback, write_cache
from dolphin.store.ob_history import FEATURES, MACRO, UNIVERSE, ObHistory, ObHistoryWriter, load_ob_history

pytestmark = [pytest.mark.data_integrity]

T0 = 1_767_657_590_000          # 10 s before midnight UTC: bars land on two market days
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def _bars(n: int) -> list[tuple[int, list, object]]:
    """n bars of three symbols through the real trackers: (bar_ms, [(symbol, AssetFeatures)], macro)."""
    trackers = {s: AssetTracker() for s in SYMBOLS}
    out = []
    for k in range(n):
        items = []
        for j, s in enumerate(SYMBOLS):
            q = 1.0 + 0.1 * ((k + j) % 4)
            bids, asks = [(99.9, q), (99.8, 2.0)], [(100.1, 2.0 - 0.2 * j), (100.2, 1.0)]
            items.append((s, trackers[s].close_bar(snapshot_of(bids, asks))))
        out.append((T0 + k * 5_000, items, macro_of(f for _, f in items)))
    return out


def _write(writer: ObHistoryWriter, bars: list) -> None:
    for bar_ms, items, macro in bars:
        writer.add_rows(FEATURES, ob_codec.feature_rows(bar_ms, items))
        writer.add_rows(MACRO, ob_codec.macro_rows(bar_ms, macro))


def test_history_round_trips_into_the_engines_provider(tmp_path: Path) -> None:
    bars = _bars(6)
    writer = ObHistoryWriter(tmp_path / "ob_history")
    assert writer.recover() == {UNIVERSE: None, FEATURES: None, MACRO: None}
    _write(writer, bars[:3])
    uni = ob_codec.universe_payload(dict(bars[2][1]), snapshot_utc=1.0e9)
    writer.add_rows(UNIVERSE, ob_codec.universe_rows(bars[2][0], uni))
    parts = writer.flush()
    _write(writer, bars[3:])
    parts += writer.flush()
    days = sorted({p.parent.name for p in parts})
    assert days == ["date=2026-01-05", "date=2026-01-06"]        # market days, Hive style
    for p in parts:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600 and pq.read_table(p).num_rows > 0

    provider = load_ob_history(tmp_path)                          # a runtime root holding ob_history/ works too
    assert isinstance(provider, RecordedOBProvider)
    assert provider.symbols == SYMBOLS[:1] + ("ETHUSDT", "SOLUSDT") and provider.asset_values.shape == (6, 3, 5)
    for k, (bar_ms, items, macro) in enumerate(bars):
        assert provider.asset_ts[k] == bar_ms and provider.macro_ts[k] == bar_ms
        for s, f in items:
            i = provider.symbols.index(s)
            assert tuple(provider.asset_values[k, i]) == tuple(getattr(f, name) for name in OB_ASSET_FIELDS)
        assert tuple(provider.macro_values[k]) == (macro.cascade_count, macro.regime_signal, macro.market_imbalance)
    # as-of: a bar between two records gets the earlier one, never a later one
    block = provider.block(np.array([T0 + 7_500, T0 - 1]), ["ETHUSDT", "NOPEUSDT"])
    assert tuple(block.asset[0, 0]) == tuple(provider.asset_values[1, 1])
    assert tuple(block.asset[1, 0]) == (0.0, 0.0, 0.0, 0.75, 0.5)   # before any record: the neutral values

    one_day = load_ob_history(tmp_path / "ob_history", date_from="2026-01-06", symbols=["SOLUSDT"])
    assert one_day.symbols == ("SOLUSDT",) and one_day.asset_ts[0] == T0 + 10_000 and len(one_day.macro_ts) == 4
    con = ObHistory(tmp_path).connect()
    assert con.execute("SELECT count(*) FROM features").fetchone() == (18,)
    assert con.execute("SELECT count(*), min(symbol) FROM universe").fetchone() == (3, "BTCUSDT")
    assert con.execute("SELECT count(DISTINCT date) FROM macro").fetchone() == (2,)


def test_history_rows_hold_the_bus_payloads_values_even_past_a_bound_by_rounding(tmp_path: Path) -> None:
    """`backtest --journal --ob` compares a trader's journaled OB (the shard documents) with the history exactly."""
    import dataclasses

    (_, items, macro), = _bars(1)
    symbol, f = items[0]
    off = dataclasses.replace(f, imbalance_ma5=1.0 + 2e-16, imbalance_persistence=-1e-17, fill_probability=1.0 + 4e-16)
    doc = ob_codec.features_payload(off, bar_ms=T0, regime_signal=None, timestamp=0.0)
    assert (doc.imbalance_ma5, doc.imbalance_persistence, doc.fill_probability) == (1.0, 0.0, 1.0)
    writer = ObHistoryWriter(tmp_path / "ob_history")
    writer.recover()
    writer.add_rows(FEATURES, ob_codec.feature_rows(T0, [(symbol, off)]))
    writer.add_rows(MACRO, ob_codec.macro_rows(T0, dataclasses.replace(macro, market_imbalance=-1.0 - 2e-16)))
    writer.flush()
    provider = load_ob_history(tmp_path)
    assert tuple(provider.asset_values[0, 0]) == ob_codec.asset_values(doc)
    assert provider.macro_values[0, 2] == -1.0


def test_a_restart_removes_unfinished_parts_and_never_writes_a_bar_twice(tmp_path: Path) -> None:
    root = tmp_path / "ob_history"
    first = ObHistoryWriter(root)
    first.recover()
    bars = _bars(4)
    _write(first, bars[:2])
    first.flush()
    day = root / FEATURES / "date=2026-01-05"
    (day / ".part-1767657600000-1767657605000.parquet.999.tmp").write_bytes(b"PAR1 half a file")  # a killed flush
    second = ObHistoryWriter(root)
    last = second.recover()
    assert last[FEATURES] == bars[1][0] and last[UNIVERSE] is None and second.temp_removed == 1
    assert not any(p.name.endswith(".tmp") for p in day.iterdir())
    assert second.already_has(FEATURES, bars[1][0]) and not second.already_has(FEATURES, bars[2][0])
    _write(second, [b for b in bars if not second.already_has(FEATURES, b[0])])
    second.flush()
    con = ObHistory(root).connect()
    assert con.execute("SELECT count(*), count(DISTINCT (bar_ms, symbol)) FROM features").fetchone() == (12, 12)


def test_an_empty_or_missing_history_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no OB feature history"):
        load_ob_history(tmp_path)
    with pytest.raises(DataError, match="not a YYYY-MM-DD date"):
        load_ob_history(tmp_path, date_from="yesterday")
    assert ObHistory(tmp_path).connect().execute("SELECT count(*) FROM features").fetchone() == (0,)


def test_the_fallback_file_round_trips_atomically_and_privately(tmp_path: Path) -> None:
    assert read_fallback(tmp_path) is None
    f = ObFeatures(imbalance=0.1, fill_probability=0.5, depth_quality=0.9, bar_ms=T0, timestamp=1.0e9)
    m = ObMacro(bar_ms=T0, cascade_count=1, regime_signal=1.0, market_imbalance=0.02, assets=50, pushed_at=1.0e9)
    path = write_cache(tmp_path, ObCacheFile(written_at=1.5e9, bar_ms=T0, circuit="open", features={"BTCUSDT": f},
                                             macro=m))
    assert path == cache_path(tmp_path) and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    features, macro, written_at = read_fallback(tmp_path)  # type: ignore[misc]
    assert features == {"BTCUSDT": f} and macro == m and written_at == 1.5e9
    path.write_text('{"version": 1, "written_at": 1.0, "features": {"BTCUSDT": {"imbalance": 7}}}')
    assert read_fallback(tmp_path) is None                        # an invalid file is not read (logged)
    path.write_text('{"version": 99, "written_at": 1.0}')
    assert read_fallback(tmp_path) is None


def test_closed_days_compact_into_one_part_and_a_killed_compaction_reads_once(tmp_path: Path) -> None:
    root = tmp_path / "ob_history"
    writer = ObHistoryWriter(root)
    writer.recover()
    bars = _bars(8)                                    # 2 bars on 2026-01-05, 6 on 2026-01-06
    for b in bars:                                     # one flush per bar: many small parts
        _write(writer, [b])
        writer.flush()
    day5 = root / FEATURES / "date=2026-01-05"
    assert len(list(day5.glob("part-*.parquet"))) == 2
    before = ObHistory(root).connect().execute("SELECT * FROM features ORDER BY bar_ms, symbol").fetchall()
    assert writer.compact() == 2                       # features and macro of the closed day
    assert writer.compact() == 0                       # nothing new closed
    assert [p.name for p in day5.glob("part-*.parquet")] == [f"part-{T0:013d}-{T0 + 5_000:013d}.parquet"]
    assert len(list((root / FEATURES / "date=2026-01-06").glob("part-*.parquet"))) == 6    # today: untouched
    after = ObHistory(root).connect().execute("SELECT * FROM features ORDER BY bar_ms, symbol").fetchall()
    assert after == before                             # the same rows, once
    # a compaction killed after its wide part was in place: the small parts are still there
    small = ObHistoryWriter(tmp_path / "again")
    small.recover()
    for b in bars[:2]:
        _write(small, [b])
        small.flush()
    d = tmp_path / "again" / FEATURES / "date=2026-01-05"
    parts = sorted(d.glob("part-*.parquet"))
    wide = pq.read_table(parts[0]).to_pylist() + pq.read_table(parts[1]).to_pylist()
    pq.write_table(pq.read_table(parts[0]).from_pylist(wide, schema=pq.read_schema(parts[0])),
                   d / f"part-{T0:013d}-{T0 + 5_000:013d}.parquet")
    con = ObHistory(tmp_path / "again").connect()
    assert con.execute("SELECT count(*) FROM features").fetchone() == (6,)           # not 12
    restarted = ObHistoryWriter(tmp_path / "again")
    restarted.recover()
    assert restarted.covered_removed == 2 and len(list(d.glob("part-*.parquet"))) == 1
