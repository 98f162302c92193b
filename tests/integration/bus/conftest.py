"""Fixtures: one embedded member and one real 3-member Hazelcast cluster per worker, clients per test.

The conformance tests run against both: a test that takes `backend` (directly or through
`driver`, `observer`, `bus_client`) runs once on DOLPHIN's embedded member and once on a
real Hazelcast cluster (JVM members started here; skipped — or failed under CI=true —
when java/mvn are missing). Mark a test ``embedded_only`` when it inspects the embedded
member's internals. Both servers are session-scoped: the JVM start is paid once per
worker. Map and object names carry a per-test suffix, so nothing leaks between tests.

Tests that need special member settings (credentials, no CP, short CP sessions, a
subprocess or a cluster to kill) start their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dolphin.bus import BusSettings
from dolphin.bus.member import EmbeddedMember
from tests.hzcluster import RealCluster, require_real_cluster
from tests.integration.bus.support import KIND_IDS, KINDS, Driver

BACKENDS = ("embedded", "hazelcast")
#: Client kinds run against the real cluster: both client implementations and both routing modes. The
#: full 2 × 2 matrix runs on the embedded member, whose protocol handling is what it exercises.
REAL_CLUSTER_KINDS = {"threaded-smart", "asyncio-unisocket"}


@dataclass(frozen=True)
class Backend:
    """Where a conformance test points its clients, and what that server offers."""

    kind: str
    addresses: tuple[str, ...]
    cluster_name: str
    embedded: EmbeddedMember | None = None
    cluster: RealCluster | None = None

    @property
    def cp(self) -> bool:
        """Whether CP calls work: the embedded member serves CP, community Hazelcast 5.5+ does not."""
        return self.embedded is not None

    def settings(self, **overrides: object) -> BusSettings:
        values: dict[str, object] = {"members": self.addresses, "cluster_name": self.cluster_name,
                                     "connect_timeout_s": 10.0, "embedded": self.embedded is not None}
        values.update(overrides)
        return BusSettings(**values)  # type: ignore[arg-type]

    def driver(self, kind: str = "threaded", smart: bool = True, **options: object) -> Driver:
        return Driver(kind, smart, list(self.addresses), self.cluster_name, **options)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "embedded_only: inspects the embedded member; no real-cluster variant")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        kinds = BACKENDS[:1] if metafunc.definition.get_closest_marker("embedded_only") else BACKENDS
        metafunc.parametrize("backend", kinds, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the real-cluster variants of the client kinds not in REAL_CLUSTER_KINDS (see there)."""
    keep, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "hazelcast" and "driver" in callspec.params:
            kind = KIND_IDS[KINDS.index(callspec.params["driver"])]
            if kind not in REAL_CLUSTER_KINDS:
                dropped.append(item)
                continue
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def member() -> Iterator[EmbeddedMember]:
    with EmbeddedMember(session_ttl_s=300.0) as m:
        yield m


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    """Three real Hazelcast members on loopback, shared by every conformance test of this worker."""
    require_real_cluster()
    cluster = RealCluster(Path(tmp_path_factory.mktemp("hz-cluster")), 3).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "embedded":
        m: EmbeddedMember = request.getfixturevalue("member")
        return Backend("embedded", (m.address,), "dolphin", embedded=m)
    cluster: RealCluster = request.getfixturevalue("real_cluster")
    return Backend("hazelcast", cluster.addresses, cluster.cluster_name, cluster=cluster)


@pytest.fixture
def name() -> str:
    """A fresh object name per test."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=KINDS, ids=KIND_IDS)
def driver(request: pytest.FixtureRequest, backend: Backend) -> Iterator[Driver]:
    kind, smart = request.param
    d = backend.driver(kind, smart)
    try:
        yield d
    finally:
        d.shutdown()


@pytest.fixture
def observer(backend: Backend) -> Iterator[Driver]:
    """A second, independent client (threaded, smart) that listens."""
    d = backend.driver()
    try:
        yield d
    finally:
        d.shutdown()
