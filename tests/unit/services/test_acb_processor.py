"""The ACB processor: hand-worked §10.2/§10.3 verdicts over ExF readings, its triggers, and properties.

The expected boosts are worked by hand from the bible: base_boost = 1 + 0.5·ln(1 + signals)
once signals ≥ 1 (1 → 1.347, 2 → 1.549, 3 → 1.693); beta is 0.8 when the latest w750
velocity is at or above the trailing 60th percentile, else 0.2, × 1.25 under OB-4 stress.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolphin.bus import ExfLatest, ObMacro
from dolphin.bus.payloads import EXF_FACTORS
from dolphin.engine.params import AcbParams
from dolphin.services.acb.processor import DAY, EXF, OB, START, AcbProcessor, factors_of

pytestmark = [pytest.mark.engine]

NOW = 1_780_000_000.0
DAY_S = 86_400.0


def _exf(stale: tuple[str, ...] = (), **values: float | None) -> ExfLatest:
    base: dict[str, float | None] = {"funding_btc": 0.0001, "dvol_btc": 50.0, "fng": 60.0, "taker": 1.05}
    base.update(values)
    return ExfLatest(pushed_at=NOW, stale=list(stale), **base)  # type: ignore[arg-type]


def _processor(w750: list[float] | None = None, t0_s: float = NOW) -> AcbProcessor:
    proc = AcbProcessor(AcbParams(), writer="test:1")
    if w750 is not None:
        n = len(w750)
        proc.history.extend(np.arange(1, n + 1), (t0_s * 1000 + np.arange(n) * 5000).astype(np.int64),
                            np.asarray(w750, dtype=np.float64))
    return proc


@pytest.mark.parametrize(("exf", "signals", "boost"), [
    (_exf(), 0.0, 1.0),                                                       # neutral
    (_exf(dvol_btc=60.0), 0.5, 1.0),                                          # one mild signal: no boost yet
    (_exf(funding_btc=-0.0002), 1.0, 1.347),                                  # 1 + 0.5 ln 2
    (_exf(funding_btc=-0.0002, dvol_btc=85.0), 2.0, 1.549),                   # 1 + 0.5 ln 3
    (_exf(funding_btc=-0.0002, dvol_btc=85.0, taker=0.7), 3.0, 1.693),        # 1 + 0.5 ln 4
    (_exf(funding_btc=-0.0002, fng=20.0), 2.0, 1.549),                        # fear confirmed by funding
    (_exf(fng=10.0), 0.0, 1.0),                                               # fear alone is not confirmed
])
def test_hand_worked_boosts(exf: ExfLatest, signals: float, boost: float) -> None:
    proc = _processor()
    assert proc.step(NOW, exf, None) == START
    assert proc.payload is not None
    assert proc.payload.signals == signals
    assert proc.payload.boost == pytest.approx(boost, abs=5e-4)
    assert proc.payload.beta == 0.2                   # no w750 history: no macro view → beta_low


def test_a_stale_factor_does_not_count_and_is_named() -> None:
    proc = _processor()
    proc.step(NOW, _exf(stale=("dvol_btc",), funding_btc=-0.0002, dvol_btc=85.0), None)
    assert proc.payload is not None
    assert proc.payload.signals == 1.0 and proc.payload.boost == pytest.approx(1.347, abs=5e-4)
    assert proc.payload.stale_factors == ["dvol_btc"] and "dvol_btc" not in proc.payload.factors
    factors, dropped = factors_of(None)
    assert dropped == list(EXF_FACTORS) and all(math.isnan(getattr(factors, n)) for n in EXF_FACTORS)


def test_beta_from_the_trailing_w750_percentile_and_ob4_stress() -> None:
    history = [float(i) for i in range(200)]                 # 60th percentile (linear) = 119.4
    high = _processor(history + [150.0])
    high.step(NOW, _exf(), None)
    assert high.payload is not None and high.payload.beta == 0.8
    assert high.payload.w750_now == 150.0 and high.payload.w750_threshold == pytest.approx(np.percentile(
        history + [150.0], 60.0))
    low = _processor(history + [10.0])
    low.step(NOW, _exf(), None)
    assert low.payload is not None and low.payload.beta == 0.2
    stressed = _processor(history + [10.0])
    macro = ObMacro(bar_ms=int(NOW * 1000), cascade_count=3, regime_signal=1.0, market_imbalance=-0.4, assets=50,
                    pushed_at=NOW - 5)
    stressed.step(NOW, _exf(), macro)
    assert stressed.payload is not None and stressed.payload.beta == pytest.approx(0.25)   # 0.2 × 1.25
    assert stressed.payload.ob_stress is True
    old = ObMacro(bar_ms=int(NOW * 1000), cascade_count=3, regime_signal=1.0, market_imbalance=-0.4, assets=50,
                  pushed_at=NOW - 600)
    assert not stressed.ob_stress(old, NOW)                  # a stale macro lifts nothing


def test_triggers_start_exf_ob_day_and_nothing_for_a_move_that_crosses_no_threshold() -> None:
    proc = _processor([0.0] * 10, t0_s=NOW)
    assert proc.step(NOW, _exf(), None) == START
    assert proc.step(NOW + 1, _exf(dvol_btc=54.0), None) is None          # moved, crossed nothing
    assert proc.step(NOW + 2, _exf(funding_btc=-0.0002), None) == EXF      # crossed funding_very_bearish
    assert proc.payload is not None and proc.payload.trigger == EXF and proc.payload.computed_at == NOW + 2
    macro = ObMacro(bar_ms=int(NOW * 1000), cascade_count=3, regime_signal=1.0, market_imbalance=-0.4, assets=50,
                    pushed_at=NOW + 3)
    assert proc.step(NOW + 3, _exf(funding_btc=-0.0002), macro) == OB
    assert proc.step(NOW + 4, _exf(stale=("fng",), funding_btc=-0.0002), macro) == EXF   # a factor went stale
    proc.history.add(10_000, int((NOW + DAY_S) * 1000), 0.0)                # the market crossed midnight
    assert proc.step(NOW + 5, _exf(stale=("fng",), funding_btc=-0.0002), macro) == DAY
    assert proc.evaluations == 5
    stamped = proc.stamped(NOW + 6, fence=7)
    assert stamped.pushed_at == NOW + 6 and stamped.fence == 7 and stamped.computed_at == NOW + 5


finite_or_none = st.one_of(st.none(), st.floats(-0.01, 0.01, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(funding=finite_or_none, dvol=st.one_of(st.none(), st.floats(0.0, 300.0)),
       fng=st.one_of(st.none(), st.floats(0.0, 100.0)), taker=st.one_of(st.none(), st.floats(0.0, 3.0)),
       stale=st.sets(st.sampled_from(EXF_FACTORS)))
def test_properties_of_every_verdict(funding: float | None, dvol: float | None, fng: float | None,
                                     taker: float | None, stale: set[str]) -> None:
    """Boost is the §10.2 function of the signals, within [1, 1 + 0.5 ln 5]; staleness never raises it."""
    exf = ExfLatest(pushed_at=NOW, funding_btc=funding, dvol_btc=dvol, fng=fng, taker=taker,
                    stale=sorted(stale))
    proc = _processor()
    proc.step(NOW, exf, None)
    p = proc.payload
    assert p is not None and p.signals is not None
    assert 0.0 <= p.signals <= 4.0 and p.signals * 2 == int(p.signals * 2)
    assert 1.0 <= p.boost <= 1.0 + 0.5 * math.log(5.0) + 1e-12
    assert p.boost == (1.0 + 0.5 * math.log1p(p.signals) if p.signals >= 1.0 else 1.0)
    assert p.beta in (0.2, 0.8)
    assert set(p.factors) | set(p.stale_factors) == set(EXF_FACTORS)
    assert not set(p.factors) & set(p.stale_factors)
    fresh = ExfLatest(pushed_at=NOW, funding_btc=funding, dvol_btc=dvol, fng=fng, taker=taker)
    ref = _processor()
    ref.step(NOW, fresh, None)
    assert ref.payload is not None and ref.payload.boost >= p.boost      # a stale factor never raises size
