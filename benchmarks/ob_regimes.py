"""OB regimes of a synthetic day: bars per regime (CALM / NEUTRAL / STRESS) of the simulator's books.

The simulator's books (`dolphin.market.sim.books.BookModel`, seed 7 by default) for the 50
priority symbols, one UTC day of 5 s bars (17,280), through the OBF daemon's own feature
code (`dolphin.market.sim.ob_regimes.bar_macros`: `book_problem`, `snapshot_of`,
`AssetTracker`, `macro_of`) — what `obf` publishes as ``ob_macro_latest`` on a
``depth5@100ms`` subscription of the simulator. Side by side in the same run: the same day
with the books as they were before makers pulled around panics (`panic_withdrawals=False`:
only the random withdrawal episodes, and cascades that thin only the side being hit), and
where the STRESS bars fall relative to the day's scheduled instability episodes
(precursor start … panic end + 5 minutes).

    /work/venv/bin/python -m benchmarks.ob_regimes            # --seed 7 --day 1 [--hours 24]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

import numpy as np

from dolphin.enums import ObRegime
from dolphin.market.ob_features import OB_BAR_MS
from dolphin.market.sim.books import BookModel
from dolphin.market.sim.config import DAY_MS, SimConfig
from dolphin.market.sim.ob_regimes import bar_macros
from dolphin.market.sim.source import make_source

AFTER_BARS = 60


def _run(model: BookModel, first_close: int, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    started = time.perf_counter()
    regimes, cascades = [], []
    for bar in bar_macros(model, np.arange(50), first_close, n):
        regimes.append(bar.macro.regime_signal)
        cascades.append(bar.macro.cascade_count)
    return np.array(regimes), np.array(cascades), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--day", type=int, default=1, help="day of the synthetic market (day 0 has no history behind it)")
    p.add_argument("--hours", type=float, default=24.0)
    args = p.parse_args(argv)
    src = make_source(SimConfig(symbols=50, seed=args.seed))
    day_start = src.first_ms + args.day * DAY_MS
    n = int(args.hours * 3600 * 1000) // OB_BAR_MS
    first_close = day_start + OB_BAR_MS
    near = np.zeros(n, dtype=bool)
    episodes = [e for e in src.instability_episodes(day_start + DAY_MS - 1)
                if day_start <= src.bar_open_ms(e.start_bar) < day_start + n * OB_BAR_MS]
    for e in episodes:
        near[_window(src, e, day_start, n)] = True
    results = {}
    for label, panics in (("panic withdrawals on (shipped)", True), ("panic withdrawals off (baseline)", False)):
        results[label] = _run(BookModel(args.seed, src, panic_withdrawals=panics), first_close, n)

    kinds = Counter(e.kind for e in episodes)
    print(f"synthetic market seed {args.seed}, day {args.day}, {n:,} bars of 5 s, 50 priority symbols; "
          f"{len(episodes)} instability episodes ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), "
          f"{int(near.sum()):,} bars near them")
    print(f"{'books':<34}{'CALM':>8}{'NEUTRAL':>9}{'STRESS':>8}{'cascade bars':>14}{'STRESS near':>13}"
          f"{'STRESS away':>13}{'bars/s':>9}")
    for label, (reg, casc, secs) in results.items():
        counts = {r: int((reg == r.signal).sum()) for r in ObRegime}
        stress = reg == ObRegime.STRESS.signal
        print(f"{label:<34}{counts[ObRegime.CALM]:>8,}{counts[ObRegime.NEUTRAL]:>9,}{counts[ObRegime.STRESS]:>8,}"
              f"{int((casc > 0).sum()):>14,}{int((stress & near).sum()):>13,}{int((stress & ~near).sum()):>13,}"
              f"{n / secs:>9,.0f}")
    on, off = results["panic withdrawals on (shipped)"][0], results["panic withdrawals off (baseline)"][0]
    s_on, s_off = on == 1.0, off == 1.0
    dens_near, dens_away = s_on[near].mean(), s_on[~near].mean()
    print(f"STRESS share near episodes / elsewhere: {dens_near:.1%} / {dens_away:.1%} "
          f"({dens_near / max(dens_away, 1e-9):.1f}×); near episodes, shipped / baseline STRESS bars: "
          f"{int((s_on & near).sum())} / {int((s_off & near).sum())}")
    stressed = sum(1 for e in episodes if e.direction != 0 and s_on[_window(src, e, day_start, n)].any())
    panics = sum(1 for e in episodes if e.direction != 0)
    print(f"panics and squeezes with STRESS bars in their window: {stressed} of {panics}")
    return 0


def _window(src: Any, e: Any, day_start: int, n: int) -> slice:
    """Bars of the day from an episode's precursor start to 5 minutes after its panic."""
    lo = (src.bar_open_ms(e.start_bar) - day_start) // OB_BAR_MS
    end = e.onset_bar + e.fracture_bars + e.panic_bars + AFTER_BARS
    return slice(max(0, lo), min(n, (src.bar_open_ms(end) - day_start) // OB_BAR_MS))


if __name__ == "__main__":
    raise SystemExit(main())
