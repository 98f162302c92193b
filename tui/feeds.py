"""The bus feed: listeners into `TuiState`, reconnecting on its own. Never polls.

A daemon thread runs its own asyncio loop with the asyncio Hazelcast client (no 100 Hz
polling reactor as in the threaded client, and never on the UI's loop). It owns the
client's life: connect (bounded), register entry listeners (``added``/``updated``/
``removed``, ``include_value``) on the keys the panels show, read the current value of
those keys once (listeners only see changes), then wait until the client's lifecycle
says something. On DISCONNECTED the header shows the loss at once; the client reconnects
and re-registers its listeners by itself, and on CONNECTED the feed reads the keys once
more (values written while it was away). If the client gives up (its cluster-connect
timeout), the feed builds a new one, with back-off.

The listener callbacks run on the feed's loop and only decode, validate
(`BusCodec.accept`: bad values are counted, never delivered) and store
(`TuiState.deliver`, which wakes the UI with one `post_message`). Requests this feed
makes to the bus: the listener registrations and one read of the shown keys per
(re)connect or operator refresh (`r`); nothing else.

The header's cluster health (members present, partitions owned) comes from the client's
own member list and partition table (pushed by the cluster, read locally): recomputed on
every membership change, and a few times in the seconds after one, while the cluster
promotes backups and pushes its new partition table.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from dolphin.bus import BusCodec, BusEvent, BusSettings, connect_async, schema, subscribe_async
from dolphin.bus.cluster_health import cluster_health
from tui.state import LINK_CONNECTED, LINK_CONNECTING, LINK_DOWN, LINK_LOST, TuiState

log = logging.getLogger("dolphin.tui")

TUI_CLIENT_NAME = "dolphin-tui"
CONNECT_TIMEOUT_S = 5.0
RETRY_S = (0.5, 1.0, 2.0, 5.0)
CLUSTER_RECHECK_S = (1.0, 3.0, 10.0)  # after a membership change: the partition table follows

#: (map, key or None for the whole map) — what the TUI listens to.
SUBSCRIPTIONS: tuple[tuple[str, str | None], ...] = (
    (schema.FEATURES, None),           # the feature keys (FEATURE_KEYS); the map holds nothing else
    (schema.SAFETY, schema.LATEST),
    (schema.STATE_BLUE, schema.LATEST),  # not the per-run snapshots (large engine states)
    (schema.PNL_BLUE, None),
    (schema.HEARTBEAT, None),
    (schema.META_HEALTH, schema.LATEST),
)
FEATURE_KEYS = (schema.LATEST_EIGEN_SCAN, schema.ACB_BOOST, schema.EXF_LATEST, schema.OBF_UNIVERSE_LATEST,
                schema.OB_MACRO_LATEST, schema.OBF_STATUS, schema.MC_FOREWARNER_LATEST)


class Feed(Protocol):
    """A source of state: the live bus or a replay."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def refresh(self) -> None: ...


