"""supervisord for the TUI: the one polled source, service actions, and log tails.

`SupervisorPoller` asks supervisord for its process table (one cheap XML-RPC call,
`getAllProcessInfo`) every few seconds on a daemon thread and stores the answer in
`TuiState`; it never talks to the services themselves. Actions (start/stop/restart)
and log reads go through the same `SupervisorClient` as `dolphin svc`, with timeouts,
off the UI thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from dolphin.enums import ServiceAction
from dolphin.supervision.actions import ActionResult, act
from dolphin.supervision.errors import SupervisorNotRunning
from dolphin.supervision.rpc import ProcessInfo, SupervisorClient
from tui.state import ServicesView, TuiState

POLL_INTERVAL_S = 3.0
RPC_TIMEOUT_S = 2.0
ACTION_TIMEOUT_S = 60.0
LOG_TAIL_BYTES = 16_384


def default_socket() -> Path:
    """The family's supervisord socket (what `dolphin up` rendered for this runtime root)."""
    from dolphin.supervision.family import family_paths

    return family_paths().socket


class SupervisorPoller:
    """Polls supervisord's process table into the state; `poke()` polls now."""

    def __init__(self, state: TuiState, socket_path: str | Path, *, interval_s: float = POLL_INTERVAL_S,
                 timeout_s: float = RPC_TIMEOUT_S) -> None:
        self.state = state
        self.socket_path = str(socket_path)
        self.interval_s = interval_s
        self.client = SupervisorClient(self.socket_path, timeout=timeout_s)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        state.set_services(ServicesView(socket=self.socket_path, enabled=True))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tui-supervisor-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    def poll_once(self) -> ServicesView:
        self.polls += 1
        now = self.state.clock()
        try:
            infos = tuple(self.client.all_processes())
            view = ServicesView(infos=infos, polled_at=now, error=None, socket=self.socket_path, enabled=True)
        except SupervisorNotRunning:
            view = ServicesView(infos=(), polled_at=now, socket=self.socket_path, enabled=True,
                                error="supervisord is not running (start the family with `dolphin up`)")
        except Exception as exc:
            view = ServicesView(infos=self.state.services.infos, polled_at=now, socket=self.socket_path,
                                enabled=True, error=f"supervisord did not answer: {exc}")
        self.state.set_services(view)
        return view

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._wake.wait(self.interval_s)
            self._wake.clear()


def run_action(socket_path: str | Path, fullname: str, action: ServiceAction,
               timeout_s: float = ACTION_TIMEOUT_S) -> ActionResult:
    """The one supervision action (`dolphin.supervision.actions.act`) on its own client, for a worker thread."""
    return act(SupervisorClient(socket_path, timeout=timeout_s), fullname, action, timeout_s)


def in_background(fn: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread: quitting the TUI never waits for a slow supervisord call."""
    thread = threading.Thread(target=fn, name=name, daemon=True)
    thread.start()
    return thread


class LogFollower:
    """Tail then follow one program's log through supervisord (``tailProcessStdoutLog``)."""

    def __init__(self, socket_path: str | Path, fullname: str, timeout_s: float = RPC_TIMEOUT_S) -> None:
        self.client = SupervisorClient(socket_path, timeout=timeout_s)
        self.fullname = fullname
        self.offset: int | None = None

    def first(self, length: int = LOG_TAIL_BYTES) -> str:
        # From offset 0, supervisord answers the last `length` bytes and the end offset.
        text, self.offset = self.client.read_from(self.fullname, 0, length)
        return text

    def more(self) -> str:
        if self.offset is None:
            return self.first()
        text, self.offset = self.client.read_from(self.fullname, self.offset)
        return text


def process_by_name(infos: tuple[ProcessInfo, ...], name: str) -> ProcessInfo | None:
    for info in infos:
        if info.name == name or info.fullname == name:
            return info
    return None


def uptime_now(info: ProcessInfo, polled_at: float | None, now: float) -> float | None:
    """Uptime advanced by the time since the poll (so the column ticks without polling)."""
    up = info.uptime_s
    if up is None:
        return None
    return up + max(0.0, now - polled_at) if polled_at is not None else up
