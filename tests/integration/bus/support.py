"""Helpers for the bus integration tests: client drivers, subprocess members, raw sockets.

Everything here drives real parts: the official client (threaded or asyncio) against a
real member (in-process thread or a subprocess), on loopback with free ports.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import hazelcast

from tests.support import free_port, wait_until  # noqa: F401 - re-exported to this layer's tests

PROJECT_ROOT = Path(__file__).resolve().parents[3]

KINDS = [("threaded", True), ("threaded", False), ("asyncio", True), ("asyncio", False)]
KIND_IDS = ["threaded-smart", "threaded-unisocket", "asyncio-smart", "asyncio-unisocket"]

FAST_RECONNECT = {"retry_initial_backoff": 0.05, "retry_max_backoff": 0.3, "retry_multiplier": 1.5}


class LoopThread:
    """An asyncio loop on its own thread, so synchronous tests can drive the asyncio client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-asyncio-client", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class SyncProxy:
    """Calls a proxy's methods and resolves futures/coroutines to plain results."""

    def __init__(self, proxy: Any, resolve: Callable[[Any], Any]) -> None:
        self._proxy = proxy
        self._resolve = resolve

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._proxy, name)
        if not callable(attr):
            return attr
        return lambda *a, **k: self._resolve(attr(*a, **k))


class Driver:
    """One official client (threaded or asyncio; smart or unisocket) with a synchronous face."""

    def __init__(self, kind: str, smart: bool, address: str | list[str], cluster_name: str = "dolphin",
                 **options: Any) -> None:
        self.kind = kind
        self.smart = smart
        members = [address] if isinstance(address, str) else list(address)
        opts = {"cluster_members": members, "cluster_name": cluster_name, "cluster_connect_timeout": 10.0,
                "smart_routing": smart, **options}
        self._opts = opts
        self.runner: LoopThread | None = None
        if kind == "threaded":
            self.client: Any = hazelcast.HazelcastClient(**opts)
        else:
            from hazelcast.asyncio import HazelcastClient as AsyncClient

            self.runner = LoopThread()
            self.client = self.runner.run(AsyncClient.create_and_start(**opts))

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        assert self.runner is not None
        return self.runner.run(coro, timeout)

    def _resolve(self, value: Any) -> Any:
        if asyncio.iscoroutine(value):
            return self.run(value)
        return value

    def map(self, name: str) -> SyncProxy:
        if self.kind == "threaded":
            return SyncProxy(self.client.get_map(name).blocking(), lambda v: v)
        return SyncProxy(self.run(self.client.get_map(name)), self._resolve)

    def atomic_reference(self, name: str) -> SyncProxy:
        if self.kind == "threaded":
            return SyncProxy(self.client.cp_subsystem.get_atomic_reference(name).blocking(), lambda v: v)
        return SyncProxy(self.run(self.client.cp_subsystem.get_atomic_reference(name)), self._resolve)

    def distributed_object_names(self) -> set[str]:
        """The asyncio client cannot list objects, so a threaded client asks for it."""
        if self.kind == "threaded":
            return {o.name for o in self.client.get_distributed_objects()}
        lister = hazelcast.HazelcastClient(**{**self._opts, "smart_routing": True})
        try:
            return {o.name for o in lister.get_distributed_objects()}
        finally:
            lister.shutdown()

    def shutdown(self) -> None:
        if self.runner is None:
            self.client.shutdown()
        else:
            self.run(self.client.shutdown())
            self.runner.close()


class EventLog:
    """Thread-safe collector of entry events, as (type, key, value, old_value) tuples."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[int, Any, Any, Any]] = []

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.events.append((event.event_type, event.key, event.value, event.old_value))

    def snapshot(self) -> list[tuple[int, Any, Any, Any]]:
        with self._lock:
            return list(self.events)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[tuple[int, Any, Any, Any]]:
        wait_until(lambda: len(self.snapshot()) >= count, timeout)
        return self.snapshot()


class MemberProcess:
    """A member in its own process (`python -m dolphin.bus.member`), as supervisord runs it."""

    def __init__(self, port: int, tmp: Path, *args: str, data_dir: Path | None = None) -> None:
        self.port = port
        self.tmp = tmp
        self.args = args
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}
        self.stderr_path = tmp / f"member-{port}.stderr"
        self._starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> MemberProcess:
        self._starts += 1
        ready_file = self.tmp / f"ready-{self.port}-{self._starts}.json"
        cmd = [sys.executable, "-m", "dolphin.bus.member", "--port", str(self.port), "--ready-file", str(ready_file),
               *self.args]
        if self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        while not ready_file.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"member exited with {self.proc.returncode}: {self.stderr_path.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError("member did not become ready")
            time.sleep(0.02)
        self.ready = json.loads(ready_file.read_text())
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


# ---------------------------------------------------------------- raw protocol
_FRAME = struct.Struct("<iH")


def raw_connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def auth_request_bytes(cluster_name: str = "dolphin", correlation_id: int = 1) -> bytes:
    """A complete Authentication request, encoded by the official client's codec."""
    import uuid

    from hazelcast.protocol.codec import client_authentication_codec

    message = client_authentication_codec.encode_request(cluster_name, None, None, uuid.uuid4(), "PYH", 1, "5.7.0",
                                                         "raw-test", [])
    message.set_correlation_id(correlation_id)
    return bytes(message.buf)


def read_message(sock: socket.socket) -> list[tuple[int, bytes]]:
    """Read frames up to IS_FINAL; returns [(flags, body)]; raises ConnectionError on EOF."""
    frames = []
    while True:
        header = _recv_exact(sock, 6)
        length, flags = _FRAME.unpack(header)
        body = _recv_exact(sock, length - 6)
        frames.append((flags, body))
        if flags & (1 << 13):
            return frames


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the member")
        buf += chunk
    return buf


def is_closed_by_peer(sock: socket.socket, timeout: float = 10.0) -> bool:
    """True once the member has closed the connection (recv returns EOF or reset)."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def to_inbound(frames: list[tuple[int, bytes]]) -> Any:
    """Raw frames → the client's own InboundMessage, so its codecs decode what the member sent."""
    from hazelcast.protocol.client_message import Frame, InboundMessage

    message = InboundMessage(Frame(bytearray(frames[0][1]), frames[0][0]))
    for flags, body in frames[1:]:
        message.add_frame(Frame(bytearray(body), flags))
    return message


class RawClient:
    """A hand-driven protocol connection: send client-codec requests, read raw responses."""

    def __init__(self, address: str, cluster_name: str = "dolphin") -> None:
        self.sock = raw_connect(address)
        self.sock.sendall(b"CP2" + auth_request_bytes(cluster_name, 1))
        self.auth = read_message(self.sock)
        self._corr = 1

    def call(self, message: Any) -> list[tuple[int, bytes]]:
        """Send an OutboundMessage; return the response frames (skipping events)."""
        self._corr += 1
        message.set_correlation_id(self._corr)
        self.sock.sendall(bytes(message.buf))
        while True:
            frames = read_message(self.sock)
            if not frames[0][0] & (1 << 9):  # not an event
                return frames

    def close(self) -> None:
        self.sock.close()
