"""Simulators for the market integration tests: real sockets, in-process servers on free ports.

One 540-symbol simulator is shared by the read-only tests of a session (its startup
generates a day of history for the whole universe); tests that trade or need another
speed start their own small simulator and stop it.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from dolphin.market.signing import encode_params, sign
from dolphin.market.sim import SimConfig, SimExchange

KEY, SECRET = "it-key", "it-secret"
T = TypeVar("T")


@pytest.fixture(scope="session")
def sim540() -> Iterator[SimExchange]:
    with SimExchange(SimConfig(port=0, symbols=540, api_key=KEY, api_secret=SECRET)) as sim:
        yield sim


def small_sim(**overrides: Any) -> SimExchange:
    """A 20-symbol simulator (start it with ``with``)."""
    settings: dict[str, Any] = {"port": 0, "symbols": 20, "api_key": KEY, "api_secret": SECRET}
    settings.update(overrides)
    return SimExchange(SimConfig(**settings))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def until(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Wait (asynchronously) until ``check()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def wait_sync(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def call(sim: SimExchange, method: str, path: str, params: dict[str, Any] | None = None, *,
         signed: bool = False, key_only: bool = False, timeout: float = 30.0) -> tuple[int, Any]:
    """One REST request the way a stock client sends it (wall-clock ``timestamp``); (status, JSON body)."""
    params = dict(params or {})
    headers = {}
    if key_only or signed:
        headers["X-MBX-APIKEY"] = KEY
    if signed:
        params["timestamp"] = int(time.time() * 1000)
        text = encode_params(params)
        query = f"{text}&signature={sign(SECRET, text)}"
    else:
        query = encode_params(params)
    req = urllib.request.Request(f"{sim.rest_url}{path}?{query}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
