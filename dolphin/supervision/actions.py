"""One service action (start | stop | restart) for every caller: `dolphin svc`, the TUI and MHS.

`act` takes a program's ``group:name`` and a `ServiceAction`, drives supervisord through
`SupervisorClient`, waits for the end state, and returns an `ActionResult` with the
process before and after — callers only render it. Failures are the typed errors of
`dolphin.supervision.errors` (a failed start carries the program's last log lines).
"""

from __future__ import annotations

from dataclasses import dataclass

from dolphin.enums import ProcessState, ServiceAction
from dolphin.supervision.errors import NotRunning, StartFailed
from dolphin.supervision.rpc import RUNNING_STATES, ProcessInfo, SupervisorClient

LOG_LINES_ON_FAILURE = 12
DEFAULT_TIMEOUT_S = 60.0


def last_log_lines(sup: SupervisorClient, fullname: str, n: int = LOG_LINES_ON_FAILURE) -> str:
    """The tail of a program's log, for a failure message ("" when supervisord cannot give it)."""
    try:
        text = sup.tail(fullname, 8192)
    except Exception:
        return ""
    return "\n".join(text.splitlines()[-n:])


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action did to one program: its process before and after."""

    fullname: str
    action: ServiceAction
    before: ProcessInfo
    after: ProcessInfo

    @property
    def name(self) -> str:
        return self.after.name

    @property
    def changed(self) -> bool:
        """False when the action found the program already where it was asked to go."""
        return self.before.pid != self.after.pid or self.before.state != self.after.state

    def summary(self) -> str:
        """One line: ``restarted scanner (pid 120 → 233)``, ``stopped mhs (STOPPED)``."""
        if self.action is ServiceAction.STOP:
            return f"{self.action.past} {self.name} ({self.after.state})"
        if self.action is ServiceAction.RESTART:
            return f"{self.action.past} {self.name} (pid {self.before.pid or '-'} → {self.after.pid})"
        return f"{self.action.past} {self.name} (pid {self.after.pid})"


def _start(sup: SupervisorClient, fullname: str, timeout_s: float) -> ProcessInfo:
    try:
        sup.start(fullname, wait=True)
    except StartFailed as exc:
        raise StartFailed(f"{exc}; last log lines:\n{last_log_lines(sup, fullname)}") from None
    return sup.wait_state(fullname, RUNNING_STATES, timeout_s)


def act(sup: SupervisorClient, fullname: str, action: ServiceAction,
        timeout_s: float = DEFAULT_TIMEOUT_S) -> ActionResult:
    """Apply `action` to the program ``fullname`` and wait for its end state.

    start: RUNNING (AlreadyRunning if it runs); stop: stopped (NotRunning if it does not);
    restart: stop when it is not stopped, then start — RUNNING with a new pid.
    """
    before = sup.process(fullname)
    if action is ServiceAction.START:
        after = _start(sup, fullname, timeout_s)
    elif action is ServiceAction.STOP:
        sup.stop(fullname, wait=True)
        after = sup.process(fullname)
    else:
        if not ProcessState.parse(before.state).is_stopped:
            try:
                sup.stop(fullname, wait=True)
            except NotRunning:
                pass
        after = _start(sup, fullname, timeout_s)
    return ActionResult(fullname=fullname, action=action, before=before, after=after)


__all__ = ["ActionResult", "act", "last_log_lines"]
