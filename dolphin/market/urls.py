"""Where the market is: base URLs of the simulator, Binance testnet and Binance mainnet.

Switching between the simulated and the real market is a base URL and nothing else
(architecture decision 3): every client in `dolphin.market` takes a REST base
(``http(s)://host[:port]``, the paths ``/fapi/...`` are appended) and a WebSocket base
(``ws(s)://host[:port]``, the paths ``/stream`` or ``/ws`` are appended).

DOLPHIN's own default is the local simulator. Binance testnet and mainnet are named
presets; mainnet is refused unless the call site passes ``allow_mainnet=True`` (safe by
default, decision 7: paper before live, testnet before mainnet).

Hosts are classified on a canonical spelling (`canonical_host`: case, trailing dots,
ports, userinfo, IPv4 in any inet_aton form, IPv6 and IPv4-mapped literals, IDNA), read
by both urllib and yarl (the parser aiohttp connects with), keeping the more dangerous
reading. Anything that *signs* requests goes through `check_signing_url`, an allow-list:
loopback and Binance testnet only, everything else (mainnet, any other name or IP) needs
the explicit mainnet flag — a spelling nobody thought of is refused, not let through.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from enum import StrEnum, unique
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from yarl import URL

from dolphin.market.errors import MainnetNotAllowedError, MarketError

DEFAULT_SIM_HOST = "127.0.0.1"
DEFAULT_SIM_PORT = 8790
"""Port `dolphin sim` binds by default (override with ``--port`` or ``DOLPHIN_SIM_PORT``)."""

REST_URL_ENV = "DOLPHIN_MARKET_REST_URL"
WS_URL_ENV = "DOLPHIN_MARKET_WS_URL"
API_KEY_ENV = "DOLPHIN_BINANCE_API_KEY"
API_SECRET_ENV = "DOLPHIN_BINANCE_API_SECRET"

MAINNET_HOSTS = frozenset({"fapi.binance.com", "fstream.binance.com"})
MAINNET_DOMAIN = "binance.com"
"""Every host under binance.com is production Binance (fapi, fstream, dapi, api, fapi1, …)."""
TESTNET_HOSTS = frozenset({"testnet.binancefuture.com", "stream.binancefuture.com", "fstream.binancefuture.com"})
LOOPBACK_NAMES = frozenset({"localhost"})


@unique
class HostKind(StrEnum):
    """Where a URL's host is, from least to most dangerous for a signed request."""

    LOOPBACK = "loopback"
    TESTNET = "testnet"
    OTHER = "other"
    MAINNET = "mainnet"


_DANGER = {kind: rank for rank, kind in enumerate(HostKind)}
_SIGNING_OK = frozenset({HostKind.LOOPBACK, HostKind.TESTNET})
_INET_ATON_FORM = re.compile(r"[0-9a-fx.]+")  # "127.1", "2130706433", "0x7f.0.0.1": resolvers read IPv4


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a literal host means (IPv4-mapped IPv6 as its IPv4), or None for a name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _INET_ATON_FORM.fullmatch(host):
            return None
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def canonical_host(host: str) -> str:
    """``host`` as resolvers see it: lower-case ASCII (IDNA), no brackets, zone or trailing dots,
    IP literals in their standard spelling (``0x7f.1`` → ``127.0.0.1``, ``::ffff:7f00:1`` → ``127.0.0.1``)."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        text = text.split("%", 1)[0]  # IPv6 zone id
    text = text.rstrip(".")
    ip = _ip_literal(text)
    if ip is not None:
        return str(ip)
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # not a valid IDNA name: classified as OTHER below
    return text.lower()


def host_kind(host: str) -> HostKind:
    """Loopback, Binance testnet, Binance mainnet or anything else."""
    canon = canonical_host(host)
    ip = _ip_literal(canon)
    if ip is not None:
        return HostKind.LOOPBACK if ip.is_loopback else HostKind.OTHER
    if canon in LOOPBACK_NAMES:
        return HostKind.LOOPBACK
    if canon in TESTNET_HOSTS:
        return HostKind.TESTNET
    if canon == MAINNET_DOMAIN or canon.endswith("." + MAINNET_DOMAIN):
        return HostKind.MAINNET
    return HostKind.OTHER


def url_hosts(url: str) -> tuple[str, str]:
    """The host of ``url`` as urllib and as yarl (aiohttp's URL parser) read it; "" if unreadable."""
    text = str(url).strip()
    try:
        by_urllib = urlsplit(text).hostname or ""
    except ValueError:
        by_urllib = ""
    try:
        by_yarl = URL(text).host or ""
    except (ValueError, TypeError):
        by_yarl = ""
    return by_urllib, by_yarl


def url_host_kind(url: str) -> HostKind:
    """The more dangerous of the two parsers' readings of ``url``'s host."""
    return max((host_kind(h) for h in url_hosts(url)), key=_DANGER.__getitem__)


def redact_url(url: str) -> str:
    """``url`` without its userinfo (``user:password@``), for messages."""
    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


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
    """True when ``url`` points at production Binance, however its host is spelled."""
    return url_host_kind(url) is HostKind.MAINNET


def check_mainnet(url: str, allow_mainnet: bool) -> None:
    """Refuse a mainnet URL unless the caller opted in explicitly."""
    if is_mainnet_url(url) and not allow_mainnet:
        raise MainnetNotAllowedError(
            f"{redact_url(url)} is Binance mainnet; pass allow_mainnet=True (or the command's mainnet flag) to use it")


def check_signing_url(url: str, allow_mainnet: bool) -> HostKind:
    """Allow signed requests (orders) to loopback and Binance testnet only, unless mainnet was opted in.

    An allow-list on purpose: mainnet has many spellings (``FAPI.BINANCE.COM.``, an IP, a
    proxy name), and an unknown host may well be mainnet. Returns the host's kind.
    """
    kind = url_host_kind(url)
    if kind in _SIGNING_OK or allow_mainnet:
        return kind
    if kind is HostKind.MAINNET:
        raise MainnetNotAllowedError(f"refusing to sign requests for {redact_url(url)}: it is Binance mainnet, "
                                     "and real orders need the explicit mainnet flag (allow_mainnet=True)")
    raise MainnetNotAllowedError(
        f"refusing to sign requests for {redact_url(url)}: without the explicit mainnet flag only loopback and "
        f"Binance testnet ({', '.join(sorted(TESTNET_HOSTS))}) may receive signed requests")


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
