"""Fixtures of the trader's unit tests: one synthetic day of scans and the blue strategy."""

from __future__ import annotations

import pytest

from dolphin.backtest.synthetic import synthetic_scan_table
from dolphin.config import load_config


@pytest.fixture(scope="module")
def market():
    table, _ = synthetic_scan_table(1, 7)
    return table


@pytest.fixture(scope="module")
def blue():
    return load_config("blue")
