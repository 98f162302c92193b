"""Errors of the market layer: operator errors (exit codes 20-29) and typed Binance API errors.

Two families live here on purpose:

* **Operator errors** (`MarketError` and friends) are `DolphinError`s: a CLI prints their
  message as one line and exits with the code. Each failure an operator must tell apart
  in a script has its own code: the venue is unreachable (20), the venue answered with an
  error (21), mainnet without the opt-in (22), missing credentials (23), bad simulator
  flags (24), the simulator cannot start (25), the simulator's state is unreadable (26).
* **Venue errors** (`BinanceAPIError` subclasses) carry Binance's own ``code`` and ``msg``
  and the HTTP status, so callers branch on a *type* (``except InsufficientMarginError``)
  instead of on magic numbers. `error_for_code` maps a code to its class; the simulator
  raises the same classes internally and serialises them back to Binance's JSON.

Malformed *payloads* are not errors here: bad input at the edge is counted and dropped
by the parser that meets it (`dolphin.market.payloads`), it never stops a loop.
"""

from __future__ import annotations

from dolphin.errors import DolphinError


class MarketError(DolphinError):
    """Base class of market-layer errors an operator can cause or must act on."""

    exit_code = 20


class MarketUnavailableError(MarketError):
    """The venue (Binance or the simulator) could not be reached, or answered 5xx / garbage."""

    exit_code = 20


class MainnetNotAllowedError(MarketError):
    """Mainnet was asked for without the explicit opt-in (testnet is the default for trading)."""

    exit_code = 22


class CredentialsMissingError(MarketError):
    """A signed endpoint was called without an API key and secret."""

    exit_code = 23


class SimConfigError(MarketError):
    """Simulator flags that cannot work together (bad symbols, start, speed, source file)."""

    exit_code = 24


class SimStartError(MarketError):
    """The simulator could not start: port in use, state directory locked by another simulator."""

    exit_code = 25


class SimStateError(MarketError):
    """The simulator's persisted account state exists but cannot be read."""

    exit_code = 26


class BinanceAPIError(MarketError):
    """The venue rejected a request with a Binance error ``code`` and ``msg``.

    ``status`` is the HTTP status it came with (400, 401, 404, 429, ...). Subclasses name
    the codes a caller is expected to handle; anything else is this class itself.
    """

    exit_code = 21
    http_status = 400
    codes: tuple[int, ...] = ()

    def __init__(self, code: int, msg: str, status: int | None = None) -> None:
        self.code = int(code)
        self.msg = str(msg)
        self.status = int(status) if status is not None else type(self).http_status
        super().__init__(f"Binance error {self.code}: {self.msg}")

    def payload(self) -> dict[str, int | str]:
        """Binance's error JSON object: ``{"code": -1121, "msg": "Invalid symbol."}``."""
        return {"code": self.code, "msg": self.msg}


class RateLimitError(BinanceAPIError):
    """Too much request weight (-1003) or too many orders (-1015), HTTP 429; or an IP ban (HTTP 418)."""

    http_status = 429
    codes = (-1003, -1015)


class TimestampError(BinanceAPIError):
    """The request's timestamp is outside recvWindow or ahead of the server (-1021)."""

    codes = (-1021,)


class InvalidSignatureError(BinanceAPIError):
    """The HMAC signature does not match the request (-1022)."""

    codes = (-1022,)


class ApiKeyError(BinanceAPIError):
    """Missing, malformed or unknown API key (-2014, -2015)."""

    http_status = 401
    codes = (-2014, -2015)


class BadRequestError(BinanceAPIError):
    """A parameter is missing, malformed or not allowed (-11xx other than the named ones)."""

    codes = (-1023, -1100, -1101, -1102, -1103, -1104, -1105, -1106, -1115, -1116, -1117, -1120, -1130, -1131,
             -4021)


class BadSymbolError(BinanceAPIError):
    """The symbol does not exist (-1121)."""

    codes = (-1121,)


class BadPrecisionError(BinanceAPIError):
    """Price or quantity off the symbol's tick/step grid or out of its filters."""

    codes = (-1111, -4003, -4004, -4005, -4013, -4014, -4016, -4023, -4024, -4164)


class InsufficientMarginError(BinanceAPIError):
    """The account cannot margin the order (-2019)."""

    codes = (-2019,)


class UnknownOrderError(BinanceAPIError):
    """Cancel or query of an order the venue does not know (-2011, -2013)."""

    codes = (-2011, -2013)


class DuplicateClientOrderIdError(BinanceAPIError):
    """``newClientOrderId`` was already used (-4116)."""

    codes = (-4116,)


class ClientOrderIdInvalidError(BinanceAPIError):
    """``newClientOrderId`` does not match Binance's pattern (-4015)."""

    codes = (-4015,)


class OrderRejectedError(BinanceAPIError):
    """The order was rejected for a trading rule: reduce-only, post-only, FOK, leverage, position cap or side,
    too many open orders (-2025) or conditional orders (-4045), a conditional type sent to the plain order
    endpoint (-4120: conditional orders go to the Algo Order API), nothing to modify (-5027)."""

    codes = (-2010, -2021, -2022, -2025, -2027, -4028, -4045, -4061, -4120, -4130, -5021, -5022, -5027)


class SettingRejectedError(BinanceAPIError):
    """An account setting was not changed: nothing to change (-4046, -4059) or open orders/positions forbid it."""

    codes = (-4046, -4047, -4048, -4059, -4067, -4068)


class ListenKeyError(BinanceAPIError):
    """The user-data listen key does not exist (lapsed or deleted): create a new one (-1125)."""

    codes = (-1125,)


_BY_CODE: dict[int, type[BinanceAPIError]] = {}
for _cls in (RateLimitError, TimestampError, InvalidSignatureError, ApiKeyError, BadRequestError, BadSymbolError,
             BadPrecisionError, InsufficientMarginError, UnknownOrderError, DuplicateClientOrderIdError,
             ClientOrderIdInvalidError, OrderRejectedError, SettingRejectedError, ListenKeyError):
    for _code in _cls.codes:
        _BY_CODE[_code] = _cls


def error_for_code(code: int, msg: str, status: int | None = None) -> BinanceAPIError:
    """The typed error for a Binance ``code`` (the base class for codes without a name here)."""
    return _BY_CODE.get(int(code), BinanceAPIError)(code, msg, status)
