"""Where `dolphin live` trades and with which keys — testnet unless the command line says mainnet.

The venue is the Binance USD-M **testnet** by default. Mainnet is chosen only by the
command line (`dolphin live --mainnet`, with a typed confirmation or `--yes-mainnet`):
nothing in configs/services.yml can select it. ``DOLPHIN_LIVE_REST_URL`` /
``DOLPHIN_LIVE_WS_URL`` point a rehearsal at another venue — a local simulator, say —
and a mainnet URL there is refused without the flag too (the signing allow-list of
`dolphin.market.urls` has the last word).

Keys come from ``DOLPHIN_BINANCE_API_KEY`` / ``DOLPHIN_BINANCE_API_SECRET`` or from a
0600 JSON file (``live.keys_file``, or ``DOLPHIN_LIVE_KEYS_FILE``) holding ``api_key``
and ``api_secret``; they are checked at start, never logged (`SecretRedactor` scrubs
them from every log line as a second line of defence) and never published.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from dolphin.errors import ConfigError, UsageError
from dolphin.market.errors import MainnetNotAllowedError
from dolphin.market.urls import (
    API_KEY_ENV,
    API_SECRET_ENV,
    MAINNET,
    TESTNET,
    HostKind,
    normalize_base,
    redact_url,
    url_host_kind,
)
from dolphin.secret_file import SecretFileError, read_secret_file

LIVE_REST_URL_ENV = "DOLPHIN_LIVE_REST_URL"
LIVE_WS_URL_ENV = "DOLPHIN_LIVE_WS_URL"
KEYS_FILE_ENV = "DOLPHIN_LIVE_KEYS_FILE"

_NETWORK = {HostKind.LOOPBACK: "sim", HostKind.TESTNET: "testnet", HostKind.MAINNET: "mainnet"}


@dataclass(frozen=True, slots=True)
class LiveVenue:
    """The venue's base URLs and what it is (``sim`` = a simulator on loopback, ``testnet``, ``mainnet``)."""

    network: str
    rest_url: str
    ws_url: str

    @property
    def is_mainnet(self) -> bool:
        return self.network == "mainnet"

    @property
    def book_venue(self) -> str:
        """The journal's venue name: a live book keeps its venue (``live-testnet``, ``live-mainnet``, ``live-sim``)."""
        return f"live-{self.network}"


def resolve_venue(*, mainnet: bool, environ: dict[str, str] | None = None) -> LiveVenue:
    """The venue for this run: testnet, mainnet (only with ``mainnet=True``), or the rehearsal URLs of the env."""
    env = os.environ if environ is None else environ
    preset = MAINNET if mainnet else TESTNET
    rest = normalize_base(env.get(LIVE_REST_URL_ENV) or preset.rest_url, kind="rest")
    ws = normalize_base(env.get(LIVE_WS_URL_ENV) or preset.ws_url, kind="ws")
    kinds = {url_host_kind(rest), url_host_kind(ws)}
    if HostKind.MAINNET in kinds and not mainnet:
        raise MainnetNotAllowedError(f"{redact_url(rest)} is Binance mainnet: real money needs `dolphin live --mainnet` "
                                     "and its confirmation (the services config cannot turn it on)")
    if HostKind.OTHER in kinds:
        raise MainnetNotAllowedError(f"{redact_url(rest)} / {redact_url(ws)} is neither loopback nor Binance testnet "
                                     "or mainnet: live trading signs requests for those only")
    if len(kinds) != 1:
        raise UsageError(f"{LIVE_REST_URL_ENV} ({redact_url(rest)}) and {LIVE_WS_URL_ENV} ({redact_url(ws)}) point "
                         "at different venues")
    kind = kinds.pop()
    if mainnet and kind is not HostKind.MAINNET:
        raise UsageError(f"--mainnet was given but the venue is {redact_url(rest)} ({_NETWORK[kind]}): unset "
                         f"{LIVE_REST_URL_ENV}/{LIVE_WS_URL_ENV} to trade on mainnet")
    return LiveVenue(_NETWORK[kind], rest, ws)


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """An API key pair and where it came from; `repr` never shows the values."""

    key: str = field(repr=False)
    secret: str = field(repr=False)
    source: str

    def secrets(self) -> tuple[str, str]:
        return self.key, self.secret


def keys_file(home: Path, configured: str, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    raw = env.get(KEYS_FILE_ENV) or configured
    p = Path(raw).expanduser()
    return p if p.is_absolute() else home / p


def load_keys(venue: LiveVenue, path: Path, environ: dict[str, str] | None = None) -> ApiKeys:
    """The keys from the environment, else from the 0600 file; a simulator may fall back to its default pair.

    Raises `ConfigError` (one line, naming the file, never a value) when none are found or
    the file is unsafe.
    """
    env = os.environ if environ is None else environ
    key, secret = env.get(API_KEY_ENV, ""), env.get(API_SECRET_ENV, "")
    if key and secret:
        return ApiKeys(key, secret, "environment")
    if key or secret:
        raise ConfigError(f"only one of {API_KEY_ENV} / {API_SECRET_ENV} is set: set both (or neither, and use "
                          f"{path})")
    if path.exists() or path.is_symlink():
        try:
            values = read_secret_file(path)
        except SecretFileError as exc:
            raise ConfigError(str(exc)) from None
        key, secret = values.get("api_key", ""), values.get("api_secret", "")
        if not (key and secret):
            raise ConfigError(f"secret file {path} must hold api_key and api_secret")
        return ApiKeys(key, secret, str(path))
    if venue.network == "sim":
        from dolphin.market.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET

        return ApiKeys(DEFAULT_API_KEY, DEFAULT_API_SECRET, "the simulator's default pair")
    raise ConfigError(f"no API keys for {venue.network}: set {API_KEY_ENV} and {API_SECRET_ENV}, or write them to "
                      f"{path} (mode 0600) with `dolphin live keys`")


def live_journal_path(home: Path, strategy: str, network: str) -> Path:
    """A live book's journal: its own file, named after the strategy and the venue's network."""
    from dolphin.execution.controls import JOURNAL_DIR

    return home / JOURNAL_DIR / f"{strategy}-live-{network}.jsonl"


class SecretRedactor(logging.Filter):
    """Replace the given secrets in every log record (a second line of defence: nothing logs them on purpose)."""

    MASK = "«redacted»"

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:
            return True
        if any(s in text for s in self.secrets):
            for s in self.secrets:
                text = text.replace(s, self.MASK)
            record.msg, record.args = text, None
        if record.exc_text:
            for s in self.secrets:
                record.exc_text = record.exc_text.replace(s, self.MASK)
        return True

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 6 and secret not in self.secrets:
            self.secrets.append(secret)


def install_redactor(secrets: list[str]) -> SecretRedactor:
    """One redactor on every handler of the root logger (where services log)."""
    redactor = SecretRedactor(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
    return redactor


__all__ = ["KEYS_FILE_ENV", "LIVE_REST_URL_ENV", "LIVE_WS_URL_ENV", "ApiKeys", "LiveVenue", "SecretRedactor",
           "install_redactor", "keys_file", "live_journal_path", "load_keys", "resolve_venue"]
