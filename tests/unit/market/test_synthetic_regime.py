"""Regime calibration (vel_div episodes), the schedule, external factors and funding."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.market.synthetic import SyntheticConfig, SyntheticMarket
from dolphin.market.synthetic import calibration as cal
from dolphin.market.synthetic.factors import FUNDING_PERIOD_MS


def test_fast_lambda_share_matches_lapack() -> None:
    """The running-sum + power-iteration share equals eigvalsh on the window's correlation."""
    bars = SyntheticMarket(SyntheticConfig(seed=4, n_symbols=20)).generate(0, 900)
    returns = np.diff(np.log(bars.close), axis=0)
    for window in (50, 750):
        share = cal.lambda_share(bars.close, window)
        assert np.all(np.isnan(share[:window])) and not np.any(np.isnan(share[window:]))
        for bar in np.linspace(window, 899, 12).astype(int):
            block = returns[bar - window: bar]
            expected = np.linalg.eigvalsh(np.corrcoef(block, rowvar=False))[-1] / 20
            assert share[bar] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_episode_counting_follows_the_engine_hold() -> None:
    vd = np.zeros(1000)
    # 11 continues 10's dip; 50 falls within 10's hold; 320 is the bar 200's hold ends.
    vd[[10, 11, 50, 200, 320, 330, 331, 700]] = -0.03
    assert cal.crossings(vd).tolist() == [10, 50, 200, 320, 330, 700]
    assert cal.episodes(vd).tolist() == [10, 200, 330, 700]
    with pytest.raises(ValueError, match="gap"):
        cal.episodes(vd, gap=0)


@pytest.mark.parametrize("seed", [7, 11])
def test_vel_div_fires_5_to_30_times_a_day_mostly_at_episode_onsets(seed: int) -> None:
    # Two days: one day holds 8-12 scheduled episodes, so its onset-hit share moves by
    # ±15 % with the draw alone (measured over 40 seeds, stream versions 1 and 2 alike:
    # 78-83 % of single days pass, 97 % of two-day spans).
    market = SyntheticMarket(SyntheticConfig(seed=seed))
    report = cal.calibrate(market, days=2)
    assert all(5 <= n <= 30 for n in report.episodes_per_day), report.summary()
    scheduled = sum(report.scheduled_per_day)
    assert min(report.scheduled_per_day) >= 5
    assert report.onset_hits >= 0.7 * scheduled, report.summary()
    # Tradeable but no money machine: some episodes reach the 0.95 % take-profit, many do not.
    hit = report.forward.hit_rate(0.0095, top=1)
    assert 0.1 <= hit <= 0.7, report.summary()
    assert np.any(report.forward.end_return[:, 0] > 0.002), "some shorts lose"


def test_schedule_is_seeded_mostly_bearish_and_within_its_day() -> None:
    market = SyntheticMarket(SyntheticConfig(seed=7))
    again = SyntheticMarket(SyntheticConfig(seed=7))
    other = SyntheticMarket(SyntheticConfig(seed=8))
    episodes = [e for d in range(120) for e in market.episodes(d)]
    assert episodes[:20] == [e for d in range(3) for e in again.episodes(d)][:20]
    assert [e.onset_bar for e in other.episodes(0)] != [e.onset_bar for e in market.episodes(0)]
    per_day = market.bars_per_day
    for d in range(120):
        onsets = [e.onset_bar for e in market.episodes(d)]
        assert onsets == sorted(onsets) and all(d * per_day <= o < (d + 1) * per_day for o in onsets)
    kinds = [e.kind for e in episodes]
    downs, ups, falses = kinds.count("panic"), kinds.count("squeeze"), kinds.count("false_alarm")
    assert downs > 2.5 * ups and 0.05 < falses / len(kinds) < 0.3
    assert 7 <= len(episodes) / 120 <= 14
    for e in episodes:
        assert e.start_bar < e.onset_bar < e.panic_bar < e.end_bar
        assert 0.0 <= e.reversion <= 1.0 and e.dispersion > 1.0 and 0.0 < e.decorrelation < 1.0
        assert (e.move > 0) == (e.direction != 0)


def test_no_episodes_when_switched_off() -> None:
    market = SyntheticMarket(SyntheticConfig(seed=7, episodes_per_day=0))
    assert all(market.episodes(d) == () for d in range(10))


def test_external_factors_are_in_range_and_track_instability() -> None:
    market = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=2))
    days = range(400)
    factors = [market.external_factors(d) for d in days]
    inst = np.array([market.instability(d) for d in days])
    cols = {k: np.array([getattr(f, k) for f in factors]) for k in ("funding_btc", "dvol_btc", "fng", "taker")}
    assert np.all(np.abs(cols["funding_btc"]) <= 4e-4) and 0.3 < np.mean(np.abs(cols["funding_btc"]) < 2e-4)
    assert np.all((35 <= cols["dvol_btc"]) & (cols["dvol_btc"] <= 110))
    assert np.all((5 <= cols["fng"]) & (cols["fng"] <= 95))
    assert np.all((0.6 <= cols["taker"]) & (cols["taker"] <= 1.4))
    assert np.all((0.0 <= inst) & (inst <= 1.0)) and 0.15 < np.std(inst) < 0.35
    # More instability → more bearish factors (ACB v6 reads them as bearish signals).
    assert np.corrcoef(inst, cols["dvol_btc"])[0, 1] > 0.7
    assert np.corrcoef(inst, cols["fng"])[0, 1] < -0.7
    assert np.corrcoef(inst, cols["taker"])[0, 1] < -0.7
    assert np.corrcoef(inst, cols["funding_btc"])[0, 1] < -0.5
    # Persistent: neighbouring days are alike.
    assert np.corrcoef(inst[:-1], inst[1:])[0, 1] > 0.4
    assert market.external_factors(5) == SyntheticMarket(SyntheticConfig(seed=7)).external_factors(5)
    assert set(factors[0].as_dict()) == {"funding_btc", "dvol_btc", "fng", "taker"}


def test_unstable_days_have_more_episodes() -> None:
    market = SyntheticMarket(SyntheticConfig(seed=9))
    inst = np.array([market.instability(d) for d in range(200)])
    counts = np.array([len(market.episodes(d)) for d in range(200)])
    assert np.corrcoef(inst, counts)[0, 1] > 0.5


def test_funding_rates_per_period() -> None:
    market = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=30))
    start = market.config.start_ms
    rates = market.funding_rates(start)
    assert rates.shape == (30,) and np.all(np.abs(rates) <= 0.003)
    assert np.array_equal(rates, np.rint(rates * 1e8) / 1e8)
    assert abs(rates[0] - market.external_factors(0).funding_btc) < 1e-4
    assert np.array_equal(rates, market.funding_rates(start + FUNDING_PERIOD_MS - 1))
    assert not np.array_equal(rates, market.funding_rates(start + FUNDING_PERIOD_MS))
    assert market.next_funding_ms(start) == start + FUNDING_PERIOD_MS
    assert market.next_funding_ms(start + FUNDING_PERIOD_MS) == start + 2 * FUNDING_PERIOD_MS
