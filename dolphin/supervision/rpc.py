"""supervisord's XML-RPC API over its unix socket — the one control module (ARCHITECTURE decision 4).

`dolphin svc`, the health service and the TUI all control processes through
`SupervisorClient`; nothing parses `supervisorctl` output. Faults become typed errors
with distinct exit codes, and a missing socket means the family is down.
"""

from __future__ import annotations

import http.client
import socket
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dolphin.enums import ProcessState
from dolphin.supervision.errors import (
    AlreadyRunning,
    NotRunning,
    StartFailed,
    SupervisionTimeout,
    SupervisorError,
    SupervisorNotRunning,
    UnknownService,
)

# supervisor.xmlrpc.Faults, spelled out so the module imports without supervisor internals.
FAULT_BAD_NAME = 10
FAULT_NO_FILE = 20
FAULT_NOT_EXECUTABLE = 21
FAULT_FAILED = 30
FAULT_ABNORMAL_TERMINATION = 40
FAULT_SPAWN_ERROR = 50
FAULT_ALREADY_STARTED = 60
FAULT_NOT_RUNNING = 70

RUNNING_STATES = frozenset({ProcessState.RUNNING})
STOPPED_STATES = frozenset(s for s in ProcessState if s.is_stopped)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over a unix socket, with a timeout so a wedged supervisord cannot hang a caller."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self._path, self._timeout)


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One program as supervisord sees it."""

    name: str
    group: str
    state: ProcessState
    pid: int
    start: int          # unix seconds of the last start (0 if never)
    now: int
    exitstatus: int
    spawnerr: str
    description: str
    logfile: str

    def __post_init__(self) -> None:
        if not isinstance(self.state, ProcessState):  # a state name given as text
            object.__setattr__(self, "state", ProcessState.parse(self.state))

    @property
    def fullname(self) -> str:
        return f"{self.group}:{self.name}"

    @property
    def uptime_s(self) -> float | None:
        return float(self.now - self.start) if self.state is ProcessState.RUNNING and self.start else None

    @classmethod
    def from_rpc(cls, d: dict[str, Any]) -> ProcessInfo:
        return cls(name=d["name"], group=d["group"], state=ProcessState.parse(d["statename"]), pid=int(d["pid"]), start=int(d["start"]),
                   now=int(d["now"]), exitstatus=int(d["exitstatus"]), spawnerr=d.get("spawnerr", ""),
                   description=d.get("description", ""), logfile=d.get("stdout_logfile") or d.get("logfile", ""))


class SupervisorClient:
    """Typed calls on supervisord's RPC interface, addressed by ``group:name``."""

    def __init__(self, socket_path: str | Path, timeout: float = 30.0) -> None:
        self.socket_path = str(socket_path)
        self._proxy = xmlrpc.client.ServerProxy("http://localhost", transport=_UnixTransport(self.socket_path, timeout),
                                                allow_none=True)

    def _call(self, method: str, *args: Any, name: str = "") -> Any:
        try:
            return getattr(self._proxy, method)(*args)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise SupervisorNotRunning(f"supervisord is not running (no answer on {self.socket_path}: "
                                       f"{exc.strerror}); start the family with `dolphin up`") from None
        except TimeoutError:
            raise SupervisionTimeout(f"supervisord did not answer {method} within the timeout") from None
        except OSError as exc:
            raise SupervisorNotRunning(f"cannot reach supervisord on {self.socket_path}: {exc}") from None
        except xmlrpc.client.Fault as fault:
            raise self._map_fault(fault, name or (args[0] if args else "")) from None

    @staticmethod
    def _map_fault(fault: xmlrpc.client.Fault, name: str) -> Exception:
        code = fault.faultCode
        text = fault.faultString
        if code == FAULT_BAD_NAME:
            return UnknownService(f"supervisord knows no program {name!r}")
        if code == FAULT_ALREADY_STARTED:
            return AlreadyRunning(f"{name} is already running")
        if code == FAULT_NOT_RUNNING:
            return NotRunning(f"{name} is not running")
        if code in (FAULT_SPAWN_ERROR, FAULT_ABNORMAL_TERMINATION, FAULT_NO_FILE, FAULT_NOT_EXECUTABLE, FAULT_FAILED):
            return StartFailed(f"{name} failed to start ({text})")
        return SupervisorError(f"supervisord refused: {text}")

    # ---------------------------------------------------------------- supervisord itself
    def ping(self) -> bool:
        """True when supervisord answers and is RUNNING (not starting up or shutting down)."""
        try:
            return self._call("supervisor.getState")["statename"] == "RUNNING"
        except SupervisorNotRunning:
            return False

    def pid(self) -> int:
        return int(self._call("supervisor.getPID"))

    def shutdown(self) -> None:
        self._call("supervisor.shutdown")

    # ---------------------------------------------------------------- programs
    def all_processes(self) -> list[ProcessInfo]:
        return [ProcessInfo.from_rpc(d) for d in self._call("supervisor.getAllProcessInfo")]

    def process(self, fullname: str) -> ProcessInfo:
        return ProcessInfo.from_rpc(self._call("supervisor.getProcessInfo", fullname, name=fullname))

    def start(self, fullname: str, wait: bool = True) -> None:
        self._call("supervisor.startProcess", fullname, wait, name=fullname)

    def stop(self, fullname: str, wait: bool = True) -> None:
        self._call("supervisor.stopProcess", fullname, wait, name=fullname)

    def tail(self, fullname: str, length: int = 4096) -> str:
        """The last ``length`` bytes of a program's log."""
        text, _offset, _overflow = self._call("supervisor.tailProcessStdoutLog", fullname, 0, length, name=fullname)
        return text

    def read_from(self, fullname: str, offset: int, length: int = 65536) -> tuple[str, int]:
        """Log bytes from ``offset`` on (for following); returns (text, next offset)."""
        text, new_offset, _overflow = self._call("supervisor.tailProcessStdoutLog", fullname, offset, length,
                                                 name=fullname)
        return text, int(new_offset)

    def wait_state(self, fullname: str, states: frozenset[ProcessState], timeout_s: float, poll_s: float = 0.2) -> ProcessInfo:
        deadline = time.monotonic() + timeout_s
        while True:
            info = self.process(fullname)
            if info.state in states:
                return info
            if time.monotonic() >= deadline:
                raise SupervisionTimeout(f"{fullname} is {info.state}, not {'/'.join(sorted(states))}, "
                                         f"after {timeout_s:.0f} s")
            time.sleep(poll_s)
