"""Where the market is: base URLs of the simulator, Binance testnet and Binance mainnet.

Switching between the simulated and the real market is a base URL and nothing else
(architecture decision 3): every client in `dolphin.market` takes a REST base
(``http(s)://host[:port]``, the paths ``/fapi/...`` are appended) and a WebSocket base
(``ws(s)://host[:port]``, the paths ``/stream`` or ``/ws`` are appended).

DOLPHIN's own default is the local simulator. Binance testnet and mainnet are named
presets; mainnet is refused unless the call site passes ``allow_mainnet=True`` (safe by
default, decision 7: paper before live, testnet before mainnet).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dolphin.market.errors import MainnetNotAllowedError, MarketError

DEFAULT_SIM_HOST = "127.0.0.1"
DEFAULT_SIM_PORT = 8790
"""Port `dolphin sim` binds by default (override with ``--port`` or ``DOLPHIN_SIM_PORT``)."""

REST_URL_ENV = "DOLPHIN_MARKET_REST_URL"
WS_URL_ENV = "DOLPHIN_MARKET_WS_URL"
API_KEY_ENV = "DOLPHIN_BINANCE_API_KEY"
API_SECRET_ENV = "DOLPHIN_BINANCE_API_SECRET"

MAINNET_HOSTS = frozenset({"fapi.binance.com", "fstream.binance.com"})


@dataclass(frozen=True, slots=True)
class Endpoints:
    """A venue's REST and WebSocket base URLs."""

    name: str
    rest_url: str
    ws_url: str

    @property
    def is_mainnet(self) -> bool:
        return is_mainnet_url(self.rest_url) or is_mainnet_url(self.ws_url)


SIMULATOR = Endpoints("sim", f"http://{DEFAULT_SIM_HOST}:{DEFAULT_SIM_PORT}", f"ws://{DEFAULT_SIM_HOST}:{DEFAULT_SIM_PORT}")
TESTNET = Endpoints("testnet", "https://testnet.binancefuture.com", "wss://stream.binancefuture.com")
MAINNET = Endpoints("mainnet", "https://fapi.binance.com", "wss://fstream.binance.com")
PRESETS: dict[str, Endpoints] = {e.name: e for e in (SIMULATOR, TESTNET, MAINNET)}


def is_mainnet_url(url: str) -> bool:
    """True when ``url`` points at Binance's production USD-M hosts."""
    host = (urlsplit(url).hostname or "").lower()
    return host in MAINNET_HOSTS


def check_mainnet(url: str, allow_mainnet: bool) -> None:
    """Refuse a mainnet URL unless the caller opted in explicitly."""
    if is_mainnet_url(url) and not allow_mainnet:
        raise MainnetNotAllowedError(
            f"{url} is Binance mainnet; pass allow_mainnet=True (or the command's mainnet flag) to use it")


def normalize_base(url: str, *, kind: str) -> str:
    """Strip trailing slashes and check the scheme (``http/https`` for REST, ``ws/wss`` for streams)."""
    text = str(url).strip().rstrip("/")
    parts = urlsplit(text)
    allowed = ("http", "https") if kind == "rest" else ("ws", "wss")
    if parts.scheme not in allowed or not parts.hostname:
        raise MarketError(f"bad {kind} base URL {url!r}: expected {' or '.join(s + '://host[:port]' for s in allowed)}")
    return text


def endpoints(name: str = "sim", *, allow_mainnet: bool = False) -> Endpoints:
    """The named preset (``sim``, ``testnet``, ``mainnet``); mainnet needs ``allow_mainnet=True``."""
    try:
        chosen = PRESETS[name]
    except KeyError:
        raise MarketError(f"unknown market preset {name!r} (choose from {', '.join(PRESETS)})") from None
    if chosen.is_mainnet and not allow_mainnet:
        raise MainnetNotAllowedError("the mainnet preset needs an explicit allow_mainnet=True at the call site")
    return chosen


def from_env(default: Endpoints = SIMULATOR, *, allow_mainnet: bool = False) -> Endpoints:
    """``DOLPHIN_MARKET_REST_URL`` / ``DOLPHIN_MARKET_WS_URL`` if set, else ``default``."""
    rest = os.environ.get(REST_URL_ENV) or default.rest_url
    ws = os.environ.get(WS_URL_ENV) or default.ws_url
    found = Endpoints("env" if (rest, ws) != (default.rest_url, default.ws_url) else default.name,
                      normalize_base(rest, kind="rest"), normalize_base(ws, kind="ws"))
    if found.is_mainnet and not allow_mainnet:
        raise MainnetNotAllowedError(f"{REST_URL_ENV}/{WS_URL_ENV} point at mainnet; the caller must opt in")
    return found


def market_rest_url(cfg: Any) -> str:
    """The REST base a family program reads market data (and time) from: the env, else the services config.

    ``cfg`` is the `ServicesConfig`. Public data only: a mainnet preset is allowed here;
    anything that signs orders goes through its own, stricter check.
    """
    if cfg.market.source == "sim":
        default = Endpoints("sim", cfg.sim_rest_url, cfg.sim_ws_url)
    else:
        default = endpoints(cfg.market.binance_network, allow_mainnet=True)
    return from_env(default, allow_mainnet=True).rest_url


def credentials_from_env() -> tuple[str | None, str | None]:
    """``(DOLPHIN_BINANCE_API_KEY, DOLPHIN_BINANCE_API_SECRET)``; never logged by anyone."""
    return os.environ.get(API_KEY_ENV) or None, os.environ.get(API_SECRET_ENV) or None
