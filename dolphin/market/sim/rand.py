"""Counter-based random numbers: a pure function of (seed, stream, keys…), vectorised.

Why not a seeded generator: the simulator must give the same book for a symbol at a
given 100 ms bucket whatever happened before (restarts, which streams were subscribed,
how far the clock skipped while catching up). A counter-based hash (splitmix64 over the
keys) has no state to replay: any value is computed directly from its coordinates, for
a whole vector of symbols at once with a few numpy integer operations.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / float(1 << 53)

BOOK = 101
"""Keys: symbol, 100 ms bucket, draw index — book quantities, gaps and spread noise."""
WITHDRAWAL = 102
"""Keys: 10-minute window — liquidity-withdrawal episode schedule."""
TRADE = 103
"""Keys: symbol, bar, trade index — aggTrade quantity split and taker side."""
PATH = 104
"""Keys: symbol, bar — intra-bar paths of replayed klines."""
DEEP = 105
"""Keys: symbol, absolute grid index, refresh epoch — quantities deep in the book."""
LIQUIDATION = 106
"""Keys: symbol, second — the market's forced liquidations during cascades."""
PANIC = 107
"""Keys: episode onset bar, symbol — how much of its book a symbol's makers pull around a panic."""


def _mix(z: np.ndarray) -> np.ndarray:
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def hash64(seed: int, stream: int, *keys: int | np.ndarray) -> np.ndarray:
    """splitmix64 of the keys chained; array keys broadcast together (result ≥ 1-d, uint64)."""
    with np.errstate(over="ignore"):
        h = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) ^ np.uint64(stream))
        for key in keys:
            k = np.asarray(key)
            if k.dtype.kind == "i":
                k = k.astype(np.int64).view(np.uint64) if k.ndim else np.array([int(k) & 0xFFFFFFFFFFFFFFFF],
                                                                                 dtype=np.uint64)
            else:
                k = k.astype(np.uint64)
            h = _mix(h ^ k)
        return h


def uniform(seed: int, stream: int, *keys: int | np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1) (53-bit), one per broadcast key combination."""
    return (hash64(seed, stream, *keys) >> _S11).astype(np.float64) * _INV53
