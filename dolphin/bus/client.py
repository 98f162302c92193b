"""The one way a DOLPHIN process gets a Hazelcast client.

Both the threaded `hazelcast.HazelcastClient` and the asyncio client are configured
from the same `BusSettings`, so a service runs unchanged against the embedded member
or a production cluster. Choices made here for every process:

* the cluster connect timeout is finite (the client's default waits forever);
* invocation timeout 30 s instead of 120 s, so a dead bus surfaces within a cycle;
* statistics off;
* a near cache on the ten OBF shard maps only (bible §15.3: TTL 300 s, invalidated on
  every change, LRU, 5000 entries per shard): feature reads are served locally and a
  write anywhere in the cluster drops the cached copy (both the embedded member and a
  real cluster send the invalidations). No other map is cached: the trader and the TUI
  listen for changes instead of reading;
* reconnect on, with the back-off capped at 5 s (client default 30 s), so a restarted
  bus is found within seconds; the client re-registers listeners by itself.

A failure to reach the cluster becomes `BusUnavailableError` (exit 10), with the
address and cluster name but never the password; a cluster that answered but refused
our cluster name or credentials becomes `BusCredentialsError` (exit 13), saying where
the credentials came from (or that none were sent).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import hazelcast
from hazelcast.config import EvictionPolicy
from hazelcast.errors import AuthenticationError, HazelcastError, IllegalStateError

from dolphin.bus import schema
from dolphin.bus.credentials import CREDENTIALS_FILE_ENV
from dolphin.bus.errors import BusCredentialsError, BusUnavailableError
from dolphin.bus.settings import BusSettings

if TYPE_CHECKING:
    from hazelcast.internal.asyncio_client import HazelcastClient as AsyncHazelcastClient

log = logging.getLogger("dolphin.bus")

PINNED_CLIENT_VERSION = "5.7.0"

#: §15.3: "Near cache config: TTL=300s, invalidate_on_change=True, LRU eviction, max_size=5000 per shard".
SHARD_NEAR_CACHE: dict[str, Any] = {"time_to_live": 300.0, "invalidate_on_change": True,
                                    "eviction_policy": EvictionPolicy.LRU, "eviction_max_size": 5000}


def near_caches() -> dict[str, dict[str, Any]]:
    """The client-side near caches every DOLPHIN process configures: one per OBF shard map."""
    return {name: dict(SHARD_NEAR_CACHE) for name in schema.SHARD_MAPS}


def client_options(settings: BusSettings | None = None, *, client_name: str | None = None,
                   **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for either client class; `overrides` win (tests shorten timers)."""
    s = settings if settings is not None else BusSettings.from_env()
    options: dict[str, Any] = {
        "cluster_members": list(s.members),
        "cluster_name": s.cluster_name,
        "cluster_connect_timeout": s.connect_timeout_s,
        "connection_timeout": s.connection_timeout_s,
        "invocation_timeout": s.invocation_timeout_s,
        "heartbeat_timeout": s.heartbeat_timeout_s,
        "smart_routing": s.smart_routing,
        "statistics_enabled": False,
        "retry_max_backoff": 5.0,
        "near_caches": near_caches(),
    }
    if client_name:
        options["client_name"] = client_name
    if s.username is not None:
        options["creds_username"] = s.username
        options["creds_password"] = s.password
    options.update(overrides)
    return options


class _RefusalCounter(logging.Filter):
    """Counts the authentication refusals the client meets while it retries.

    The client retries a refused authentication until its connect timeout and then
    raises a bare IllegalStateError; the refusal itself only shows in the warning it logs
    for each attempt. This filter sits on the client's connection loggers and counts
    those. Output is unchanged: the loggers are opened to every level so that records
    exist to be counted, and a record passes only if the ``hazelcast`` logger's level
    would have let it through.
    """

    LOGGERS = ("hazelcast.connection", "hazelcast.internal.asyncio_connection")

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], AuthenticationError):
            self.count += 1
        return record.levelno >= logging.getLogger("hazelcast").getEffectiveLevel()

    def install(self) -> _RefusalCounter:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)
                logger.setLevel(logging.DEBUG)
        return self


_refusals = _RefusalCounter().install()


def _unavailable(settings: BusSettings, exc: BaseException, refused: bool = False) -> BusUnavailableError:
    if refused:
        if settings.username is None:
            creds = (f"no credentials were sent: the family's member wants the pair `dolphin up` keeps in "
                     f"<DOLPHIN_HOME>/secrets/bus.json (run with that DOLPHIN_HOME, or set {CREDENTIALS_FILE_ENV})")
        else:
            creds = f"the credentials from {settings.credentials_source or 'the settings'} were not accepted"
        return BusCredentialsError(f"the bus refused this client: {settings.describe()} answered but rejected "
                                   f"its cluster name or credentials; {creds}")
    hint = _start_hint() if settings.embedded else ""
    return BusUnavailableError(
        f"cannot reach the bus: {settings.describe()} within {settings.connect_timeout_s:g} s "
        f"({type(exc).__name__}){hint}")


def _start_hint() -> str:
    """How to bring the embedded member back: through the family's supervisord when one runs here."""
    try:
        from dolphin.supervision.family import family_paths

        in_family = family_paths().socket.exists()
    except Exception:       # a hint must never hide the error it decorates
        in_family = False
    if in_family:
        return " — the family's member is not answering: `dolphin svc start hz` (or `dolphin svc status hz`)"
    return " — start one with `dolphin hz serve`, or the whole system with `dolphin up`"


_version_checked = False


def _check_version() -> None:
    """Say once if the installed client is not the one the member was verified against."""
    global _version_checked
    if not _version_checked:
        _version_checked = True
        if hazelcast.__version__ != PINNED_CLIENT_VERSION:
            log.warning("hazelcast-python-client %s is installed; DOLPHIN is verified against %s "
                        "(run tests/integration/bus before trusting it)", hazelcast.__version__, PINNED_CLIENT_VERSION)


def connect(settings: BusSettings | None = None, *, client_name: str | None = None,
            **overrides: Any) -> hazelcast.HazelcastClient:
    """A started threaded client. Its listener callbacks run on the client's reactor
    thread: hand them to your own thread with `dolphin.bus.listeners`."""
    _check_version()
    s = settings if settings is not None else BusSettings.from_env()
    refusals = _refusals.count
    try:
        return hazelcast.HazelcastClient(**client_options(s, client_name=client_name, **overrides))
    except (IllegalStateError, HazelcastError, OSError) as exc:
        raise _unavailable(s, exc, refused=_refusals.count > refusals) from exc


async def connect_async(settings: BusSettings | None = None, *, client_name: str | None = None,
                        **overrides: Any) -> AsyncHazelcastClient:
    """A started asyncio client, bound to the running loop."""
    from hazelcast.asyncio import HazelcastClient as AsyncClient

    _check_version()
    s = settings if settings is not None else BusSettings.from_env()
    refusals = _refusals.count
    try:
        return await AsyncClient.create_and_start(**client_options(s, client_name=client_name, **overrides))
    except (IllegalStateError, HazelcastError, OSError) as exc:
        raise _unavailable(s, exc, refused=_refusals.count > refusals) from exc


def client_version() -> str:
    return hazelcast.__version__
