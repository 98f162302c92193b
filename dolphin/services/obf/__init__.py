"""The OBF daemon (bible §16.5, §26.2, §9, §20.1): the order-book universe and live OB features.

Run it with ``python -m dolphin.services.obf``. Pieces:

* `ingest` — the hot loop's state: latest valid book per symbol, bars on market time, dark symbols;
* `breaker` — the bus writer's circuit breaker (§15.6);
* `publisher` — coalescing bus writes off the hot loop, and the fallback file;
* `service` — the daemon that wires them (bar worker, snapshots, history, status, stall watchdog).

See docs/obf.md.
"""

from dolphin.services.obf.breaker import CircuitBreaker
from dolphin.services.obf.ingest import ClosedBar, UniverseBooks
from dolphin.services.obf.publisher import ObfPublisher
from dolphin.services.obf.service import ObfDaemon, ObfOptions, ObfSettings, ObfStats, resolve_settings, run_obf

__all__ = ["CircuitBreaker", "ClosedBar", "ObfDaemon", "ObfOptions", "ObfPublisher", "ObfSettings", "ObfStats",
           "UniverseBooks", "resolve_settings", "run_obf"]
