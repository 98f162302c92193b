"""DOLPHIN's deterministic, seeded synthetic market (see ``docs/synthetic_market.md``).

It feeds the backtester (``dolphin backtest --synthetic``: generate → scan build →
engine) and the simulator exchange (``dolphin sim``: Binance REST/WebSocket over the
same bars, their 1 s paths, funding and books built from the symbols' liquidity tiers).

    >>> from dolphin.market.synthetic import SyntheticConfig, SyntheticMarket
    >>> market = SyntheticMarket(SyntheticConfig(seed=7, n_symbols=50))
    >>> day0 = market.day(0)                  # Bars: ts_ms + (17280, 50) OHLCV arrays
    >>> table = market.klines_table(days=3)   # long format for `dolphin scan build`
"""

from .config import DEFAULT_START_MS, SyntheticConfig
from .factors import ExternalFactors
from .instruments import SymbolSpec
from .market import KLINE_SCHEMA, Bars, SyntheticMarket
from .regimes import Episode
from .streams import STREAM_VERSION

__all__ = [
    "DEFAULT_START_MS",
    "KLINE_SCHEMA",
    "STREAM_VERSION",
    "Bars",
    "Episode",
    "ExternalFactors",
    "SymbolSpec",
    "SyntheticConfig",
    "SyntheticMarket",
]
