"""Shared inputs for the scan tests: seeded factor-model markets with the defects real feeds have."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

PriceFactory = Callable[..., np.ndarray]


def factor_prices(T: int, n: int, seed: int = 0, factors: int = 3, noise: float = 0.8,
                  vol: float = 1e-3) -> np.ndarray:
    """A correlated random walk: returns = vol·(F·L + noise·ε), prices start at 100."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((T, factors))
    load = rng.uniform(0.1, 0.9, (factors, n)) * (0.6 ** np.arange(factors))[:, None]
    r = vol * (f @ load + noise * rng.standard_normal((T, n)))
    return 100.0 * np.exp(np.cumsum(r, axis=0))


def inject_defects(P: np.ndarray) -> np.ndarray:
    """Missing candles, zero/negative/inf prices, a price that freezes, an asset that lists late."""
    P = P.copy()
    T, n = P.shape
    P[T // 4:T // 4 + 7, 1] = np.nan          # a gap
    P[T // 3, 2] = 0.0                         # zero price
    P[T // 2, 3] = -5.0                        # negative price
    P[2 * T // 3, 4] = np.inf                  # inf
    P[T // 2:, 5] = P[T // 2, 5]               # frozen from the middle on
    P[: T // 5, 6] = np.nan                    # lists late
    return P


@pytest.fixture
def make_prices() -> PriceFactory:
    return factor_prices


@pytest.fixture
def with_defects() -> Callable[[np.ndarray], np.ndarray]:
    return inject_defects


@pytest.fixture
def defective_prices() -> np.ndarray:
    """Default-window-sized series (900 bars × 9 assets) with every defect injected."""
    return inject_defects(factor_prices(900, 9, seed=11))
