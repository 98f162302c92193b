"""The mainnet guard holds for every spelling of a host (issue 12 §5).

`VenueExecutor.from_environment()` signs orders for whatever `DOLPHIN_MARKET_REST_URL`
names; it used to refuse ``https://fapi.binance.com`` but accept
``https://fapi.binance.com.``. Signing is now an allow-list (loopback and Binance
testnet), so each spelling below is refused without the explicit flag.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from yarl import URL

from dolphin.execution.venue import VenueExecutor
from dolphin.market.errors import MainnetNotAllowedError
from dolphin.market.rest import BinanceRest
from dolphin.market.urls import (
    HostKind,
    canonical_host,
    check_signing_url,
    from_env,
    host_kind,
    is_mainnet_url,
    redact_url,
    url_host_kind,
)

pytestmark = [pytest.mark.degradation]

MAINNET_SPELLINGS = [
    "https://fapi.binance.com",
    "https://fapi.binance.com.",                   # the reported bypass: trailing dot
    "https://fapi.binance.com..",
    "https://FAPI.BINANCE.COM",
    "https://FAPI.binance.COM.",
    "https://fapi.binance.com:443",
    "https://fapi.binance.com.:443/",
    "https://user@fapi.binance.com",
    "https://user:pw@fapi.binance.com.:443",
    "https://127.0.0.1@fapi.binance.com",          # userinfo that looks like loopback
    "https://evil@127.0.0.1@fapi.binance.com",     # the last @ ends the userinfo
    "https://ｆａｐｉ.binance.com",                 # fullwidth letters: IDNA maps them to ASCII
    "https://fapi.binance.com\t",
    "  https://fapi.binance.com/  ",
    "https://fapi1.binance.com",                   # any production host under binance.com
    "https://dapi.binance.com",
    "https://binance.com",
]

OTHER_SPELLINGS = [
    "https://13.114.20.1",                         # an IP of anything else (mainnet may sit behind it)
    "https://[2600:9000::1]",
    "http://0.0.0.0:8790",
    "http://[::]:8790",
    "https://fapi.binance.com%2e",
    "https://fapi.binance.com.evil.example",
    "https://localhost.evil.example",
    "https://127.0.0.1.nip.io",
    "https://xn--fapi-.binance.com.example",
    "https://fapı.binance.example",                # dotless i: not a spelling of an allowed host
    "https://",
    "https://testnet.binancefuture.com.evil.example",
]

SIGNING_OK = [
    ("http://127.0.0.1:8790", HostKind.LOOPBACK),
    ("http://127.0.0.2:8790", HostKind.LOOPBACK),
    ("http://[::1]:8790", HostKind.LOOPBACK),
    ("http://[0:0:0:0:0:0:0:1]:8790", HostKind.LOOPBACK),
    ("http://[::ffff:127.0.0.1]:8790", HostKind.LOOPBACK),
    ("http://2130706433:8790", HostKind.LOOPBACK),    # 127.0.0.1 as one number
    ("http://0x7f.1:8790", HostKind.LOOPBACK),
    ("http://127.1:8790", HostKind.LOOPBACK),
    ("http://localhost:8790", HostKind.LOOPBACK),
    ("http://LOCALHOST.:8790", HostKind.LOOPBACK),
    ("https://testnet.binancefuture.com", HostKind.TESTNET),
    ("https://TESTNET.binancefuture.com.:443", HostKind.TESTNET),
]


@pytest.mark.parametrize("url", MAINNET_SPELLINGS)
def test_every_spelling_of_mainnet_is_mainnet_and_refused_for_signing(url: str) -> None:
    assert url_host_kind(url) is HostKind.MAINNET and is_mainnet_url(url)
    with pytest.raises(MainnetNotAllowedError, match="mainnet"):
        check_signing_url(url, allow_mainnet=False)
    with pytest.raises(MainnetNotAllowedError):
        BinanceRest(url, "key", "secret")
    assert check_signing_url(url, allow_mainnet=True) is HostKind.MAINNET    # the explicit flag opens it


@pytest.mark.parametrize("url", OTHER_SPELLINGS)
def test_any_other_host_is_refused_for_signing(url: str) -> None:
    assert url_host_kind(url) is HostKind.OTHER
    with pytest.raises(MainnetNotAllowedError, match="only loopback and Binance testnet"):
        check_signing_url(url, allow_mainnet=False)


@pytest.mark.parametrize(("url", "kind"), SIGNING_OK)
def test_loopback_and_testnet_may_sign(url: str, kind: HostKind) -> None:
    assert check_signing_url(url, allow_mainnet=False) is kind
    assert not is_mainnet_url(url)


@pytest.mark.parametrize("url", MAINNET_SPELLINGS + OTHER_SPELLINGS + [u for u, _ in SIGNING_OK])
def test_the_classifier_reads_the_host_the_http_client_connects_to(url: str) -> None:
    """aiohttp connects to yarl's host and urllib-based clients to urlsplit's: both get the verdict."""
    by_urllib = urlsplit(url.strip()).hostname or ""
    try:
        by_yarl = URL(url.strip()).host or ""
    except ValueError:
        by_yarl = ""  # aiohttp cannot build a request for it at all
    assert host_kind(by_urllib) is host_kind(by_yarl) is url_host_kind(url)


@pytest.mark.parametrize("url", ["https://fapi.binance.com.", "https://FAPI.BINANCE.COM", "https://13.114.20.1",
                                 "https://user:pw@fapi.binance.com:443", "http://[::2]:8790"])
def test_the_venue_executor_refuses_to_sign_for_them(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOLPHIN_MARKET_REST_URL", url)
    with pytest.raises(MainnetNotAllowedError) as info:
        VenueExecutor.from_environment()
    assert "pw" not in str(info.value)                    # userinfo is never echoed


def test_the_venue_executor_signs_for_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOLPHIN_MARKET_REST_URL", "http://127.0.0.1:8790")
    assert VenueExecutor.from_environment().rest.has_credentials


def test_market_data_from_a_disguised_mainnet_still_needs_the_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOLPHIN_MARKET_REST_URL", "https://FAPI.binance.com.:443")
    monkeypatch.setenv("DOLPHIN_MARKET_WS_URL", "wss://fstream.binance.com.")
    with pytest.raises(MainnetNotAllowedError):
        from_env()
    assert from_env(allow_mainnet=True).is_mainnet


def test_canonical_spellings() -> None:
    assert canonical_host("FAPI.Binance.COM.") == "fapi.binance.com"
    assert canonical_host("[::FFFF:7f00:1]") == "127.0.0.1"
    assert canonical_host("0x7f.0.0.1") == "127.0.0.1"
    assert canonical_host("ｔｅｓｔｎｅｔ.binancefuture.com") == "testnet.binancefuture.com"
    assert canonical_host("fe80::1%eth0") == "fe80::1"
    assert redact_url("https://user:pw@fapi.binance.com:443/x#frag") == "https://fapi.binance.com:443/x"
