"""What the live trader tells operators: alerts on the bus (``StrategyState.live``), in the TUI, in the journal.

An alert is raised once per condition: a standing mismatch (a phantom position in
ETHUSDT) is alerted when it appears, kept in the active list while it stands (entries on
that symbol blocked), and closed with an ``info`` alert when reconciliation finds books
and venue agreeing again — a reconciliation every 15 s does not repeat it. The action of
a mismatch follows the configured policy (``live.on_<kind>``): ``alert`` (default) or
``escalate`` (the kill switch goes to halt). Every alert is journaled (`AlertRecord`) at
the next moment the trader is between steps, so the journal stays one writer's.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import msgspec

from dolphin.execution.live.kinds import AlertAction, AlertKind
from dolphin.store.journal import AlertRecord, Journal

log = logging.getLogger("dolphin.live")

RECENT_ALERTS = 20


class LiveAlert(msgspec.Struct, frozen=True):
    kind: str
    symbol: str
    detail: str
    at: float
    action: str


class AlertBook:
    def __init__(self, policy: dict[AlertKind, AlertAction] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.policy = dict(policy or {})
        self.clock = clock
        self.counts: dict[str, int] = {}
        self.recent: deque[LiveAlert] = deque(maxlen=RECENT_ALERTS)
        self.active: dict[tuple[str, str], LiveAlert] = {}
        self.on_escalate: Callable[[LiveAlert], None] | None = None
        self.on_change: Callable[[], None] | None = None
        self._unjournaled: list[LiveAlert] = []

    def raise_(self, kind: AlertKind, symbol: str, detail: str, *, standing: bool = False) -> LiveAlert | None:
        """Raise an alert; a ``standing`` one (a mismatch) only when it is new or its detail changed."""
        key = (str(kind), symbol)
        if standing and key in self.active and self.active[key].detail == detail:
            return None
        action = self.policy.get(kind, AlertAction.ALERT) if kind.is_mismatch else AlertAction.ALERT
        alert = LiveAlert(kind=str(kind), symbol=symbol, detail=detail, at=self.clock(), action=str(action))
        if standing:
            self.active[key] = alert
        self._record(alert)
        level = logging.ERROR if kind.is_mismatch or kind is AlertKind.ESCALATION else logging.WARNING
        log.log(level, "ALERT %s%s: %s%s", kind, f" {symbol}" if symbol else "", detail,
                " — escalating to halt" if action is AlertAction.ESCALATE else "")
        if action is AlertAction.ESCALATE and self.on_escalate is not None:
            self.on_escalate(alert)
        return alert

    def resolve(self, kind: AlertKind, symbol: str, detail: str = "") -> None:
        """A standing condition ended: drop it from the active list, with an info alert."""
        gone = self.active.pop((str(kind), symbol), None)
        if gone is None:
            return
        note = detail or f"books and venue agree again on {symbol or 'the account'}"
        log.info("RESOLVED %s%s: %s", kind, f" {symbol}" if symbol else "", note)
        self._record(LiveAlert(kind=str(kind), symbol=symbol, detail=f"resolved: {note}", at=self.clock(),
                               action=str(AlertAction.INFO)))

    def standing(self, kind: AlertKind) -> set[str]:
        return {symbol for (k, symbol) in self.active if k == kind}

    def _record(self, alert: LiveAlert) -> None:
        if alert.action != AlertAction.INFO:
            self.counts[alert.kind] = self.counts.get(alert.kind, 0) + 1
        self.recent.append(alert)
        self._unjournaled.append(alert)
        if self.on_change is not None:
            self.on_change()

    def flush(self, journal: Journal) -> int:
        """Journal the alerts raised since the last flush (call between steps: one writer)."""
        if not self._unjournaled:
            return 0
        alerts, self._unjournaled = self._unjournaled, []
        try:
            journal.append(*(AlertRecord(seq=journal.next_seq(), kind=a.kind, symbol=a.symbol, detail=a.detail,
                                         action=a.action, at=a.at) for a in alerts))
        except OSError:
            self._unjournaled = alerts + self._unjournaled   # kept for the next flush
            raise
        return len(alerts)


__all__ = ["AlertBook", "LiveAlert"]
