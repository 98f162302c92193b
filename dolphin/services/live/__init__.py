"""The `live` program: the trader on a real venue (testnet by default), `dolphin live` in the foreground."""
