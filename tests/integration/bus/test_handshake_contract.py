"""Contract with the pinned client: the exact message sequence it opens a session with.

If a client upgrade adds a mandatory listener or changes the handshake, this fails
loudly here instead of as a hang in some service (spec §9.1).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dolphin.bus.member import EmbeddedMember
from tests.integration.bus.support import KIND_IDS, KINDS, Driver


@pytest.fixture
def recorder(member: EmbeddedMember) -> Iterator[list[tuple[int, int]]]:
    """Wraps every handler of the running member to record (connection id, message type)."""
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def install(m):  # type: ignore[no-untyped-def]
        original = dict(m.handlers)

        def wrap(mtype, handler):  # type: ignore[no-untyped-def]
            def recording(conn, req):  # type: ignore[no-untyped-def]
                with lock:
                    seen.append((conn.id, mtype))
                handler(conn, req)
            return recording

        m.handlers.update({t: wrap(t, h) for t, h in original.items()})
        return original

    original = member.call(install)
    yield seen
    member.call(lambda m: m.handlers.update(original))


@pytest.mark.parametrize(("kind", "smart"), KINDS, ids=KIND_IDS)
def test_session_opening_sequence(member: EmbeddedMember, recorder: list[tuple[int, int]], kind: str,
                                  smart: bool, name: str) -> None:
    d = Driver(kind, smart, member.address)
    try:
        d.map(name).put("k", "v")
    finally:
        d.shutdown()
    conns = sorted({c for c, _ in recorder})
    assert len(conns) == 1, f"expected one connection, saw {len(conns)}"
    sequence = [t for c, t in recorder if c == conns[0]]
    expected = [0x000100, 0x000300] + ([0x000F00] if smart else []) + [0x000400, 0x010100]
    assert sequence[: len(expected)] == expected, [hex(t) for t in sequence]


def test_ping_and_statistics_are_answered(member: EmbeddedMember, recorder: list[tuple[int, int]]) -> None:
    import hazelcast

    from tests.integration.bus.support import wait_until

    client = hazelcast.HazelcastClient(cluster_members=[member.address], cluster_name="dolphin",
                                       cluster_connect_timeout=10, heartbeat_interval=0.1,
                                       statistics_enabled=True, statistics_period=0.1)
    try:
        wait_until(lambda: {0x000B00, 0x000C00} <= {t for _, t in recorder})
        assert client.lifecycle_service.is_running()
        assert client.get_map("after-pings").blocking().size() == 0
    finally:
        client.shutdown()
