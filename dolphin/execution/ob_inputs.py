"""The OB features a trader step acts on: taken from the feed, journaled, replayed (bible §9, §20.4).

Each live step freezes what the OB feed offers for its bar (`ObFeed.at`) into the
engine's layout — per engine asset the five §9 columns, then the three macro columns —
as one flat list of floats. That list is journaled with the step's input, and the step's
engine reads it through `StepOBProvider`; recovery and `backtest --journal` rebuild the
same block from the journal, so OB-driven decisions replay bit for bit.

Where a feature is missing (an asset OBF has no bar for, a field an older writer leaves
out) the engine's neutral value stands in; the step records where its OB came from
(`ObSource`) so the operator sees a trader running without real books.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dolphin.bus.ob_feed import ObView
from dolphin.engine.ob import (
    NEUTRAL_ASSET,
    NEUTRAL_MACRO,
    OB_ASSET_FIELDS,
    OB_MACRO_FIELDS,
    OBBlock,
    RecordedOBProvider,
)
from dolphin.enums import ObSource

N_ASSET = len(OB_ASSET_FIELDS)
N_MACRO = len(OB_MACRO_FIELDS)


def flat_from_view(view: ObView, assets: Sequence[str]) -> tuple[list[float], int]:
    """The engine-ordered flat values of a view and how many engine assets had a real bar."""
    out: list[float] = []
    covered = 0
    for asset in assets:
        f = view.features.get(asset)
        if f is None:
            out += NEUTRAL_ASSET.tolist()
            continue
        covered += 1
        for k, name in enumerate(OB_ASSET_FIELDS):
            value = getattr(f, name)
            out.append(float(NEUTRAL_ASSET[k]) if value is None else float(value))
    m = view.macro
    if m is None:
        out += NEUTRAL_MACRO.tolist()
    else:
        out += [float(m.cascade_count), float(m.regime_signal), float(m.market_imbalance)]
    return out, covered


def block_from_flat(flat: Sequence[float], n_assets: int) -> OBBlock:
    """One bar's block from its journaled values (ValueError when the length does not fit)."""
    if len(flat) != n_assets * N_ASSET + N_MACRO:
        raise ValueError(f"OB input has {len(flat)} values, {n_assets} assets need {n_assets * N_ASSET + N_MACRO}")
    values = np.asarray(flat, dtype=np.float64)
    return OBBlock(values[: n_assets * N_ASSET].reshape(1, n_assets, N_ASSET), values[n_assets * N_ASSET:][None, :])


def neutral_block(n_bars: int, n_assets: int) -> OBBlock:
    return OBBlock(np.tile(NEUTRAL_ASSET, (n_bars, n_assets, 1)), np.tile(NEUTRAL_MACRO, (n_bars, 1)))


class StepOBProvider:
    """The engine's OB provider in a trader: the block of the step being taken, neutral otherwise."""

    def __init__(self) -> None:
        self.current: OBBlock | None = None

    def block(self, ts_ms: np.ndarray, assets: list[str]) -> OBBlock:
        if self.current is not None and len(ts_ms) == 1:
            return self.current
        return neutral_block(len(ts_ms), len(assets))


def recorded_provider(steps: Sequence[tuple[int, Sequence[float]]], assets: Sequence[str]) -> RecordedOBProvider:
    """A replay's provider from journaled steps ``(ts_ms, flat)`` in scan order (as-of each bar)."""
    n = len(assets)
    ts = np.fromiter((t for t, _ in steps), dtype=np.int64, count=len(steps))
    values = np.empty((len(steps), n, N_ASSET))
    macro = np.empty((len(steps), N_MACRO))
    for i, (_, flat) in enumerate(steps):
        block = block_from_flat(flat, n)
        values[i] = block.asset[0]
        macro[i] = block.macro[0]
    return RecordedOBProvider(symbols=tuple(assets), asset_ts=ts, asset_values=values, macro_ts=ts.copy(),
                              macro_values=macro)


def source_of(view: ObView, covered: int, fallback: bool) -> ObSource:
    if covered == 0 and view.macro is None:
        return ObSource.NONE
    return ObSource.FALLBACK if fallback else ObSource.BUS


__all__ = ["StepOBProvider", "block_from_flat", "flat_from_view", "neutral_block", "recorded_provider", "source_of"]
