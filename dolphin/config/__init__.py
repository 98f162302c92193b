"""Strategy configuration: YAML loaded and validated into the engine's `StrategyConfig`, champion integrity.

The parameter types live with the engine (`dolphin.engine.params`); this package only reads
files into them, so the engine never imports the configuration layer.
"""

from dolphin.config.champion import CHAMPION_HASH, FROZEN_CHAMPION, champion_hash, drift
from dolphin.config.loader import config_from_mapping, load_config, resolve_config_path

__all__ = [
    "CHAMPION_HASH",
    "FROZEN_CHAMPION",
    "champion_hash",
    "config_from_mapping",
    "drift",
    "load_config",
    "resolve_config_path",
]
