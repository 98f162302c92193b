"""Named, keyed random streams: the whole market's randomness in one place.

Why keyed streams instead of one generator: a stream keyed by (seed, purpose, position)
can be drawn in any order and on its own — hour 900 without hours 0–899, symbol 400
without symbols 0–399 — and adding a consumer of randomness never shifts another's draws.
Each key is fed to ``numpy.random.SeedSequence``, whose hashing and the PCG64 bit stream
are platform independent.
"""

from __future__ import annotations

import numpy as np

from dolphin.market.symbols import MAX_UNIVERSE

STREAM_VERSION = 2
"""Version of the market's random streams and of how prices are built from them: the same
seed and version give the same market bit for bit. Bumped on every change that moves a price
(see docs/synthetic_market.md, "Stream versions")."""

BARS = 9
"""Per chunk: raw words of every bar — per symbol block the shocks and tails, then the market
factor (stream version 2; ids 1 and 2 were version 1's market and idiosyncratic streams)."""
PATH = 10
"""Per chunk: raw words of the 1 s bridges inside every bar (per symbol block, then common)."""
VOLUME = 11
"""Per chunk: raw words of the volume noise of every bar (per symbol block)."""
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
"""Symbols per block of a chunk's words: columns stay identical whatever ``n_symbols`` is."""
MAX_BLOCKS = -(-MAX_UNIVERSE // SYMBOL_BLOCK)
"""Blocks of the widest universe: where a chunk's common words start."""


def rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A fresh PCG64 generator for ``(seed, stream, *keys)``; keys must be non-negative."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, *keys])))


def _words(seed: int, stream: int, chunk: int, per_block: int, n_symbols: int,
           common: int) -> tuple[np.ndarray, np.ndarray]:
    """The first blocks covering ``n_symbols`` and the common words of one chunk's stream.

    Layout of the stream: block b's ``per_block`` words at offset ``b · per_block``, the
    ``common`` words after the widest universe's blocks. A narrow market reads a prefix
    of the same words a wide one does (then jumps: PCG64 advances in O(log n)), so its
    columns are the wide market's first columns bit for bit.
    """
    bits = np.random.PCG64(np.random.SeedSequence([seed, stream, chunk]))
    blocks = -(-n_symbols // SYMBOL_BLOCK)
    words = bits.random_raw(blocks * per_block)
    bits.advance((MAX_BLOCKS - blocks) * per_block)
    return words, bits.random_raw(common)


def bar_words(seed: int, chunk: int, bars: int, n_symbols: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk ``chunk``'s bar words: (blocks, bars, 10) per symbol, (bars, 2) for the market."""
    words, common = _words(seed, BARS, chunk, bars * SYMBOL_BLOCK, n_symbols, bars * 2)
    return words.reshape(-1, bars, SYMBOL_BLOCK), common.reshape(bars, 2)


def volume_words(seed: int, chunk: int, bars: int, n_symbols: int) -> np.ndarray:
    """Chunk ``chunk``'s volume-noise words: (blocks, bars, 10)."""
    words, _ = _words(seed, VOLUME, chunk, bars * SYMBOL_BLOCK, n_symbols, 0)
    return words.reshape(-1, bars, SYMBOL_BLOCK)


def path_words(seed: int, chunk: int, bars: int, seconds: int, n_symbols: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk ``chunk``'s 1 s bridge words: (blocks, bars, seconds, 10) per symbol, (bars, seconds) common."""
    words, common = _words(seed, PATH, chunk, bars * seconds * SYMBOL_BLOCK, n_symbols, bars * seconds)
    return words.reshape(-1, bars, seconds, SYMBOL_BLOCK), common.reshape(bars, seconds)
