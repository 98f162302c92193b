"""Messages the feeds and workers post to the app (all safe to post from any thread)."""

from __future__ import annotations

from textual.message import Message


class StateChanged(Message):
    """Something in `TuiState` changed; the app drains the dirty topics and refreshes those panels.

    Posted at most once per drain (the state coalesces), from the bus client's thread,
    a poller thread or a replay thread.
    """


class ServiceActionDone(Message):
    """A start/stop/restart requested from the services table has finished (or failed)."""

    def __init__(self, service: str, action: str, ok: bool, detail: str) -> None:
        super().__init__()
        self.service = service
        self.action = action
        self.ok = ok
        self.detail = detail


class ControlDone(Message):
    """An operator control (kill switch level, force exit request) was written, or failed to be."""

    def __init__(self, what: str, ok: bool, detail: str) -> None:
        super().__init__()
        self.what = what
        self.ok = ok
        self.detail = detail
