"""Live trading on Binance USD-M (`dolphin live`, docs/live.md): the same trader core as paper, another executor.

* `venue` — which venue (testnet unless the command line says mainnet) and its keys;
* `filters`, `marks` — the venue's symbol rules and mark prices;
* `risk` — pre-trade checks before any order leaves;
* `books` — the venue's truth from the user-data stream (orders, fills, positions, wallet);
* `userstream` — the user-data stream's connection (listen key, reconnects, storm guard);
* `executor` — engine intents as venue orders (deterministic ids, lost-ack lookup, order types);
* `reconcile` — books against venue, at start, every N s and after each reconnect;
* `alerts`, `escalation` — what operators are told, and the kill switch's automatic levels;
* `preflight` — the checks `dolphin live` passes before it starts;
* `status` — the counters and alerts it publishes.
"""
