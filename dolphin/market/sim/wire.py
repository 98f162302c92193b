"""Binance's wire conventions, in one place: errors, parameter parsing, number formatting.

Every simulator module that reads request parameters or writes a Binance payload goes
through these helpers, so an error message, a boolean spelling or a number's decimals
are the same on every endpoint.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from dolphin.market.errors import BinanceAPIError, error_for_code

Params = dict[str, str]

ORDER_TYPES = ("LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET")
"""Order types the venue takes: LIMIT/MARKET on ``/fapi/v1/order``, the rest on ``/fapi/v1/algoOrder``."""
ALGO_TYPES = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET")
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")
WORKING_TYPES = ("MARK_PRICE", "CONTRACT_PRICE")
MAX_NUM_ORDERS = 200
MAX_NUM_ALGO_ORDERS = 10
LEVERAGE_TIERS = (125, 100, 50, 20, 10, 5, 4, 3, 2, 1)
"""Initial leverage of each bracket; a bracket's notional cap is 31.25 M / its leverage."""


def err(code: int, msg: str, status: int | None = None) -> BinanceAPIError:
    return error_for_code(code, msg, status)


def mandatory(name: str) -> BinanceAPIError:
    return err(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def invalid(name: str) -> BinanceAPIError:
    return err(-1130, f"Data sent for parameter '{name}' is not valid.")


def not_required(name: str) -> BinanceAPIError:
    return err(-1106, f"Parameter '{name}' sent when not required.")


def fnum(x: float, decimals: int) -> str:
    """A number as Binance prints it: fixed decimals (negative decimals: a whole number)."""
    return f"{x:.{max(0, decimals)}f}"


def f8(x: float) -> str:
    return f"{x:.8f}"


def max_notional(leverage: int) -> float:
    """Position cap at a leverage (one bracket table for every symbol: 31.25 M / leverage)."""
    return 31_250_000.0 / leverage


def int_param(params: Params, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise invalid(name) from None


def decimal_param(params: Params, name: str) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise invalid(name) from None
    if not d.is_finite():
        raise invalid(name)
    return d


def bool_param(params: Params, name: str, default: bool = False) -> bool:
    """Binance's booleans: ``true``/``false`` in any case."""
    value = params.get(name)
    if value is None or value == "":
        return default
    low = value.lower()
    if low not in ("true", "false"):
        raise invalid(name)
    return low == "true"


def limit_param(params: Params, default: int, maximum: int) -> int:
    limit = int_param(params, "limit", default)
    assert limit is not None
    if not 1 <= limit <= maximum:
        raise invalid("limit")
    return limit


def json_list_param(params: Params, name: str, maximum: int) -> list[Any]:
    """A JSON array parameter (``batchOrders``, ``orderIdList``) of at most ``maximum`` items."""
    text = params.get(name)
    if not text:
        raise mandatory(name)
    try:
        value = json.loads(text)
    except ValueError:
        raise invalid(name) from None
    if not isinstance(value, list) or not value:
        raise invalid(name)
    if len(value) > maximum:
        raise err(-1130, f"Data sent for parameter '{name}' is not valid: at most {maximum} items.")
    return value


def decimals_of(d: Decimal) -> int:
    exponent = d.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent
