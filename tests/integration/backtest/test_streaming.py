"""Streamed replays (a day at a time, bounded memory) equal the whole-span replay in memory, bit for bit."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pyarrow.parquet as pq
import pytest

from dolphin.backtest.runner import BacktestResult, SpanPlan, TableSource, replay, run_backtest
from dolphin.backtest.synthetic import SyntheticFactors, SyntheticSource, synthetic_scan_table
from dolphin.config import load_config
from dolphin.errors import DataError
from dolphin.scan.table import ScanTable, ScanTableBuilder, build_scan_table
from dolphin.scan.volatility import VolGate, vol_regime_ok
from dolphin.store.scan_table import ScanTableFile, read_scan_table, write_scan_table

pytestmark = [pytest.mark.signal_fill]

DAYS = 3


@pytest.fixture(scope="module")
def whole() -> tuple[ScanTable, object]:
    """Today's whole-span path: every day generated, one scan over the whole matrix, the table in memory."""
    return synthetic_scan_table(DAYS, 7)


def _same(a: BacktestResult, b: BacktestResult) -> None:
    assert a.trades, "the comparison needs trades"
    assert a.trades == b.trades
    assert a.days == b.days
    assert msgspec.to_builtins(a.metrics) == msgspec.to_builtins(b.metrics)
    assert a.metrics.final_capital == b.metrics.final_capital
    assert (a.span_start_ms, a.span_end_ms, a.bars, a.open_position) == (b.span_start_ms, b.span_end_ms, b.bars,
                                                                           b.open_position)


def test_streamed_synthetic_equals_whole_span(whole) -> None:
    table, market = whole
    cfg = load_config("blue")
    stages: list[tuple[str, int, int]] = []
    streamed_source = SyntheticSource(DAYS, 7, progress=lambda *a: stages.append(a[:3]))
    streamed = replay(streamed_source, cfg, acb_source=SyntheticFactors(streamed_source.market),
                      progress=lambda *a: stages.append(a[:3]))
    _same(run_backtest(table, cfg, acb_source=SyntheticFactors(market)), streamed)
    per_day = market.bars_per_day
    assert ("generate", DAYS, DAYS) in stages and ("scan", DAYS * per_day, DAYS * per_day) in stages
    assert ("engine", DAYS, DAYS) in stages
    assert streamed.stages["generate"] > 0 and streamed.stages["scan"] > 0 and streamed.stages["engine"] > 0
    # a date range and a warm-up span pick the same rows streamed as in memory
    for kwargs in ({"date_from": "2026-01-06", "date_to": "2026-01-06"},
                   {"trade_from_scan": per_day + 500, "until_scan": 2 * per_day + 9_000}):
        _same(run_backtest(table, cfg, acb_source=SyntheticFactors(market), **kwargs),
              replay(SyntheticSource(DAYS, 7), cfg, acb_source=SyntheticFactors(market), **kwargs))


def test_builder_pieces_equal_one_build(whole) -> None:
    table, market = whole
    per_day = market.bars_per_day
    builder = ScanTableBuilder(table.assets)
    cuts = [0, 7, per_day, per_day + 1_001, DAYS * per_day]
    pieces = [builder.advance(table.ts[a:b], table.prices[a:b]) for a, b in zip(cuts, cuts[1:])]
    joined = ScanTable.concat(pieces)
    for name in ("ts", "scan_number", "vel_div", "v750_lambda_max_velocity", "instability_150", "prices"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(table, name))
    gate = VolGate()
    ok = np.concatenate([gate.update_block(table.prices[a:b, 0])[1] for a, b in zip(cuts, cuts[1:])])
    np.testing.assert_array_equal(ok, vol_regime_ok(table.prices[:, 0])[1])


def test_parquet_streamed_in_small_groups_equals_in_memory(whole, tmp_path: Path) -> None:
    """Row groups that split days: the runner gathers each day from several pieces."""
    table, market = whole
    cfg = load_config("blue")
    path = write_scan_table(tmp_path / "scans.parquet", table)
    small = tmp_path / "small_groups.parquet"
    pq.write_table(pq.read_table(path), small, row_group_size=5_000)
    streamed = ScanTableFile(small)
    assert sum(1 for _ in streamed.pieces()) > DAYS
    in_memory = read_scan_table(path)
    _same(run_backtest(in_memory, cfg), replay(streamed, cfg))
    _same(run_backtest(in_memory, cfg, date_from="2026-01-07"), replay(ScanTableFile(small), cfg,
                                                                        date_from="2026-01-07"))


def test_span_plan_counts_like_searchsorted() -> None:
    ts = 1_767_571_200_000 + np.arange(0, 3 * 86_400_000, 3_600_000, dtype=np.int64)   # 72 hourly rows, 3 days
    scans = np.arange(10, 10 + ts.shape[0], dtype=np.int64)
    pieces = [(ts[a:b], scans[a:b]) for a, b in ((0, 5), (5, 30), (30, 72))]
    plan = SpanPlan.scan(pieces, date_from="2026-01-06", trade_from_scan=40, until_scan=70)
    assert plan == SpanPlan(rows=72, start=24, stop=61, trade_from=30, numbered=True, days=2)
    whole_plan = SpanPlan.scan([(ts, scans)], date_from="2026-01-06", trade_from_scan=40, until_scan=70)
    assert whole_plan == plan
    with pytest.raises(DataError, match="no bars"):
        SpanPlan.scan(pieces, date_from="2027-01-01")
    with pytest.raises(DataError, match="no scans to trade"):
        SpanPlan.scan(pieces, trade_from_scan=500)
    unnumbered = SpanPlan.scan([(ts[:5], scans[:5]), (ts[5:], scans[5:] - 10)])
    assert not unnumbered.numbered


def test_a_short_stream_is_a_data_error(whole) -> None:
    table, _ = whole
    cfg = load_config("blue")
    plan = SpanPlan.scan([(table.ts, table.scan_number)])
    short = TableSource(table.rows_between(0, 1_000))
    with pytest.raises(DataError, match="ended at row 1000"):
        replay(short, cfg, plan=plan)


def test_build_scan_table_is_one_builder_call() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(1e-3 * rng.standard_normal((900, 4)), axis=0))
    ts = np.arange(900, dtype=np.int64) * 5_000
    a = build_scan_table(ts, ["A", "B", "C", "D"], close)
    b = ScanTableBuilder(["A", "B", "C", "D"]).advance(ts, close)
    np.testing.assert_array_equal(a.vel_div, b.vel_div)
    with pytest.raises(ValueError, match="close must be"):
        ScanTableBuilder(["A"]).advance(ts, close)
