"""Automatic escalation of the kill switch (the seed system's tiered circuit breakers).

* **Transient faults** — orders rejected by the venue ``rejects_in_a_row`` times in a row,
  or acknowledged slower than ``latency_spike_ms`` ``spikes_in_a_row`` times in a row —
  set a **temporary pause** for ``pause_minutes`` (5): no entries, exits still managed. It
  lapses by itself (`KillState.until`), unless an operator changed the switch meanwhile.
* **Balance collapse** — the wallet ``balance_collapse_pct`` below the session's start —
  and **repeated reconciliation failures** — ``reconcile_failures_halt`` in a row, the
  venue not telling its positions — set a **persistent halt**: only an operator clears it.
* A mismatch whose policy is ``escalate`` halts too.

Escalation only ever raises the level (an operator's halt is never lowered to a pause).
It writes the same kill-switch file as `dolphin kill` and the TUI, with ``by`` naming the
live trader, so the trader journals the change at its next step (`KillRecord`), and an
``escalation`` alert says why on the bus and in the journal at once.
"""

from __future__ import annotations

import logging
from typing import Any

from dolphin.enums import KillLevel
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.live.alerts import AlertBook, LiveAlert
from dolphin.execution.live.kinds import AlertKind

log = logging.getLogger("dolphin.live")

BY = "dolphin live (automatic)"


class Escalator:
    def __init__(self, switch: KillSwitch, live: Any, alerts: AlertBook) -> None:
        self.switch = switch
        self.alerts = alerts
        self.rejects_in_a_row = int(live.rejects_in_a_row)
        self.latency_spike_ms = float(live.latency_spike_ms)
        self.spikes_in_a_row = int(live.spikes_in_a_row)
        self.pause_s = float(live.pause_minutes) * 60.0
        self.failures_halt = int(live.reconcile_failures_halt)
        self.collapse = float(live.balance_collapse_pct) / 100.0
        self.rejects = 0
        self.spikes = 0
        self.reconcile_failures = 0
        self.start_wallet: float | None = None
        self.pauses = 0
        self.halts = 0
        self._collapsed = False

    # ------------------------------------------------------------------ inputs
    def order_accepted(self, latency_ms: float) -> None:
        self.rejects = 0
        if latency_ms > self.latency_spike_ms:
            self.spikes += 1
            if self.spikes >= self.spikes_in_a_row:
                self.spikes = 0
                self.pause(f"{self.spikes_in_a_row} order acknowledgements in a row slower than "
                           f"{self.latency_spike_ms:g} ms (last {latency_ms:.0f} ms)")
        else:
            self.spikes = 0

    def order_rejected(self, detail: str) -> None:
        self.rejects += 1
        if self.rejects >= self.rejects_in_a_row:
            self.rejects = 0
            self.pause(f"{self.rejects_in_a_row} orders in a row rejected by the venue (last: {detail})")

    def reconciled(self, ok: bool, detail: str = "") -> None:
        if ok:
            self.reconcile_failures = 0
            return
        self.reconcile_failures += 1
        if self.reconcile_failures == self.failures_halt:
            self.halt(f"{self.failures_halt} reconciliations in a row failed (last: {detail})")

    def wallet(self, balance: float) -> None:
        if self.start_wallet is None:
            self.start_wallet = balance
            return
        floor = self.start_wallet * (1.0 - self.collapse)
        if balance < floor and not self._collapsed:
            self._collapsed = True
            self.halt(f"balance collapse: wallet {balance:,.2f} USDT is more than {self.collapse:.0%} below the "
                      f"session's start ({self.start_wallet:,.2f})")

    def escalate(self, alert: LiveAlert) -> None:
        """A mismatch whose policy is escalate."""
        self.halt(f"{alert.kind} {alert.symbol}: {alert.detail} (policy: escalate)")

    # ------------------------------------------------------------------ actions
    def pause(self, reason: str) -> bool:
        if not self._raise(KillLevel.PAUSE, f"temporary pause ({self.pause_s / 60:g} min): {reason}", self.pause_s):
            return False
        self.pauses += 1
        return True

    def halt(self, reason: str) -> bool:
        if not self._raise(KillLevel.HALT, reason, 0.0):
            return False
        self.halts += 1
        return True

    def _raise(self, level: KillLevel, reason: str, for_s: float) -> bool:
        current = self.switch.state().level
        if current.rank >= level.rank:
            log.warning("escalation to %s not needed (the switch is at %s): %s", level, current, reason)
            return False
        self.switch.engage(level, reason=reason, by=BY, for_s=for_s)
        self.alerts.raise_(AlertKind.ESCALATION, "", f"kill switch → {level}: {reason}")
        return True


__all__ = ["BY", "Escalator"]
