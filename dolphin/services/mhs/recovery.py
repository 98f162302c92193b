"""MHS recovery policy (bible §24.5.3, §26.3.3): restart only what is down, once per cooldown.

- Only critical data services in STOPPED / EXITED / FATAL are restarted — never a RUNNING
  one, never one supervisord is already handling (STARTING, BACKOFF, STOPPING), and never
  the traders (paper and live). supervisord's autorestart owns crashes; MHS owns what supervisord gave up
  on (FATAL) or what was stopped. The two never act on the same state, so they cannot
  fight (the "random killer" of §26.1).
- The cooldown timestamp is committed under a lock *before* the restart thread starts,
  so concurrent checks cannot double-fire.
- The restart runs in a daemon thread: a hung supervisord call never blocks the check loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

RECOVERY_COOLDOWN_CRITICAL_S = 10.0
RECOVERY_COOLDOWN_DEFAULT_S = 300.0
RESTARTABLE_STATES = frozenset({"STOPPED", "EXITED", "FATAL"})
NEVER_RESTARTED = frozenset({"trader", "live"})

log = logging.getLogger("dolphin.mhs.recovery")


class RecoveryManager:
    def __init__(self, restart: Callable[[str], None], *, cooldown_s: float = RECOVERY_COOLDOWN_CRITICAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._restart = restart
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self.fired: list[str] = []
        self.failures: dict[str, str] = {}

    def should_restart(self, service: str, state: str, critical: bool) -> bool:
        return critical and service not in NEVER_RESTARTED and state in RESTARTABLE_STATES

    def maybe_recover(self, service: str, state: str, critical: bool) -> bool:
        """Start a restart of ``service`` if policy and cooldown allow; True when one was started."""
        if not self.should_restart(service, state, critical):
            return False
        with self._lock:
            now = self._clock()
            last = self._last.get(service)
            if last is not None and now - last < self._cooldown_s:
                return False
            self._last[service] = now
            self.fired.append(service)
        log.warning("recovering %s (%s): restarting through supervisord", service, state)
        threading.Thread(target=self._run, args=(service,), name=f"mhs-recover-{service}", daemon=True).start()
        return True

    def _run(self, service: str) -> None:
        try:
            self._restart(service)
            log.info("recovered %s", service)
            self.failures.pop(service, None)
        except Exception as exc:  # reported, retried after the cooldown
            self.failures[service] = str(exc)
            log.error("recovery of %s failed: %s", service, exc)
