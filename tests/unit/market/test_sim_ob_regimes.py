"""The simulator's books make the OB features move: panics stress the order-book regime (docs/obf.md)."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.enums import ObRegime
from dolphin.market.ob_features import OB_BAR_MS
from dolphin.market.sim.books import BookModel
from dolphin.market.sim.config import DAY_MS, SimConfig
from dolphin.market.sim.ob_regimes import bar_macros
from dolphin.market.sim.source import make_source

pytestmark = [pytest.mark.data_integrity]

WARM_BARS = 120          # ten minutes of bars before each episode: depth quality needs a reference
AFTER_BARS = 60          # five minutes after the panic ends


def test_every_panic_of_a_synthetic_day_stresses_the_books_before_it_ends() -> None:
    src = make_source(SimConfig(symbols=50, seed=7))
    model = BookModel(7, src)
    cols = np.arange(50)
    episodes = [e for e in src.instability_episodes(src.first_ms + DAY_MS) if e.direction != 0
                and src.bar_open_ms(e.start_bar) >= src.first_ms + DAY_MS]
    assert len(episodes) >= 5, "a synthetic day has several panics and squeezes"
    cascades = 0
    for e in episodes:
        panic_end = e.onset_bar + e.fracture_bars + e.panic_bars
        first = e.start_bar - WARM_BARS
        bars = list(bar_macros(model, cols, src.bar_open_ms(first) + OB_BAR_MS, panic_end + AFTER_BARS - first))
        window = bars[WARM_BARS:]
        regimes = [b.macro.regime for b in window]
        assert ObRegime.STRESS in regimes, f"no STRESS bar around the {e.kind} at bar {e.onset_bar}"
        # makers pull at the fracture: STRESS within the first minute after the onset
        onset = e.onset_bar - e.start_bar
        assert ObRegime.STRESS in regimes[onset:onset + 12], f"the fracture at bar {e.onset_bar} did not stress"
        cascades += sum(b.macro.cascade_count for b in window)
    assert cascades > 0, "panics cascade across assets"


def test_without_panic_withdrawals_the_fractures_pass_unnoticed() -> None:
    """The baseline: the same books with the panic withdrawals off leave most fractures unstressed."""
    src = make_source(SimConfig(symbols=50, seed=7))
    with_panics, without = BookModel(7, src), BookModel(7, src, panic_withdrawals=False)
    e = next(e for e in src.instability_episodes(src.first_ms + DAY_MS) if e.direction != 0)
    first = e.onset_bar - WARM_BARS
    on = [b.macro.regime for b in bar_macros(with_panics, np.arange(50), src.bar_open_ms(first) + OB_BAR_MS,
                                             WARM_BARS + 12)][WARM_BARS:]
    off = [b.macro.regime for b in bar_macros(without, np.arange(50), src.bar_open_ms(first) + OB_BAR_MS,
                                              WARM_BARS + 12)][WARM_BARS:]
    assert on.count(ObRegime.STRESS) > off.count(ObRegime.STRESS)
