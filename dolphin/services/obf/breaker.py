"""The OBF bus writer's circuit breaker (bible §15.6, §20.1), a state machine on an injectable clock.

CLOSED: pushes go to the bus; `threshold` consecutive failures open the circuit.
OPEN: no push until the back-off has passed (the daemon writes the fallback file instead);
then the next push is a HALF_OPEN probe. A probe that succeeds closes the circuit (and
resets the back-off); one that fails opens it again with the back-off doubled, up to
`backoff_max_s`. Why a breaker and not plain retries: while the bus is away every push
waits for its timeout, and a writer that kept trying at full rate would spend the outage
waiting; the breaker turns that into one probe per back-off and a file consumers can read.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dolphin.enums import CircuitState


class CircuitBreaker:
    def __init__(self, threshold: int = 5, *, backoff_s: float = 1.0, backoff_max_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 1 or backoff_s <= 0 or backoff_max_s < backoff_s:
            raise ValueError("threshold >= 1 and 0 < backoff_s <= backoff_max_s")
        self.threshold = int(threshold)
        self.backoff_initial_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self._clock = clock
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self.failures = 0           # every failed push, in all
        self.opens = 0              # times the circuit opened from CLOSED
        self.probes = 0
        self.backoff_s = self.backoff_initial_s
        self.retry_at: float | None = None

    @property
    def is_closed(self) -> bool:
        return self.state is CircuitState.CLOSED

    def allow(self) -> bool:
        """Whether a push may be tried now (an OPEN circuit past its back-off becomes HALF_OPEN)."""
        if self.state is CircuitState.OPEN:
            if self.retry_at is not None and self._clock() < self.retry_at:
                return False
            self.state = CircuitState.HALF_OPEN
            self.probes += 1
        return True

    def seconds_until_retry(self) -> float:
        if self.state is not CircuitState.OPEN or self.retry_at is None:
            return 0.0
        return max(0.0, self.retry_at - self._clock())

    def record_success(self) -> CircuitState:
        """A push went through: CLOSED, back-off reset. Returns the state before."""
        before = self.state
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self.backoff_s = self.backoff_initial_s
        self.retry_at = None
        return before

    def record_failure(self) -> CircuitState:
        """A push failed. Returns the new state."""
        self.failures += 1
        self.consecutive_failures += 1
        if self.state is CircuitState.HALF_OPEN:
            self.backoff_s = min(self.backoff_max_s, self.backoff_s * 2.0)
            self._open()
        elif self.state is CircuitState.CLOSED and self.consecutive_failures >= self.threshold:
            self.opens += 1
            self._open()
        return self.state

    def _open(self) -> None:
        self.state = CircuitState.OPEN
        self.retry_at = self._clock() + self.backoff_s


__all__ = ["CircuitBreaker"]
