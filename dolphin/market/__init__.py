"""Market access: the Binance USD-M futures adapter and the simulator exchange behind the same protocol.

* `dolphin.market.rest.BinanceRest` — async REST client (typed structs, signing, shared weight limiter);
* `dolphin.market.streams.MarketStreams` — sharded WebSocket market streams with reconnect and watchdog;
* `dolphin.market.sim` — the simulator exchange (`dolphin sim`), Binance's REST and WS on loopback;
* `dolphin.market.synthetic` — the seeded synthetic market the simulator serves by default;
* `dolphin.market.urls` — base URLs: simulator (default), testnet, mainnet (explicit opt-in).

Switching between simulated and real markets is a base URL (``docs/market.md``).
"""
