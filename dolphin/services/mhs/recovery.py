"""MHS recovery policy (bible §24.5.3, §26.3.3): restart only what is down, once per cooldown.

- Only critical data services in STOPPED / EXITED / FATAL are restarted — never a RUNNING
  one, never one supervisord is already handling (STARTING, BACKOFF, STOPPING), and never
  the traders (paper and live). supervisord's autorestart owns crashes; MHS owns what supervisord gave up
  on (FATAL) or what was stopped. The two never act on the same state, so they cannot
  fight (the "random killer" of §26.1).
- The cooldown timestamp is committed under a lock *before* the restart thread starts,
  so concurrent checks cannot double-fire.
- The restart runs in a daemon thread: a hung supervisord call never blocks the check loop.
- Every restart started is recorded: a count per service and the latest events (found
  state, time, outcome). The record goes out in every report, so an operator or a test
  sees what MHS did even if the service was down only between two looks at the report
  (a state sampled by polling can be missed; a count that went up cannot).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from dolphin.bus.payloads import RecoveryEvent
from dolphin.enums import RecoveryOutcome

RECOVERY_COOLDOWN_CRITICAL_S = 10.0
RECOVERY_COOLDOWN_DEFAULT_S = 300.0
RESTARTABLE_STATES = frozenset({"STOPPED", "EXITED", "FATAL"})
NEVER_RESTARTED = frozenset({"trader", "live"})
RECENT_EVENTS = 20  # events kept for the report (the counts are never trimmed)

log = logging.getLogger("dolphin.mhs.recovery")


@dataclass(slots=True)
class _Attempt:
    """One restart in flight or done; mutated only under the manager's lock."""

    service: str
    found: str
    at: float
    outcome: RecoveryOutcome = RecoveryOutcome.PENDING
    error: str | None = None

    def event(self) -> RecoveryEvent:
        return RecoveryEvent(service=self.service, found=self.found, at=self.at, outcome=self.outcome,
                             error=self.error)


class RecoveryManager:
    def __init__(self, restart: Callable[[str], None], *, cooldown_s: float = RECOVERY_COOLDOWN_CRITICAL_S,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time) -> None:
        self._restart = restart
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._recent: deque[_Attempt] = deque(maxlen=RECENT_EVENTS)
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
            self._counts[service] = self._counts.get(service, 0) + 1
            attempt = _Attempt(service=service, found=state, at=self._wall_clock())
            self._recent.append(attempt)
        log.warning("recovering %s (%s): restarting through supervisord", service, state)
        threading.Thread(target=self._run, args=(attempt,), name=f"mhs-recover-{service}", daemon=True).start()
        return True

    def counts(self) -> dict[str, int]:
        """Restarts started per service since this MHS started (services never restarted are absent)."""
        with self._lock:
            return dict(self._counts)

    def recent(self) -> list[RecoveryEvent]:
        """The latest restarts, oldest first, each with its outcome so far."""
        with self._lock:
            return [a.event() for a in self._recent]

    def _run(self, attempt: _Attempt) -> None:
        service = attempt.service
        try:
            self._restart(service)
        except Exception as exc:  # reported, retried after the cooldown
            with self._lock:
                attempt.outcome, attempt.error = RecoveryOutcome.FAILED, str(exc)
                self.failures[service] = str(exc)
            log.error("recovery of %s failed: %s", service, exc)
            return
        with self._lock:
            attempt.outcome = RecoveryOutcome.OK
            self.failures.pop(service, None)
        log.info("recovered %s", service)
