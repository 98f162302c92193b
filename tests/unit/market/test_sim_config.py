"""Simulator configuration: validation, --symbols/--start parsing, credentials precedence, start time."""

from __future__ import annotations

import pytest

from dolphin.market.errors import SimConfigError
from dolphin.market.sim.app import resolve_start
from dolphin.market.sim.config import DEFAULT_API_KEY, SimConfig, credentials, parse_start, parse_symbols

from .test_sim_clock import DAY_MS, source


def test_parse_symbols() -> None:
    assert parse_symbols("540") == 540 and parse_symbols(None) is None and parse_symbols(" ") is None
    assert parse_symbols("btcusdt, ETHUSDT,btcusdt") == ("BTCUSDT", "ETHUSDT")
    with pytest.raises(SimConfigError):
        parse_symbols("BTC-USDT")


def test_parse_start() -> None:
    assert parse_start("1767657600000") == 1767657600000
    assert parse_start("2026-01-06T00:00:00Z") == 1767657600000
    assert parse_start("2026-01-06") == 1767657600000
    assert parse_start(None) is None
    with pytest.raises(SimConfigError):
        parse_start("yesterday")


@pytest.mark.parametrize("kwargs", [dict(port=70000), dict(speed=0), dict(symbols=0), dict(symbols=541),
                                    dict(tick_ms=5), dict(balance=-1), dict(api_key=""), dict(default_leverage=200)])
def test_bad_configs_are_refused(kwargs: dict) -> None:
    with pytest.raises(SimConfigError):
        SimConfig(**kwargs)


def test_credentials_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DOLPHIN_SIM_API_KEY", "DOLPHIN_SIM_API_SECRET", "DOLPHIN_BINANCE_API_KEY",
                 "DOLPHIN_BINANCE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert credentials() == (DEFAULT_API_KEY, "dolphin-sim-secret", True)
    monkeypatch.setenv("DOLPHIN_BINANCE_API_KEY", "bk")
    monkeypatch.setenv("DOLPHIN_BINANCE_API_SECRET", "bs")
    assert credentials() == ("bk", "bs", False)
    monkeypatch.setenv("DOLPHIN_SIM_API_KEY", "sk")
    monkeypatch.setenv("DOLPHIN_SIM_API_SECRET", "ss")
    assert credentials() == ("sk", "ss", False)
    assert credentials("k", "s") == ("k", "s", False)
    assert "secret" not in repr(SimConfig(api_secret="secret"))


def test_default_start_leaves_a_day_of_history() -> None:
    src = source(10)
    start = resolve_start(SimConfig(), src)
    assert src.first_ms + DAY_MS <= start < src.first_ms + 2 * DAY_MS
    assert (start - src.first_ms) % src.bar_ms == 0
    assert resolve_start(SimConfig(start_ms=src.first_ms + 5), src) == src.first_ms + 5
    with pytest.raises(SimConfigError):
        resolve_start(SimConfig(start_ms=src.first_ms - 1), src)


def test_default_synthetic_start_is_minutes_before_the_first_panic_signal() -> None:
    """A newcomer's family trades within minutes: the schedule, not the engine, is tuned."""
    import numpy as np

    from dolphin.market.sim.source import PANIC_LEAD_MS, SIGNAL_GATE
    from dolphin.scan import build_scan_features

    src = source(50)
    start = resolve_start(SimConfig(symbols=50), src)
    bar = (start + PANIC_LEAD_MS - src.first_ms) // src.bar_ms
    closes = src.market.generate(0, bar + 1).close
    assert build_scan_features(np.ascontiguousarray(closes)).vel_div[bar] < SIGNAL_GATE
    assert any(e.kind == "panic" and e.direction < 0
               and e.onset_bar <= bar < e.onset_bar + e.fracture_bars + e.panic_bars for e in src.market.episodes(1))
