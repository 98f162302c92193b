"""The parity monitor: live trading against its replays, trade by trade, and strategy health (docs/parity.md)."""
