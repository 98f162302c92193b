"""Map writes issued from the caller's frame, for a writer whose requests must not wait for the loop.

Why: the pinned asyncio client's ``Map.put_all`` is a coroutine that starts one task per
partition (``asyncio.TaskGroup``), which the caller in turn runs as a task to write several
maps at once. Each of those hops waits for the event loop's next iteration, and on a loop
that is busy with a burst of websocket frames (OBF at a bar close: 540 depth updates land
in the same 100 ms) every iteration lasts as long as the frames the readers take in it —
so the requests of OBF's bar-close push reached the socket milliseconds after the bar
closed (benchmarks/obf_ingest.py measured it; docs/obf.md "Bar close → bus").

`EagerMapWriter.put_all` sends exactly the requests ``Map.put_all`` sends — one ``Map.PutAll`` per
partition, the client's own codec, serialisation and partition table — through the
client's invocation service before it returns, and gives back one future for their
responses; it then flushes the client's write buffer of each connection it used (the client
would flush at the loop's next turn, ``call_soon``), so the first map's documents are on the
wire while the next map's are encoded.

It reaches into the internals of hazelcast-python-client, which is pinned exactly
(`dolphin.bus.client.PINNED_CLIENT_VERSION`, checked at connect); this module is the only
place that does, and tests/integration/bus/test_eager_writes.py pins the behaviour on the
embedded member and on real Hazelcast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from hazelcast.internal.asyncio_invocation import Invocation
from hazelcast.protocol.codec import map_put_all_codec


class EagerMapWriter:
    """Writes to one open map, sent before the call returns (see the module doc).

    A writer re-sends the same keys every bar (OBF: a symbol's shard document), so each key's
    serialised form and partition are kept after the first write; a writer belongs to one
    client (`AsyncBus` keeps one per map), whose partition table does not change size.
    """

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy
        self._keys: dict[str, tuple[Any, int]] = {}

    def put_all(self, entries: Mapping[str, str]) -> asyncio.Future[Any]:
        """Send ``entries`` now, one ``Map.PutAll`` per partition; a future of their acknowledgement.

        A failure to send (client shut down, no connection) fails the returned future, as it would
        fail ``put_all``; a key or value the client cannot serialise raises here, before anything is sent.
        """
        proxy = self.proxy
        if not entries:
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result([])
            return done
        to_data = proxy._to_data
        keys = self._keys
        by_partition: dict[int, list[tuple[Any, Any]]] = {}
        for key, value in entries.items():
            known = keys.get(key)
            if known is None:
                key_data = to_data(key)
                known = keys[key] = (key_data, proxy._partition_service.get_partition_id(key_data))
            by_partition.setdefault(known[1], []).append((known[0], to_data(value)))
        futures = []
        connections: dict[int, Any] = {}
        invoke, name = proxy._invocation_service.invoke, proxy.name
        for partition_id, entry_list in by_partition.items():
            invocation = Invocation(map_put_all_codec.encode_request(name, entry_list, False),
                                    partition_id=partition_id)
            invoke(invocation)
            futures.append(invocation.future)
            if invocation.sent_connection is not None:
                connections[id(invocation.sent_connection)] = invocation.sent_connection
        for connection in connections.values():
            _flush(connection)
        return asyncio.gather(*futures)


def _flush(connection: Any) -> None:
    """Write what the client buffered for ``connection`` now, not at the loop's next turn (the client's own
    flush, still scheduled, then finds nothing to write)."""
    protocol = getattr(connection, "_proto", None)
    if protocol is not None:
        protocol._flush()


__all__ = ["EagerMapWriter"]
