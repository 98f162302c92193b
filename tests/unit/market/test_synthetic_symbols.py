"""The symbol universe: priority block, real names, synthetic fill, argument validation."""

from __future__ import annotations

import re

import pytest

from dolphin.market.symbols import (
    MAX_UNIVERSE,
    N_REAL_SYMBOLS,
    PRIORITY_SYMBOLS,
    symbol_index,
    universe,
)

_TICKER = re.compile(r"^[0-9A-Z]+USDT$")


def test_priority_symbols_are_fifty_unique_usdt_perps_led_by_btc_and_eth() -> None:
    assert len(PRIORITY_SYMBOLS) == 50
    assert len(set(PRIORITY_SYMBOLS)) == 50
    assert PRIORITY_SYMBOLS[:4] == ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
    assert all(_TICKER.match(s) for s in PRIORITY_SYMBOLS)


@pytest.mark.parametrize("n", [1, 2, 50, 51, N_REAL_SYMBOLS, N_REAL_SYMBOLS + 1, 400, MAX_UNIVERSE])
def test_universe_is_a_prefix_of_one_ordered_list(n: int) -> None:
    names = universe(n)
    assert len(names) == n
    assert len(set(names)) == n
    assert all(_TICKER.match(s) for s in names)
    assert names == universe(MAX_UNIVERSE)[:n]
    assert names[: min(n, 50)] == list(PRIORITY_SYMBOLS[: min(n, 50)])


def test_universe_has_at_least_200_real_names_then_synthetic_ones() -> None:
    full = universe(MAX_UNIVERSE)
    assert N_REAL_SYMBOLS >= 200
    assert not any(s.startswith("SYN0") for s in full[:N_REAL_SYMBOLS])
    assert full[N_REAL_SYMBOLS] == "SYN001USDT"
    assert all(re.match(r"^SYN\d{3}USDT$", s) for s in full[N_REAL_SYMBOLS:])


@pytest.mark.parametrize("bad", [0, -1, MAX_UNIVERSE + 1, 2.0, "50", True, None])
def test_universe_rejects_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="universe size"):
        universe(bad)  # type: ignore[arg-type]


def test_symbol_index_round_trips_and_rejects_unknown_names() -> None:
    for i, name in enumerate(universe(MAX_UNIVERSE)):
        assert symbol_index(name) == i
    with pytest.raises(ValueError, match="not in the"):
        symbol_index("NOPEUSDT")
