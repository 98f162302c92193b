"""Fixtures of the parity unit tests: the first hours of one synthetic day (generated once per worker) and blue."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.backtest.synthetic import synthetic_scan_table
from dolphin.config import load_config
from tests.unit.parity.support import ROWS


@pytest.fixture(scope="session")
def market():
    table, _ = synthetic_scan_table(1, 7)
    return table.take(np.arange(ROWS))


@pytest.fixture(scope="module")
def blue():
    return load_config("blue")
