"""TCP transport of the embedded member: one asyncio task per client connection.

Each connection task checks the ``CP2`` preamble, reads the socket in large chunks,
cuts them into messages with `FrameAssembler` and hands each message to the member's
dispatcher, which answers synchronously. A peer that breaks the framing (garbage, an
impossible length, a frame cut off at EOF, a request before authentication) loses its
own connection and nothing else: the error is logged once with the peer address and
counted. Tasks are tracked so a stop can cancel and await every one of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dolphin.bus.member.errors import ProtocolViolation
from dolphin.bus.member.protocol import FrameAssembler, OversizedMessage, Request

if TYPE_CHECKING:
    from dolphin.bus.member.config import MemberConfig

log = logging.getLogger("dolphin.bus.member")

Handler = Callable[["Connection", Request], None]  # a message handler: answers through conn.send

PREAMBLE = b"CP2"
_READ_CHUNK = 256 * 1024
_DRAIN_ABOVE = 1024 * 1024


class Connection:
    """State of one client connection, owned by the member's event loop.

    `send` never blocks: outbound bytes go to the transport buffer. A client that
    stops reading (a stalled listener) is disconnected once its buffer passes the
    configured limit, so one slow consumer cannot exhaust the member's memory.
    """

    __slots__ = (
        "id", "peer", "transport", "authenticated", "client_uuid", "client_name", "client_type",
        "last_read", "closed", "close_reason", "registrations", "cluster_view_correlation", "_max_buffer",
    )

    def __init__(self, conn_id: int, peer: str, transport: asyncio.WriteTransport, max_buffer: int) -> None:
        self.id = conn_id
        self.peer = peer
        self.transport = transport
        self.authenticated = False
        self.client_uuid: Any = None
        self.client_name = ""
        self.client_type = ""
        self.last_read = time.monotonic()
        self.closed = False
        self.close_reason = ""
        self.registrations: dict[Any, Any] = {}  # listener registration id -> registration
        self.cluster_view_correlation: int | None = None
        self._max_buffer = max_buffer

    def send(self, data: bytes | bytearray) -> None:
        if self.closed:
            return
        transport = self.transport
        if transport.is_closing():  # the peer went away before our reader noticed
            self.closed = True
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self._max_buffer:
            self.close(f"client stopped reading ({transport.get_write_buffer_size()} bytes unsent)")
            log.warning("connection %s (%s): disconnected, it stopped reading its events", self.id, self.peer)

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.transport.close()

    def describe(self) -> str:
        who = self.client_name or "unauthenticated"
        return f"#{self.id} {self.peer} ({who})"


class Transport:
    """Accepts connections and runs one reader task per connection."""

    def __init__(
        self,
        config: MemberConfig,
        dispatch: Callable[[Connection, Request], None],
        on_close: Callable[[Connection], None],
        counters: dict[str, int],
    ) -> None:
        self._config = config
        self._dispatch = dispatch
        self._on_close = on_close
        self._counters = counters
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections: dict[int, Connection] = {}
        self._next_id = 0
        self.bound_host = config.host
        self.bound_port = config.port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, host=self._config.host, port=self._config.port, limit=_READ_CHUNK,
        )
        sockname = self._server.sockets[0].getsockname()
        self.bound_host, self.bound_port = sockname[0], sockname[1]

    async def stop(self) -> None:
        """Stop accepting, close every connection, cancel and await the connection tasks."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections.values()):
            conn.close("member shutting down")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)
            except TimeoutError:
                pass
            self._server = None

    def reap_idle(self, now: float) -> None:
        idle = self._config.idle_timeout_s
        if idle <= 0:
            return
        for conn in list(self.connections.values()):
            if now - conn.last_read > idle:
                log.info("connection %s: closed after %.0f s without a message", conn.describe(), idle)
                conn.close("idle timeout")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._next_id += 1
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        conn = Connection(self._next_id, peer, writer.transport, self._config.max_write_buffer_bytes)
        self.connections[conn.id] = conn
        self._counters["connections_accepted"] += 1
        try:
            await self._read_loop(conn, reader, writer)
        except ProtocolViolation as exc:
            self._counters["protocol_violations"] += 1
            log.warning("connection %s: protocol violation, closing it: %s", conn.describe(), exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except TimeoutError:
            self._counters["protocol_violations"] += 1
            log.warning("connection %s: no protocol preamble within %.0f s, closing it",
                        conn.describe(), self._config.handshake_timeout_s)
        except asyncio.CancelledError:
            # Only Transport.stop cancels these tasks. Ending normally instead of re-raising keeps
            # asyncio's stream callback (Python 3.11) from logging the cancellation as an error.
            pass
        except Exception:  # a member bug must cost one connection, not the member
            self._counters["internal_errors"] += 1
            log.exception("connection %s: unexpected error, closing it", conn.describe())
        finally:
            conn.close(conn.close_reason or "closed")
            self.connections.pop(conn.id, None)
            self._tasks.discard(task)
            try:
                self._on_close(conn)
            except Exception:
                log.exception("connection %s: cleanup failed", conn.describe())

    async def _read_loop(self, conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        preamble = await asyncio.wait_for(reader.readexactly(len(PREAMBLE)), self._config.handshake_timeout_s)
        if preamble != PREAMBLE:
            raise ProtocolViolation(f"expected the {PREAMBLE!r} preamble, got {preamble!r}")
        assembler = FrameAssembler(self._config.max_frame_bytes)
        dispatch = self._dispatch
        transport = writer.transport
        while not conn.closed:
            data = await reader.read(_READ_CHUNK)
            if not data:
                if assembler.pending_bytes and not conn.closed:
                    raise ProtocolViolation(f"connection ended inside a frame ({assembler.pending_bytes} bytes pending)")
                return
            conn.last_read = time.monotonic()
            for message in assembler.feed(data):
                dispatch(conn, message.request() if isinstance(message, OversizedMessage) else Request(message))
                if conn.closed:
                    return
            if transport.get_write_buffer_size() > _DRAIN_ABOVE:
                await writer.drain()
