"""Base URLs, the mainnet opt-in, credentials hygiene and the typed error map."""

from __future__ import annotations

import asyncio

import pytest

from dolphin.errors import DolphinError
from dolphin.market import errors as E
from dolphin.market.rest import BinanceRest
from dolphin.market.sync import SyncBinanceRest
from dolphin.market.urls import (
    MAINNET,
    SIMULATOR,
    TESTNET,
    endpoints,
    from_env,
    is_mainnet_url,
    normalize_base,
)


def test_presets_and_mainnet_opt_in() -> None:
    assert endpoints() is SIMULATOR and SIMULATOR.rest_url.startswith("http://127.0.0.1:")
    assert endpoints("testnet") is TESTNET and TESTNET.ws_url == "wss://stream.binancefuture.com"
    with pytest.raises(E.MainnetNotAllowedError):
        endpoints("mainnet")
    assert endpoints("mainnet", allow_mainnet=True) is MAINNET
    assert is_mainnet_url("https://fapi.binance.com") and not is_mainnet_url(TESTNET.rest_url)
    with pytest.raises(E.MarketError):
        endpoints("nowhere")


def test_env_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOLPHIN_MARKET_REST_URL", "http://127.0.0.1:9999/")
    monkeypatch.setenv("DOLPHIN_MARKET_WS_URL", "ws://127.0.0.1:9999")
    found = from_env()
    assert (found.rest_url, found.ws_url, found.name) == ("http://127.0.0.1:9999", "ws://127.0.0.1:9999", "env")
    monkeypatch.setenv("DOLPHIN_MARKET_REST_URL", MAINNET.rest_url)
    with pytest.raises(E.MainnetNotAllowedError):
        from_env()


def test_base_urls_are_checked() -> None:
    assert normalize_base("https://x.example/", kind="rest") == "https://x.example"
    for bad, kind in (("ftp://x", "rest"), ("http://x", "ws"), ("nohost", "rest")):
        with pytest.raises(E.MarketError):
            normalize_base(bad, kind=kind)


def test_trading_on_mainnet_needs_the_flag_and_secrets_never_show() -> None:
    with pytest.raises(E.MainnetNotAllowedError):
        BinanceRest(MAINNET.rest_url, "key", "very-secret")
    BinanceRest(MAINNET.rest_url)  # public market data is fine
    rest = BinanceRest(MAINNET.rest_url, "key", "very-secret", allow_mainnet=True)
    assert "very-secret" not in repr(rest) and "key" not in repr(rest).replace("BinanceRest", "")


def test_credentials_from_env_and_signed_calls_without_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOLPHIN_BINANCE_API_KEY", "k")
    monkeypatch.setenv("DOLPHIN_BINANCE_API_SECRET", "s")
    assert BinanceRest.from_env(SIMULATOR.rest_url).has_credentials
    monkeypatch.delenv("DOLPHIN_BINANCE_API_KEY")
    rest = BinanceRest.from_env(SIMULATOR.rest_url)
    assert not rest.has_credentials
    with pytest.raises(E.CredentialsMissingError, match="DOLPHIN_BINANCE_API_KEY"):
        asyncio.run(rest.account())


def test_sync_facade_wraps_coroutines_only() -> None:
    with SyncBinanceRest(SIMULATOR.rest_url) as rest:
        assert rest.base_url == SIMULATOR.rest_url
        assert callable(rest.server_time)


@pytest.mark.parametrize(("code", "cls"), [
    (-1003, E.RateLimitError), (-1021, E.TimestampError), (-1022, E.InvalidSignatureError), (-2015, E.ApiKeyError),
    (-1121, E.BadSymbolError), (-1111, E.BadPrecisionError), (-4014, E.BadPrecisionError),
    (-2019, E.InsufficientMarginError), (-2011, E.UnknownOrderError), (-2013, E.UnknownOrderError),
    (-4116, E.DuplicateClientOrderIdError), (-4015, E.ClientOrderIdInvalidError), (-2022, E.OrderRejectedError),
    (-1102, E.BadRequestError), (-9999, E.BinanceAPIError)])
def test_binance_codes_map_to_typed_errors(code: int, cls: type) -> None:
    error = E.error_for_code(code, "msg", 400)
    assert type(error) is cls and error.code == code and error.payload() == {"code": code, "msg": "msg"}
    assert isinstance(error, DolphinError)


def test_operator_exit_codes_are_distinct_and_in_range() -> None:
    classes = [E.MarketUnavailableError, E.BinanceAPIError, E.MainnetNotAllowedError, E.CredentialsMissingError,
               E.SimConfigError, E.SimStartError, E.SimStateError]
    codes = [c.exit_code for c in classes]
    assert len(set(codes)) == len(codes) and all(20 <= c <= 29 for c in codes)
    assert E.RateLimitError(-1003, "x").status == 429 and E.ApiKeyError(-2015, "x").status == 401
