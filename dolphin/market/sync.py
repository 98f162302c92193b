"""A blocking facade over `BinanceRest` for CLI commands and notebooks.

Services are asyncio and use `BinanceRest` directly. A one-shot CLI command (``dolphin
market time``, a reconciliation script) just wants an answer: `SyncBinanceRest` runs
each call to completion on a private event loop owned by the facade, so it can be used
from plain synchronous code (not from inside a running event loop).

    with SyncBinanceRest("http://127.0.0.1:8790") as rest:
        print(rest.server_time(), rest.depth("BTCUSDT").bids[0])
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from dolphin.market.rest import BinanceRest


class SyncBinanceRest:
    """Every coroutine method of `BinanceRest`, called synchronously (same arguments)."""

    def __init__(self, base_url: str, api_key: str | None = None, api_secret: str | None = None,
                 **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._rest = BinanceRest(base_url, api_key, api_secret, **kwargs)

    @classmethod
    def from_env(cls, base_url: str, **kwargs: Any) -> SyncBinanceRest:
        from dolphin.market.urls import credentials_from_env

        key, secret = credentials_from_env()
        return cls(base_url, key, secret, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._rest, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attr(*args, **kwargs))

        return call

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._rest.close())
            self._loop.close()

    def __enter__(self) -> SyncBinanceRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
