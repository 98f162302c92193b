"""Named, keyed random streams: the whole market's randomness in one place.

Why keyed streams instead of one generator: a stream keyed by (seed, purpose, position)
can be drawn in any order and on its own — hour 900 without hours 0–899, symbol 400
without symbols 0–399 — and adding a consumer of randomness never shifts another's draws.
Each key is fed to ``numpy.random.SeedSequence``, whose hashing and the PCG64 bit stream
are platform independent.
"""

from __future__ import annotations

import numpy as np

STREAM_VERSION = 1
"""Version of the market's random streams and of how prices are built from them: the same
seed and version give the same market bit for bit. Bumped on every change that moves a price
(see docs/synthetic_market.md, "Stream versions")."""

MARKET = 1
"""Per chunk: the market factor's bar shocks and intra-bar bridge."""
IDIO = 2
"""Per chunk and symbol block: idiosyncratic shocks, tail scales and volume noise."""
ANCHOR = 3
"""Per hour: the slowly varying calm loading and volatility levels."""
DAY = 4
"""Per day: the day's latent instability draw."""
EPISODE = 5
"""Per day: the instability episode schedule."""
SYMBOL = 6
"""Per symbol: static properties (price jitter, beta, idiosyncratic volatility)."""
EXTERNAL = 7
"""Per day: the ACB external factors."""
FUNDING = 8
"""Per day and 8 h funding period: per-symbol funding rates."""

SYMBOL_BLOCK = 10
"""Symbols per idiosyncratic stream: columns stay identical whatever ``n_symbols`` is."""


def rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A fresh PCG64 generator for ``(seed, stream, *keys)``; keys must be non-negative."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, *keys])))
