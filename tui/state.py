"""The TUI's one shared state: what the bus (or a replay), supervisord and the test file last said.

Feeds write from their own threads — bus events arrive on the Hazelcast client's reactor
thread, supervisord polls and replays on daemon threads — and the UI reads from the
asyncio loop. Every access takes one short lock; payloads are frozen msgspec Structs,
so they are handed out without copying.

`TuiState` is a bus `EventSink` (`deliver(BusEvent)`): the listener callback only
stores the value and marks its *topic* dirty. The first change after the UI drained the
dirty set calls the notifier (the app posts one `StateChanged` message); later changes
pile up in the same dirty set until the UI takes it. So a burst of events costs one
message and one refresh of each affected panel, and the client's thread never waits for
the UI.

Ages come from `clock()` (injectable: snapshot tests freeze it; a replay runs it on
market time) minus the payload's wall-clock publish time (`Payload.published_s()`),
or minus the time the TUI received it when a payload carries no time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from dolphin.bus import BusEvent, schema
from dolphin.bus.scan_codec import record_from_payload
from dolphin.engine.params import StrategyConfig
from dolphin.scan.record import ScanRecord
from dolphin.supervision.rpc import ProcessInfo

# Topics: what a panel listens to. One per bus source, plus the local ones.
SCAN = "scan"
ACB = "acb"
EXF = "exf"
OBF = "obf"
MC = "mc"
SAFETY = "safety"
STRATEGY = "strategy"
PNL = "pnl"
HEARTBEAT = "heartbeat"
META = "meta"
BUS = "bus"
SERVICES = "services"
TESTS = "tests"
JOURNAL = "journal"
KILL = "kill"            # the kill switch as set in this runtime's files (the operator's, read locally)

_FEATURE_TOPICS = {
    schema.LATEST_EIGEN_SCAN: SCAN,
    schema.ACB_BOOST: ACB,
    schema.EXF_LATEST: EXF,
    schema.OBF_UNIVERSE_LATEST: OBF,
    schema.MC_FOREWARNER_LATEST: MC,
}


def topic_for(map_name: str, key: str) -> str | None:
    """The topic of a bus key the TUI shows, or None for keys it ignores."""
    if map_name == schema.FEATURES:
        return _FEATURE_TOPICS.get(key)
    if map_name == schema.SAFETY and key == schema.LATEST:
        return SAFETY
    if map_name == schema.STATE_BLUE and key == schema.LATEST:
        return STRATEGY
    if map_name == schema.PNL_BLUE:
        return PNL
    if map_name == schema.HEARTBEAT:
        return HEARTBEAT
    if map_name == schema.META_HEALTH and key == schema.LATEST:
        return META
    return None


@dataclass(frozen=True, slots=True)
class Source:
    """One bus key a panel shows: where it lives, a short label, and when its data counts as stale."""

    map_name: str
    key: str  # for PNL_BLUE: "<date>" (the latest date key is used)
    label: str
    stale_after_s: float

    @property
    def wire_name(self) -> str:
        return f"{self.map_name}[{self.key}]"


# Staleness thresholds, wall seconds since the value was published. Each is a few
# publish periods of its writer (bible cadences; MHS calls data stale after 30 s).
STALE_AFTER_S: dict[str, float] = {
    SCAN: 30.0,        # scanner: one scan per 5 s bar
    ACB: 3 * 3600.0,   # ACB: daily boost plus sub-day updates
    EXF: 300.0,        # external factors: about a minute
    OBF: 180.0,        # OBF universe: 60 s push cadence (§26.2)
    MC: 5 * 3600.0,    # MC-Forewarner: every 4 h (§28.6)
    SAFETY: 60.0,      # watchdog posture
    STRATEGY: 120.0,   # trader state
    PNL: 600.0,        # daily result, rewritten as the day trades
    META: 30.0,        # MHS: every 10 s (§26.3.1)
    HEARTBEAT: 15.0,   # services beat every 5 s
    SERVICES: 10.0,    # our own supervisord poll (every 3 s)
}

STALE_BARS = 3.0   # whatever a source's cadence, data younger than three bars is never called stale

SOURCES: dict[str, Source] = {
    SCAN: Source(schema.FEATURES, schema.LATEST_EIGEN_SCAN, "scan", STALE_AFTER_S[SCAN]),
    ACB: Source(schema.FEATURES, schema.ACB_BOOST, "acb", STALE_AFTER_S[ACB]),
    EXF: Source(schema.FEATURES, schema.EXF_LATEST, "exf", STALE_AFTER_S[EXF]),
    OBF: Source(schema.FEATURES, schema.OBF_UNIVERSE_LATEST, "obf", STALE_AFTER_S[OBF]),
    MC: Source(schema.FEATURES, schema.MC_FOREWARNER_LATEST, "mc", STALE_AFTER_S[MC]),
    SAFETY: Source(schema.SAFETY, schema.LATEST, "safety", STALE_AFTER_S[SAFETY]),
    STRATEGY: Source(schema.STATE_BLUE, schema.LATEST, "state", STALE_AFTER_S[STRATEGY]),
    PNL: Source(schema.PNL_BLUE, "<date>", "pnl", STALE_AFTER_S[PNL]),
    META: Source(schema.META_HEALTH, schema.LATEST, "health", STALE_AFTER_S[META]),
}


@dataclass(frozen=True, slots=True)
class Entry:
    """The latest value of one key, with when it was published and received."""

    map_name: str
    key: str
    payload: Any
    received_at: float
    published_at: float | None

    @property
    def basis(self) -> float:
        """The time the age counts from: publish time if the payload has one, else receipt."""
        return self.published_at if self.published_at is not None else self.received_at


# Bus link states, shown in the header.
LINK_CONNECTING = "connecting"
LINK_CONNECTED = "connected"
LINK_LOST = "lost"           # was connected; the client is reconnecting
LINK_DOWN = "down"           # cannot reach the bus; retrying
LINK_OFF = "off"             # no bus feed (tests, replay)
LINK_REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class BusLink:
    state: str = LINK_OFF
    address: str = ""
    since: float | None = None
    detail: str = ""
    connected_once: bool = False
    cluster: Any = None  # dolphin.bus.cluster_health.ClusterHealth: members present, partitions owned


@dataclass(frozen=True, slots=True)
class ServicesView:
    """The last supervisord poll: processes, when, or why it failed."""

    infos: tuple[ProcessInfo, ...] = ()
    polled_at: float | None = None
    error: str | None = None
    socket: str = ""
    enabled: bool = False  # False: no supervisord source configured (tests, replay)


@dataclass(frozen=True, slots=True)
class TestsView:
    results: Any = None  # dolphin.test_report.TestResults
    error: str | None = None
    missing: bool = False
    path: str = ""
    read_at: float | None = None


@dataclass(frozen=True, slots=True)
class ReplayView:
    label: str = ""
    speed: float = 1.0
    position: int = 0
    total: int = 0
    finished: bool = False
    paused: bool = False
    skipped: int = 0


@dataclass(frozen=True)
class Catalog:
    """Who publishes which key and which programs the family knows (for "never published" texts).

    Defaults to `dolphin.supervision.programs` (`publisher_of`, `BY_NAME`); snapshot tests pin
    their own so a program added to the family does not change a reference screen.
    """

    publisher_of: Callable[[str, str], str | None]
    programs: dict[str, str]  # short name → description

    @classmethod
    def from_family(cls) -> Catalog:
        from dolphin.supervision.programs import BY_NAME, publisher_of

        return cls(publisher_of=publisher_of, programs={n: p.description for n, p in BY_NAME.items()})


def _services_signature(view: ServicesView) -> tuple[Any, ...]:
    return (view.enabled, view.error, view.polled_at is None,
            tuple((i.name, i.group, i.state, i.pid, i.start, i.spawnerr) for i in view.infos))


VEL_DIV_HISTORY = 120  # scans kept for the sparkline (10 minutes of 5 s bars)
MC_HISTORY = 48
JOURNAL_HISTORY = 20


class TuiState:
    """Thread-safe latest-value store for the UI; an `EventSink` for `dolphin.bus.subscribe`."""

    def __init__(self, clock: Callable[[], float] = time.time, catalog: Catalog | None = None) -> None:
        self.clock = clock
        self.catalog = catalog if catalog is not None else Catalog.from_family()
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], Entry] = {}
        self._pnl: dict[str, Entry] = {}
        self._heartbeats: dict[str, Entry] = {}
        self._vel_div: deque[tuple[int, float]] = deque(maxlen=VEL_DIV_HISTORY)
        self._scan: ScanRecord | None = None
        self._mc_prob: deque[float] = deque(maxlen=MC_HISTORY)
        self._journal: deque[Any] = deque(maxlen=JOURNAL_HISTORY)
        self._dirty: set[str] = set()
        self._armed = True
        self._notify: Callable[[], None] | None = None
        self.bus = BusLink()
        self.services = ServicesView()
        self.tests = TestsView()
        self.kill: Any = None    # dolphin.execution.kill_switch.KillState, None when not known (replay)
        self.bar_interval_s: float | None = None   # the scans' bar interval: thresholds cover a few bars
        self.replay: ReplayView | None = None
        self.rejections: Callable[[], int] = lambda: 0
        self.delivered = 0

    # ------------------------------------------------------------ change notification
    def set_notifier(self, notify: Callable[[], None] | None) -> None:
        """Called (from any thread, outside the lock) when something changed after the last `take_dirty`."""
        self._notify = notify

    def _mark(self, topics: set[str] | str) -> None:
        """Mark dirty under the lock; returns nothing — `_fire` is called by the caller after unlocking."""
        if isinstance(topics, str):
            self._dirty.add(topics)
        else:
            self._dirty.update(topics)

    def _fire_if_armed(self) -> None:
        with self._lock:
            fire = self._armed and bool(self._dirty)
            if fire:
                self._armed = False
        if fire and self._notify is not None:
            try:
                self._notify()
            except Exception:  # a closing app must never break a feed thread
                pass

    def take_dirty(self) -> set[str]:
        """What changed since the last call (and re-arm the notifier)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            self._armed = True
        return dirty

    def touch(self, *topics: str) -> None:
        with self._lock:
            self._mark(set(topics))
        self._fire_if_armed()

    # ------------------------------------------------------------ bus events (any thread)
    def deliver(self, event: BusEvent) -> None:
        topic = topic_for(event.map_name, event.key) if event.kind != "CLEAR_ALL" else None
        if event.kind == "CLEAR_ALL":
            with self._lock:
                for slot in [s for s in self._entries if s[0] == event.map_name]:
                    del self._entries[slot]
                if event.map_name == schema.PNL_BLUE:
                    self._pnl.clear()
                if event.map_name == schema.FEATURES:
                    self._scan = None
                if event.map_name == schema.HEARTBEAT:
                    self._heartbeats.clear()
                self._mark({SCAN, ACB, EXF, OBF, MC, SAFETY, STRATEGY, PNL, HEARTBEAT, META})
            self._fire_if_armed()
            return
        if topic is None:
            return
        payload = event.payload
        published = None
        if payload is not None:
            try:
                published = payload.published_s()
            except Exception:
                published = None
        entry = Entry(event.map_name, event.key, payload, event.received_at, published)
        with self._lock:
            self.delivered += 1
            removed = payload is None
            if topic == PNL:
                if removed:
                    self._pnl.pop(event.key, None)
                else:
                    self._pnl[event.key] = entry
            elif topic == HEARTBEAT:
                name = event.key[: -len("_heartbeat")] if event.key.endswith("_heartbeat") else event.key
                if removed:
                    self._heartbeats.pop(name, None)
                else:
                    self._heartbeats[name] = entry
            elif removed:
                self._entries.pop((event.map_name, event.key), None)
            else:
                self._entries[(event.map_name, event.key)] = entry
            if topic == SCAN:
                if payload is None:
                    self._scan = None
                else:
                    self._note_scan(payload)
            if topic == MC and payload is not None:
                prob = getattr(payload, "catastrophic_prob", None)
                if isinstance(prob, float):
                    self._mc_prob.append(prob)
            self._mark(topic)
        self._fire_if_armed()

    def _note_scan(self, payload: Any) -> None:
        """The scan as its canonical record (through the scan codec), and the vel_div history."""
        try:
            record = record_from_payload(payload)
        except (ValueError, TypeError):
            self._scan = None
            return
        self._scan = record
        if not math.isfinite(record.vel_div):
            return
        if self._vel_div and self._vel_div[-1][0] == record.scan_number:
            self._vel_div[-1] = (record.scan_number, record.vel_div)
        else:
            self._vel_div.append((record.scan_number, record.vel_div))

    # ------------------------------------------------------------ local sources (any thread)
    def set_bus(self, state: str, *, address: str | None = None, detail: str = "") -> None:
        with self._lock:
            current = self.bus
            since = current.since if current.state == state else self.clock()
            self.bus = BusLink(state=state, address=address if address is not None else current.address,
                               since=since, detail=detail,
                               connected_once=current.connected_once or state == LINK_CONNECTED,
                               cluster=current.cluster)
            self._mark(BUS)
        self._fire_if_armed()

    def set_cluster(self, health: Any) -> None:
        """The bus cluster's health as the feed's client sees it (on membership changes)."""
        with self._lock:
            if health == self.bus.cluster:
                return
            self.bus = replace(self.bus, cluster=health)
            self._mark(BUS)
        self._fire_if_armed()

    def set_services(self, view: ServicesView) -> None:
        """Store a supervisord poll; only a change of the table (not its poll time) refreshes panels."""
        with self._lock:
            changed = _services_signature(view) != _services_signature(self.services)
            self.services = view
            if changed:
                self._mark(SERVICES)
        if changed:
            self._fire_if_armed()

    def set_bar_interval(self, seconds: float | None) -> None:
        """The data's bar interval (scanner config live, the archive's own in a replay)."""
        with self._lock:
            self.bar_interval_s = seconds if seconds is not None and seconds > 0 else None
            self._mark({SCAN, STRATEGY, PNL})
        self._fire_if_armed()

    def stale_after(self, source: Source) -> float:
        """A source's staleness threshold: its own, but never less than `STALE_BARS` bars of the data."""
        bar = self.bar_interval_s
        return source.stale_after_s if bar is None else max(source.stale_after_s, STALE_BARS * bar)

    def set_kill(self, state: Any) -> None:
        """The kill switch as set (the app reads it every tick; only a change marks the topic)."""
        with self._lock:
            if state == self.kill:
                return
            self.kill = state
            self._mark(KILL)
        self._fire_if_armed()

    def set_tests(self, view: TestsView) -> None:
        with self._lock:
            self.tests = view
            self._mark(TESTS)
        self._fire_if_armed()

    def set_replay(self, view: ReplayView) -> None:
        with self._lock:
            self.replay = view
            self._mark(BUS)
        self._fire_if_armed()

    def add_journal(self, event: Any) -> None:
        with self._lock:
            self._journal.append(event)
            self._mark(JOURNAL)
        self._fire_if_armed()

    def update_replay(self, **changes: Any) -> None:
        with self._lock:
            if self.replay is not None:
                self.replay = replace(self.replay, **changes)
            self._mark(BUS)
        self._fire_if_armed()

    # ------------------------------------------------------------ reads (UI thread)
    def entry(self, map_name: str, key: str) -> Entry | None:
        with self._lock:
            return self._entries.get((map_name, key))

    def source_entry(self, source: Source) -> Entry | None:
        if source.map_name == schema.PNL_BLUE:
            return self.latest_pnl()
        return self.entry(source.map_name, source.key)

    def latest_pnl(self) -> Entry | None:
        """The daily result of the most recent date (keys are YYYY-MM-DD, so the max is the latest)."""
        with self._lock:
            if not self._pnl:
                return None
            return self._pnl[max(self._pnl)]

    def heartbeats(self) -> dict[str, Entry]:
        with self._lock:
            return dict(self._heartbeats)

    def scan_record(self) -> ScanRecord | None:
        """The latest scan, NG8 or NG7 alike, as the canonical record (None before any)."""
        with self._lock:
            return self._scan

    def vel_div_history(self) -> list[float]:
        with self._lock:
            return [v for _, v in self._vel_div]

    def mc_history(self) -> list[float]:
        with self._lock:
            return list(self._mc_prob)

    def journal(self) -> list[Any]:
        with self._lock:
            return list(self._journal)

    def age_of(self, entry: Entry | None, now: float | None = None) -> float | None:
        if entry is None:
            return None
        return (self.clock() if now is None else now) - entry.basis


@dataclass(frozen=True)
class StrategyView:
    """The strategy the AlphaEngine panel judges vel_div against: the loaded config itself.

    The panel classifies through the engine's `classify` with this config, so the screen
    and the engine cannot disagree; a config that fails to load leaves `config` None and
    says why (the panel then shows no gate rather than a guessed one).
    """

    config: StrategyConfig | None
    source: str
    error: str | None = None

    @classmethod
    def load(cls, name: str | None = None) -> StrategyView:
        """The named strategy, or the one the family's trader runs (services config ``trader.strategy``)."""
        from dolphin.config.loader import load_config
        from dolphin.config.services import load_services_config
        from dolphin.errors import DolphinError

        try:
            name = name or load_services_config().trader.strategy
            return cls(config=load_config(name), source=f"{name}.yml")
        except (DolphinError, OSError) as exc:  # a broken config must not stop the operator's screen
            return cls(config=None, source=f"{name or 'trader strategy'}.yml", error=str(exc))
