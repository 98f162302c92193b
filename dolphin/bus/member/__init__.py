"""The embedded, protocol-compatible Hazelcast member (single node, dev and one-machine default).

It speaks the Open Binary Client Protocol well enough for `hazelcast-python-client`
(pinned 5.7.0; threaded and asyncio, smart and unisocket) to use maps, entry
listeners, TTL, CP sessions, AtomicReference and FencedLock against it. Anything else
is answered UnsupportedOperation at once. See ``docs/bus.md``.

This package does not import the client: the member only needs the standard library
and msgspec (for snapshots).
"""

from dolphin.bus.member.config import DEFAULT_CLUSTER_NAME, DEFAULT_PORT, PARTITION_COUNT, MemberConfig
from dolphin.bus.member.embedded import EmbeddedMember, serve
from dolphin.bus.member.member import Member, MemberStartFailed

__all__ = [
    "DEFAULT_CLUSTER_NAME",
    "DEFAULT_PORT",
    "PARTITION_COUNT",
    "EmbeddedMember",
    "Member",
    "MemberConfig",
    "MemberStartFailed",
    "serve",
]
