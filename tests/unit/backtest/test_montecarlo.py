"""The MC-Forewarner's Monte-Carlo (dolphin.backtest.montecarlo) on small seeded histories."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolphin.backtest import montecarlo as mc
from dolphin.engine.engine import NDAlphaEngine
from dolphin.engine.layout import param_vector
from dolphin.engine.mc_gate import status_for_probability
from dolphin.engine.params import ChampionParams, LongParams, StrategyConfig
from dolphin.enums import McSource, McStatus
from tests.unit.backtest.mc_market import random_scan_table

pytestmark = pytest.mark.finance_fuzz

SMALL = mc.McSettings(paths=24, horizon_days=2 / 24, history_days=1.0, block_minutes=10, min_history_hours=1.0,
                      warmup_bars=300, chunk_bars=512)


@pytest.fixture(scope="module")
def table():
    return random_scan_table()


# ---------------------------------------------------------------- status and envelope by hand
@pytest.mark.parametrize(("prob", "status"), [(0.0, McStatus.GREEN), (0.0999, McStatus.GREEN),
                                              (0.10, McStatus.ORANGE), (0.2999, McStatus.ORANGE),
                                              (0.30, McStatus.RED), (1.0, McStatus.RED), (math.nan, McStatus.RED)])
def test_status_thresholds_of_28_6(prob: float, status: McStatus) -> None:
    assert status_for_probability(prob) is status


@pytest.mark.parametrize(("drawdowns", "prob", "envelope", "status"), [
    # 1 path of 20 at the limit → 0.05 GREEN; median 0.03 of a 0.12 limit → 0.75
    ([0.03] * 19 + [0.12], 0.05, 0.75, McStatus.GREEN),
    # 2 of 10 beyond → 0.20 ORANGE; median 0.06 → 0.5
    ([0.06] * 8 + [0.13, 0.50], 0.20, 0.5, McStatus.ORANGE),
    # 3 of 10 → 0.30 RED (the boundary belongs to RED); median 0.01
    ([0.0] * 5 + [0.02, 0.02, 0.2, 0.2, 0.2], 0.30, 1.0 - 0.01 / 0.12, McStatus.RED),
    # every path beyond, median twice the limit → envelope −1
    ([0.24] * 4, 1.0, -1.0, McStatus.RED),
    # no drawdown anywhere → 0, envelope 1
    ([0.0] * 3, 0.0, 1.0, McStatus.GREEN),
])
def test_report_from_hand_built_outcomes(drawdowns: list[float], prob: float, envelope: float,
                                         status: McStatus) -> None:
    dd = np.array(drawdowns)
    out = mc.PathOutcomes(dd, np.zeros(dd.size), np.ones(dd.size, dtype=np.int64))
    a = mc.assess_outcomes(out, replace(SMALL, drawdown_limit=0.12))
    assert a.catastrophic_prob == pytest.approx(prob)
    assert a.envelope_score == pytest.approx(envelope)
    assert a.status is status and a.source is McSource.MONTE_CARLO and a.paths == dd.size


# ---------------------------------------------------------------- too little history
def test_too_little_history_is_fallback_no_data_never_random(table) -> None:
    cfg = StrategyConfig()
    short = table.take(np.arange(1500))   # ~2 h of 5 s bars: the vol gate calibrates after ~64 min
    reports = [mc.run_forewarner(None, cfg, SMALL, no_data_reason="no archive"),
               mc.run_forewarner(table.take(np.arange(1)), cfg, SMALL),
               mc.run_forewarner(short, cfg, replace(SMALL, min_history_hours=6.0)),
               mc.run_forewarner(table, cfg, replace(SMALL, block_minutes=24 * 60))]   # no whole block fits
    for a in reports:
        assert (a.status, a.catastrophic_prob, a.envelope_score, a.source, a.paths) == (
            McStatus.ORANGE, 0.20, 0.80, McSource.FALLBACK_NO_DATA, 0)
        assert a.reason
    assert reports[0].reason == "no archive"
    assert "h of usable history" in reports[2].reason and "6 h needed" in reports[2].reason


def test_block_candidates_skip_gaps_and_the_uncalibrated_start(table) -> None:
    ts = table.ts.copy()
    ts[2000:] += 3_600_000   # the family was down for an hour before row 2000
    gapped = replace(table, ts=ts)
    h = mc.prepare_history(gapped, StrategyConfig(), 1.0)
    assert h.usable_from >= StrategyConfig().extras.vol_calib_bars
    cand = h.block_candidates(100)
    assert cand.min() >= h.usable_from and cand.max() + 100 <= h.rows
    assert not ((cand < 2000) & (cand + 100 > 2000)).any()     # no block spans the gap ...
    assert 2000 not in cand                                     # ... nor chains its level across it
    assert 2001 in cand and 1900 in cand


# ---------------------------------------------------------------- determinism
def test_same_history_and_seed_same_report_on_any_thread_count(table) -> None:
    cfg = StrategyConfig()
    before = numba.get_num_threads()
    try:
        assert mc.set_threads(1) == 1
        one = mc.run_forewarner(table, cfg, SMALL, boost=1.3, beta=0.2)
        mc.set_threads(2)
        two = mc.run_forewarner(table, cfg, SMALL, boost=1.3, beta=0.2)
    finally:
        numba.set_num_threads(before)
    assert one == two
    seen: list[tuple[int, int]] = []
    batched = mc.run_forewarner(table, cfg, replace(SMALL, batch_paths=5), boost=1.3, beta=0.2,
                                progress=lambda done, total: seen.append((done, total)))
    assert batched == one and seen == [(5, 24), (10, 24), (15, 24), (20, 24), (24, 24)]
    with pytest.raises(mc.McCancelled):
        mc.run_forewarner(table, cfg, replace(SMALL, batch_paths=5), should_stop=lambda: len(seen) > 5,
                          progress=lambda done, total: seen.append((done, total)))
    assert len(seen) == 6      # one batch ran, then the stop was honoured before the next
    assert one.source is McSource.MONTE_CARLO and one.paths == SMALL.paths
    assert one.mean_trades is not None and one.mean_trades > 0      # the engine traded: not a vacuous MC
    assert one.max_leverage == pytest.approx(cfg.champion.max_leverage * 1.3)
    other = mc.run_forewarner(table, cfg, replace(SMALL, seed=SMALL.seed + 1), boost=1.3, beta=0.2)
    assert (other.median_drawdown, other.median_return) != (one.median_drawdown, one.median_return)


def test_the_first_paths_of_a_larger_run_are_a_smaller_run(table) -> None:
    cfg = StrategyConfig()
    h = mc.prepare_history(table, cfg, 1.0)
    block, horizon = 120, 900
    cand = h.block_candidates(block)
    big = mc.draw_plan(12, 8, cand, 5, 5)
    small = mc.draw_plan(4, 8, cand, 5, 5)
    assert np.array_equal(big.starts[:4], small.starts) and np.array_equal(big.rng_seeds[:4], small.rng_seeds)
    template, bar0 = mc.engine_template(h, cfg, 1.0, 0.0, 300)
    params = np.stack([param_vector(mc.jitter_config(cfg, mc.Jitter(), big.jitter_u[i]), -1) for i in range(12)])
    out_big = mc.simulate_paths(h, template, params, big, block, horizon, bar0=bar0, chunk_bars=256)
    out_small = mc.simulate_paths(h, template, params[:4], small, block, horizon, bar0=bar0, chunk_bars=300)
    for name in ("max_drawdown", "final_return", "trades"):
        assert np.array_equal(getattr(out_big, name)[:4], getattr(out_small, name))


# ---------------------------------------------------------------- one implementation: the engine's own trades
def test_a_path_of_consecutive_blocks_is_the_engine_replaying_that_history(table) -> None:
    """Blocks laid end to end from row r, unjittered, replay rows r.. exactly as NDAlphaEngine does.

    The last history row is set equal to row r-1, so re-levelling scales by exactly 1.0
    and the path's prices are the history's bit for bit. The OB-edge draw is off (the MC's
    per-path stream differs from the engine's by design).
    """
    base = StrategyConfig()
    cfg = replace(base, friction=replace(base.friction, ob_edge=False))
    h0 = mc.prepare_history(table, cfg, 1.0)
    r, block, horizon = h0.usable_from + 5, 100, 1800
    prices = table.prices.copy()
    prices[-1] = prices[r - 1]
    h = mc.prepare_history(replace(table, prices=prices), cfg, 1.0)
    assert r + horizon < h.rows - 300   # the path's rows end before the warm-up rows begin
    plan = mc.PathPlan(starts=(r + block * np.arange(horizon // block))[None, :].astype(np.int64),
                       jitter_u=np.zeros((1, 5)), rng_seeds=np.array([1], dtype=np.int64))
    template, bar0 = mc.engine_template(h, cfg, 1.2, 0.5, 300)
    out = mc.simulate_paths(h, template, param_vector(cfg, -1)[None, :], plan, block, horizon, bar0=bar0,
                            chunk_bars=512)

    engine = NDAlphaEngine(cfg, list(h.assets))
    engine.begin_day("mc-forewarner")
    warm = slice(h.rows - 300, h.rows)
    engine.run_block(np.arange(300), h.ts[warm], h.vel_div[warm], h.v750[warm], h.vol_ok[warm],
                     h.engine_prices(warm), trade=False)
    engine.update_acb_boost(1.2, 0.5)
    start_capital = engine.capital
    rows = slice(r, r + horizon)
    engine.run_block(bar0 + np.arange(horizon), h.ts[rows], h.vel_div[rows], h.v750[rows], h.vol_ok[rows],
                     h.engine_prices(rows))
    capitals = np.array([start_capital] + [t.capital_after for t in engine.trades])
    peaks = np.maximum.accumulate(capitals)
    assert len(engine.trades) >= 3
    assert out.trades[0] == len(engine.trades)
    assert out.final_return[0] == engine.capital / start_capital - 1.0
    assert out.max_drawdown[0] == pytest.approx(float(np.max((peaks - capitals) / peaks)), rel=0, abs=1e-15)


def test_the_limit_decides_the_status_of_the_same_paths() -> None:
    """Shorts into a rising market: the same paths (same seed) are RED under a tight limit, GREEN under a loose one."""
    rising = random_scan_table(drift=4e-4, vol=0.001, seed=9)
    cfg = StrategyConfig()
    tight = mc.run_forewarner(rising, cfg, replace(SMALL, drawdown_limit=0.001))
    loose = mc.run_forewarner(rising, cfg, replace(SMALL, drawdown_limit=0.9))
    assert tight.median_drawdown == loose.median_drawdown and tight.median_drawdown is not None
    assert tight.median_drawdown > 0.001       # the typical path draws down beyond the tight limit ...
    assert tight.status is McStatus.RED and tight.catastrophic_prob >= 0.5 and tight.envelope_score < 0
    assert (loose.status, loose.catastrophic_prob) == (McStatus.GREEN, 0.0) and 0 < loose.envelope_score <= 1


# ---------------------------------------------------------------- parameter jitter stays in bounds
def _spec(cls: type, name: str) -> tuple[float, float]:
    meta = next(f.metadata for f in fields(cls) if f.name == name)
    return float(meta["lo"]), float(meta["hi"])


@settings(max_examples=150, deadline=None)
@given(widths=st.tuples(*[st.floats(0.0, mc.MAX_JITTER) for _ in range(5)]),
       u=st.lists(st.floats(-1.0, 1.0), min_size=5, max_size=5),
       direction=st.sampled_from(["short", "long"]),
       max_lev=st.floats(0.5, 50.0), tp=st.floats(1e-5, 1.0), hold=st.integers(1, 5000))
def test_jitter_stays_within_its_widths_and_every_valid_range(widths, u, direction, max_lev, tp, hold) -> None:
    base = StrategyConfig(direction=direction)
    cfg = replace(base, champion=replace(base.champion, max_leverage=max_lev, fixed_tp_pct=tp, max_hold_bars=hold))
    jitter = mc.Jitter(*widths)
    j = mc.jitter_config(cfg, jitter, np.array(u))
    c, b = j.champion, cfg.champion

    def within(value: float, base_value: float, width: float, cls: type, name: str) -> None:
        lo, hi = _spec(cls, name)
        assert lo <= value <= hi
        band = abs(base_value) * width + 1e-12
        assert abs(value - base_value) <= band or value in (lo, hi)

    within(c.max_leverage, b.max_leverage, jitter.max_leverage, ChampionParams, "max_leverage")
    assert c.max_leverage >= c.min_leverage
    within(c.fraction, b.fraction, jitter.fraction, ChampionParams, "fraction")
    within(c.fixed_tp_pct, b.fixed_tp_pct, jitter.fixed_tp_pct, ChampionParams, "fixed_tp_pct")
    assert 1 <= c.max_hold_bars and abs(c.max_hold_bars - b.max_hold_bars) <= b.max_hold_bars * jitter.max_hold_bars + 1
    within(j.signal_threshold, cfg.signal_threshold, jitter.threshold, ChampionParams if direction == "short"
           else LongParams, "vel_div_threshold" if direction == "short" else "long_threshold")
    # the threshold stays on its side of the extreme, at most halfway to it
    assert abs(j.signal_threshold - cfg.signal_threshold) <= abs(cfg.signal_extreme - cfg.signal_threshold) / 2 + 1e-15
    # nothing else moves
    assert replace(j, champion=b, long=cfg.long) == cfg
    assert c.abs_max_leverage == b.abs_max_leverage and c.min_leverage == b.min_leverage


def test_settings_and_jitter_refuse_nonsense() -> None:
    for bad in ({"paths": 0}, {"drawdown_limit": 0.0}, {"drawdown_limit": 1.0}, {"horizon_days": -1},
                {"block_minutes": 0}, {"chunk_bars": 0}):
        with pytest.raises(ValueError):
            mc.McSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        mc.Jitter(fraction=0.6)
    with pytest.raises(ValueError):
        mc.Jitter(threshold=math.nan)
    with pytest.raises(ValueError):
        mc.run_forewarner(None, StrategyConfig(), SMALL, boost=math.inf)


def test_appending_scan_tables_unions_the_assets() -> None:
    a = random_scan_table(rows=50, n_assets=3, seed=1)
    b = random_scan_table(rows=40, n_assets=4, seed=2)
    b = replace(b, ts=b.ts + 50 * 5_000, assets=("A2USDT", "NEWUSDT", "BTCUSDT", "A1USDT"))
    both = a.append(b)
    assert both.rows == 90 and both.assets == ("BTCUSDT", "A1USDT", "A2USDT", "NEWUSDT")
    assert np.array_equal(both.prices[:50, :3], a.prices) and np.isnan(both.prices[:50, 3]).all()
    assert np.array_equal(both.prices[50:, [2, 3, 0, 1]], b.prices)
    assert np.array_equal(both.vel_div, np.concatenate([a.vel_div, b.vel_div]))
    with pytest.raises(ValueError, match="not after"):
        both.append(b)
