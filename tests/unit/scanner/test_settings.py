"""The scanner's CLI and settings: precision flag, services config, DOLPHIN_MARKET* environment."""

from __future__ import annotations

import pytest

from dolphin.config.services import services_from_mapping
from dolphin.market.symbols import universe
from dolphin.services.scanner.__main__ import parse_args
from dolphin.services.scanner.service import ScannerOptions, resolve_settings

pytestmark = [pytest.mark.config, pytest.mark.cli]


def test_precision_flag() -> None:
    assert parse_args([]).precision is None
    assert parse_args(["--precision", "arb512"]).precision == "arb512"
    with pytest.raises(SystemExit):
        parse_args(["--precision", "float32"])


def test_settings_come_from_the_config_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOLPHIN_MARKET", raising=False)
    monkeypatch.setenv("DOLPHIN_MARKET_REST_URL", "http://127.0.0.1:9911")
    monkeypatch.setenv("DOLPHIN_MARKET_WS_URL", "ws://127.0.0.1:9911")
    cfg = services_from_mapping({"scanner": {"symbols": 20, "precision": "arb512"}})
    s = resolve_settings(ScannerOptions(), cfg)
    assert s.symbols == tuple(universe(20)) and s.precision == "arb512" and s.bar_ms == 5_000
    assert (s.source, s.bars, s.history) == ("sim", "kline", "klines")
    assert (s.rest_url, s.ws_url) == ("http://127.0.0.1:9911", "ws://127.0.0.1:9911")
    assert resolve_settings(ScannerOptions(precision="float64"), cfg).precision == "float64"  # the flag wins


def test_binance_builds_bars_from_trades(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOLPHIN_MARKET_REST_URL", raising=False)
    monkeypatch.delenv("DOLPHIN_MARKET_WS_URL", raising=False)
    monkeypatch.setenv("DOLPHIN_MARKET", "binance")
    s = resolve_settings(ScannerOptions(), services_from_mapping({}))
    assert (s.source, s.bars, s.history) == ("binance", "trade", "aggtrades")
    assert s.rest_url == "https://testnet.binancefuture.com"


def test_everything_given_needs_no_config_file() -> None:
    s = resolve_settings(ScannerOptions(source="sim", symbols=3, bar_seconds=5, precision="float64",
                                        rest_url="http://h:1", ws_url="ws://h:1"), None)
    assert s.symbols == tuple(universe(3))
