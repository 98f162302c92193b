"""The numba engine against the plain-Python reference, trade for trade, over several days."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dolphin.config import load_config
from dolphin.engine.acb import AdaptiveCircuitBreaker, ExternalFactors
from dolphin.engine.engine import NDAlphaEngine
from dolphin.engine.mc_gate import MCReport
from dolphin.engine.ob import RecordedOBProvider
from dolphin.engine.params import StrategyConfig
from tests.reference.engine_ref import ReferenceEngine
from tests.unit.engine.support import Market, random_market

pytestmark = [pytest.mark.engine, pytest.mark.signal_fill]

DAYS = ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08"]
POSTURES = ["APEX", "STALKER", "APEX", "TURTLE"]


class DailyFactors:
    """Different macro inputs per day so the ACB boost moves."""

    table = {
        "2026-01-05": ExternalFactors(funding_btc=-0.0002, dvol_btc=60.0),
        "2026-01-06": ExternalFactors(taker=0.7, dvol_btc=90.0, fng=20.0),
        "2026-01-07": ExternalFactors(),
    }

    def factors_for(self, date: str) -> ExternalFactors | None:
        return self.table.get(date)


class AlternatingForewarner:
    """OK, ORANGE, RED, OK… on successive days."""

    def __init__(self) -> None:
        self.calls = 0

    def assess_config_dict(self, config: dict) -> MCReport:
        self.calls += 1
        return [MCReport(0.01, 0.5), MCReport(0.15, 0.5), MCReport(0.4, 0.5)][(self.calls - 1) % 3]


def _ob_provider(m: Market, seed: int) -> RecordedOBProvider:
    rng = np.random.default_rng(seed)
    n_rec = m.n_bars // 20
    ts = m.ts[:: 20][:n_rec]
    values = np.stack([rng.uniform(-0.3, 0.3, (n_rec, len(m.assets))), rng.uniform(0, 1, (n_rec, len(m.assets))),
                       rng.uniform(-0.4, 0.1, (n_rec, len(m.assets))), rng.uniform(0.1, 1.5, (n_rec, len(m.assets))),
                       rng.uniform(0, 1, (n_rec, len(m.assets)))], axis=-1)
    macro = np.stack([rng.integers(0, 2, n_rec).astype(float) * (rng.random(n_rec) < 0.2),
                      rng.integers(-1, 2, n_rec).astype(float), rng.uniform(-0.3, 0.3, n_rec)], axis=-1)
    return RecordedOBProvider(tuple(m.assets), ts, values, ts, macro)


def _compare(cfg: StrategyConfig, m: Market, *, acb: bool = False, mc: bool = False, ob: bool = False,
             acb_updates: bool = False) -> int:
    kwargs_fast: dict = {}
    kwargs_ref: dict = {}
    if acb:
        kwargs_fast["acb"] = AdaptiveCircuitBreaker(cfg.acb, DailyFactors())
        kwargs_ref["acb"] = AdaptiveCircuitBreaker(cfg.acb, DailyFactors())
    if mc:
        kwargs_fast["forewarner"] = AlternatingForewarner()
        kwargs_ref["forewarner"] = AlternatingForewarner()
    if ob:
        kwargs_fast["ob_provider"] = kwargs_ref["ob_provider"] = _ob_provider(m, 11)
    fast = NDAlphaEngine(cfg, m.assets, **kwargs_fast)
    ref = ReferenceEngine(cfg, m.assets, **kwargs_ref)
    per_day = m.n_bars // len(DAYS)
    for d, (date, posture) in enumerate(zip(DAYS, POSTURES)):
        start, stop = d * per_day, (d + 1) * per_day
        if not acb_updates:
            fast.process_day(date, *m.day(start, stop), posture=posture)
            ref.process_day(date, *m.day(start, stop), posture=posture)
            continue
        fast.begin_day(date, posture=posture)
        ref.begin_day(date, posture=posture)
        for chunk_start in range(start, stop, 97):          # sub-day ACB updates between chunks
            chunk_stop = min(stop, chunk_start + 97)
            boost = 1.3 if (chunk_start // 97) % 2 else 1.05
            fast.update_acb_boost(boost, 0.8)
            ref.update_acb_boost(boost, 0.8)
            fast.run_block(*m.day(chunk_start, chunk_stop))
            bar_idx, ts, vd, v750, vol_ok, prices = m.day(chunk_start, chunk_stop)
            for k in range(len(bar_idx)):
                row = {a: float(prices[k, j]) for j, a in enumerate(m.assets)}
                ref.step_bar(int(bar_idx[k]), float(vd[k]), row, float(v750[k]), bool(vol_ok[k]), int(ts[k]))
    assert len(fast.trades) == len(ref.trades)
    for got, want in zip(fast.trades, ref.trades):
        assert (got.trade_id, got.asset, got.entry_bar, got.exit_bar, got.exit_reason, got.bucket) == (
            want.trade_id, want.asset, want.entry_bar, want.exit_bar, want.exit_reason, want.bucket)
        for name in ("entry_price", "exit_price", "notional", "leverage", "fraction", "pnl", "pnl_pct", "entry_fee",
                     "exit_fee", "confidence", "capital_after"):
            assert getattr(got, name) == getattr(want, name), name
    assert fast.capital == ref.capital
    return len(fast.trades)


@pytest.fixture(scope="module")
def blue() -> StrategyConfig:
    return load_config("blue")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parity_plain(blue: StrategyConfig, seed: int) -> None:
    assert _compare(blue, random_market(seed, 8000, 12)) > 20


def test_parity_with_acb_mc_and_postures(blue: StrategyConfig) -> None:
    assert _compare(blue, random_market(4, 8000, 12), acb=True, mc=True) > 5


def test_parity_with_recorded_ob(blue: StrategyConfig) -> None:
    assert _compare(blue, random_market(5, 8000, 12), ob=True) > 5


def test_parity_with_subday_acb_updates(blue: StrategyConfig) -> None:
    assert _compare(blue, random_market(6, 8000, 12), acb_updates=True) > 5


def test_parity_with_vd_exits_and_venue_friction(blue: StrategyConfig) -> None:
    cfg = dataclasses.replace(blue, exits=dataclasses.replace(blue.exits, vd_enabled=True, vd_threshold=0.01),
                              friction=dataclasses.replace(blue.friction, use_sp_fees=False, use_sp_slippage=False))
    assert _compare(cfg, random_market(7, 8000, 12)) > 5


def test_parity_green_long(blue: StrategyConfig) -> None:
    m = random_market(8, 8000, 12)
    m = dataclasses.replace(m, vel_div=-m.vel_div)
    assert _compare(load_config("green"), m) > 5
