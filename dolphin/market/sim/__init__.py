"""The simulator exchange: Binance USD-M REST and WebSocket protocol served on loopback.

    >>> from dolphin.market.sim import SimConfig, SimExchange
    >>> with SimExchange(SimConfig(port=0, symbols=50, speed=60)) as sim:
    ...     print(sim.rest_url, sim.ws_url)

See ``docs/market.md`` for the URL layout, what is simulated and how, and what differs
from Binance.
"""

from dolphin.market.sim.app import SimExchange, Simulator, serve
from dolphin.market.sim.config import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimConfig

__all__ = ["DEFAULT_API_KEY", "DEFAULT_API_SECRET", "SimConfig", "SimExchange", "Simulator", "serve"]