class BusFeed:
    """Live bus → `TuiState`, on its own daemon thread and asyncio loop."""

    def __init__(self, state: TuiState, settings: BusSettings | None = None, *, codec: BusCodec | None = None,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, retry_s: tuple[float, ...] = RETRY_S,
                 client_overrides: dict[str, Any] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.settings = settings if settings is not None else BusSettings.from_env()
        self.codec = codec if codec is not None else BusCodec()
        self.connect_timeout_s = connect_timeout_s
        self.retry_s = retry_s
        self.client_overrides = dict(client_overrides or {})
        self._clock = clock
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._lifecycle = ""
        self._ready = False
        self._resync = False
        self._refresh = False
        self._membership = False
        self.client: Any = None
        self.connects = 0
        self.snapshot_reads = 0
        state.rejections = lambda: self.codec.rejections.total

    @property
    def address(self) -> str:
        return ",".join(self.settings.members)

    # ------------------------------------------------------------ control (any thread)
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tui-bus-feed", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._call(self._set_stop)
        if self._thread is not None:
            self._thread.join(timeout)

    def refresh(self) -> None:
        """Operator refresh: read the shown keys once more."""
        def request() -> None:
            self._refresh = True
            if self._wake is not None:
                self._wake.set()

        self._call(request)

    def _call(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn)
            except RuntimeError:  # the loop just closed
                pass

    def _set_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------ the feed loop
    def _on_lifecycle(self, lifecycle: str) -> None:  # on the feed's loop: flags only
        self._lifecycle = lifecycle
        if not self._ready:
            return
        if lifecycle == "DISCONNECTED":
            self.state.set_bus(LINK_LOST, detail="connection lost; reconnecting")
        elif lifecycle == "CONNECTED":
            self._resync = True
            self.state.set_bus(LINK_CONNECTED)
        if self._wake is not None:
            self._wake.set()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # never a traceback on the operator's screen
            log.exception("tui: the bus feed stopped")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        if self._stopping.is_set():
            return
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            self.state.set_bus(LINK_CONNECTING, address=self.address,
                               detail=f"attempt {attempt}" if attempt > 1 else "")
            client = None
            try:
                self._ready = False
                self._lifecycle = ""
                client = await connect_async(replace(self.settings, connect_timeout_s=self.connect_timeout_s),
                                             client_name=TUI_CLIENT_NAME, lifecycle_listeners=[self._on_lifecycle],
                                             **self.client_overrides)
                self.client = client
                if self._stop.is_set():
                    break
                for map_name, key in SUBSCRIPTIONS:
                    await subscribe_async(client, map_name, self.state, key=key, codec=self.codec,
                                          source="tui listener")
                await self._read_snapshot(client)
                client.cluster_service.add_listener(member_added=self._on_membership,
                                                    member_removed=self._on_membership)
                self._update_cluster(client)
                self._ready = True
                self.connects += 1
                attempt = 0
                self.state.set_bus(LINK_CONNECTED, address=self.address)
                await self._serve(client)
            except Exception as exc:  # BusUnavailableError, a dropped connection mid-setup, …
                if self._stop.is_set():
                    break
                lost = self.state.bus.connected_once
                self.state.set_bus(LINK_LOST if lost else LINK_DOWN, address=self.address, detail=_one_line(exc))
            finally:
                if client is not None:
                    self.client = None
                    await _quiet_shutdown(client)
            if self._stop.is_set():
                break
            delay = self.retry_s[min(max(attempt - 1, 0), len(self.retry_s) - 1)]
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except TimeoutError:
                pass

    def _on_membership(self, _member: Any) -> None:  # on the feed's loop: flags only
        self._membership = True
        if self._loop is not None:
            for delay in CLUSTER_RECHECK_S:
                self._loop.call_later(delay, self._recheck_cluster)
        if self._wake is not None:
            self._wake.set()

    def _recheck_cluster(self) -> None:
        self._membership = True
        if self._wake is not None:
            self._wake.set()

    def _update_cluster(self, client: Any) -> None:
        try:
            self.state.set_cluster(cluster_health(client, self.settings))
        except Exception as exc:  # a client mid-shutdown: the next change tells again
            log.debug("tui: cluster health unavailable: %s", exc)

    async def _serve(self, client: Any) -> None:
        """Wait until the lifecycle or the membership changes, a refresh is asked for, or we stop."""
        assert self._wake is not None and self._stop is not None
        while not self._stop.is_set():
            await self._wake.wait()
            self._wake.clear()
            lifecycle = self._lifecycle
            resync, self._resync = self._resync, False
            refresh, self._refresh = self._refresh, False
            membership, self._membership = self._membership, False
            if membership or resync:
                self._update_cluster(client)
            if lifecycle in ("SHUTTING_DOWN", "SHUTDOWN"):
                raise ConnectionError("the bus client gave up reconnecting")
            if (resync or refresh) and lifecycle != "DISCONNECTED":
                try:
                    await self._read_snapshot(client)
                except Exception as exc:
                    log.debug("tui: snapshot read failed: %s", exc)

    async def _read_snapshot(self, client: Any) -> None:
        """One read of every key the panels show (listeners only report changes)."""
        now = self._clock()
        self.snapshot_reads += 1

        def put(map_name: str, key: str, raw: Any) -> None:
            if raw is None:
                return
            payload = self.codec.accept(map_name, key, raw, source="tui snapshot")
            if payload is not None:
                self.state.deliver(BusEvent(map_name, key, "ADDED", payload, now))

        features = await (await client.get_map(schema.FEATURES)).get_all(list(FEATURE_KEYS))
        for key, raw in features.items():
            put(schema.FEATURES, key, raw)
        for map_name in (schema.SAFETY, schema.STATE_BLUE, schema.META_HEALTH):
            put(map_name, schema.LATEST, await (await client.get_map(map_name)).get(schema.LATEST))
        pnl = await client.get_map(schema.PNL_BLUE)
        dates = sorted(k for k in await pnl.key_set() if isinstance(k, str) and len(k) == 10)
        if dates:
            put(schema.PNL_BLUE, dates[-1], await pnl.get(dates[-1]))
        for key, raw in await (await client.get_map(schema.HEARTBEAT)).entry_set():
            if isinstance(key, str) and key.endswith("_heartbeat"):
                put(schema.HEARTBEAT, key, raw)


async def _quiet_shutdown(client: Any) -> None:
    try:
        await asyncio.wait_for(client.shutdown(), 5.0)
    except Exception:
        pass


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
