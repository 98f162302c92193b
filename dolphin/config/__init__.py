"""Strategy configuration: schema, loading with validation, champion integrity."""

from dolphin.config.champion import CHAMPION_HASH, FROZEN_CHAMPION, champion_hash, drift
from dolphin.config.loader import config_from_mapping, load_config, resolve_config_path
from dolphin.config.schema import StrategyConfig

__all__ = [
    "CHAMPION_HASH",
    "FROZEN_CHAMPION",
    "StrategyConfig",
    "champion_hash",
    "config_from_mapping",
    "drift",
    "load_config",
    "resolve_config_path",
]
