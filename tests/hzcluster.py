"""Real Hazelcast members for tests and benchmarks: JVM processes on free ports, started and killed here.

The member jar (``com.hazelcast:hazelcast`` at the pinned version) is fetched once with
Maven into a cache outside the repository (``~/.cache/dolphin/hazelcast``, or
``$DOLPHIN_HZ_JAR_CACHE``), under a file lock so parallel test workers download it
once. Each member is ``java -cp hazelcast.jar HazelcastMemberStarter`` with a config
rendered by `dolphin.bus.cluster_config` (the one operators deploy), a small heap, its
own process group and a parent-death signal, so a crashed test process leaves no JVM
behind; `RealCluster.stop()` kills every group it started.

Missing ``java`` or ``mvn`` (or an offline machine without the cached jar) makes
`real_cluster_unavailable()` return the reason; `require_real_cluster()` turns it into
a skip — or a failure under ``CI=true``.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dolphin.bus.cluster_config import HAZELCAST_VERSION, MemberConfigSpec, member_config_xml
from tests.support import free_port, wait_until

ARTIFACT = f"com.hazelcast:hazelcast:{HAZELCAST_VERSION}"
JAR_NAME = f"hazelcast-{HAZELCAST_VERSION}.jar"
STARTER = "com.hazelcast.core.server.HazelcastMemberStarter"
JVM_ACCESS = (
    "-Djava.net.preferIPv4Stack=true",
    # what Hazelcast asks for on Java 9+ (it warns and runs slower without)
    "--add-modules", "java.se", "--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.management/sun.management=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
)
#: Tests: small heap, quick start (C1 only) — five JVMs and the suite share two cores.
JVM_OPTIONS = ("-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k", *JVM_ACCESS)
#: Benchmarks: the full JIT and a heap that never pressures the collector, as a deployed member runs.
JVM_OPTIONS_BENCH = ("-Xms512m", "-Xmx512m", *JVM_ACCESS)
STARTED_LINE = "is STARTED"
_PR_SET_PDEATHSIG = 1


def jar_cache() -> Path:
    return Path(os.environ.get("DOLPHIN_HZ_JAR_CACHE") or Path.home() / ".cache" / "dolphin" / "hazelcast")


def missing_tools() -> list[str]:
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


class JarUnavailable(Exception):
    """Maven could not fetch the member jar (offline, no Maven Central)."""


def hazelcast_jar(timeout_s: float = 600.0) -> Path:
    """The cached member jar, fetched with ``mvn dependency:copy`` the first time (one worker at a time)."""
    cache = jar_cache()
    jar = cache / JAR_NAME
    if jar.is_file():
        return jar
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if jar.is_file():  # another worker fetched it while we waited
            return jar
        res = subprocess.run(["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={ARTIFACT}",
                              f"-DoutputDirectory={cache}"], capture_output=True, text=True, timeout=timeout_s,
                             cwd=cache)
        if res.returncode != 0 or not jar.is_file():
            tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
            raise JarUnavailable(f"mvn could not fetch {ARTIFACT}: {' / '.join(tail) or f'exit {res.returncode}'}")
    return jar


def real_cluster_unavailable() -> str | None:
    """Why real members cannot run here (None when they can)."""
    missing = missing_tools()
    if missing:
        return f"real Hazelcast members need {' and '.join(missing)} on PATH (not found)"
    try:
        hazelcast_jar()
    except (JarUnavailable, subprocess.TimeoutExpired, OSError) as exc:
        return str(exc)
    return None


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_real_cluster() -> None:
    """Skip (or, with CI=true, fail) when real members cannot run on this machine."""
    import pytest

    reason = real_cluster_unavailable()
    if reason is not None:
        if ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies, and a group of its own."""
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass
class RealMember:
    """One JVM member. `prefix` runs it elsewhere (e.g. ``ip netns exec host1``)."""

    name: str
    host: str
    port: int
    workdir: Path
    spec: MemberConfigSpec
    prefix: tuple[str, ...] = ()
    config_xml: str | None = None  # instead of rendering `spec` (tests of configurations DOLPHIN never writes)
    jvm_options: tuple[str, ...] = JVM_OPTIONS
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log_offset: int = 0  # where this start's lines begin in the (appended) log

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> RealMember:
        """Launch the JVM (returns at once; see `wait_started`)."""
        if self.running:
            raise RuntimeError(f"member {self.name} is already running")
        config = self.workdir / f"{self.name}.xml"
        config.write_text(self.config_xml if self.config_xml is not None else member_config_xml(self.spec))
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start {self.starts} ====\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self.proc = subprocess.Popen(
                [*self.prefix, "java", *self.jvm_options, f"-Dhazelcast.config={config}", "-cp",
                 str(hazelcast_jar()), STARTER],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                preexec_fn=_die_with_parent)
        return self

    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes()[self._log_offset:].decode(errors="replace")
        except OSError:
            return ""

    def wait_started(self, timeout: float = 120.0) -> None:
        """Until this start's log says STARTED (a real condition the member itself reports)."""
        def started() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"member {self.name} exited with {self.proc.returncode}:\n"
                                     + "\n".join(self.log_text().splitlines()[-15:]))
            return STARTED_LINE in self.log_text()

        wait_until(started, timeout, 0.05, f"member {self.name} to start")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the member's whole process group and reap it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM: a graceful shutdown (partitions migrate away first)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise


@dataclass
class RealCluster:
    """N members of one cluster on free ports (loopback unless hosts are given)."""

    workdir: Path
    size: int = 3
    cluster_name: str = field(default_factory=lambda: f"dolphin-test-{os.getpid()}-{time.monotonic_ns() % 10**6}")
    hosts: tuple[str, ...] = ()
    prefixes: tuple[tuple[str, ...], ...] = ()
    fast_failure_detection: bool = True
    jvm_options: tuple[str, ...] = JVM_OPTIONS
    members: list[RealMember] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        hosts = self.hosts or ("127.0.0.1",) * self.size
        ports = [5701 + i if self.hosts else free_port() for i in range(self.size)]  # own addresses: fixed ports
        addresses = tuple(f"{h}:{p}" for h, p in zip(hosts, ports))
        for i, (host, port) in enumerate(zip(hosts, ports)):
            spec = MemberConfigSpec(cluster_name=self.cluster_name, host=host, port=port, members=addresses,
                                    fast_failure_detection=self.fast_failure_detection)
            prefix = self.prefixes[i] if self.prefixes else ()
            self.members.append(RealMember(f"member{i + 1}", host, port, self.workdir, spec, prefix,
                                           jvm_options=self.jvm_options))

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(m.address for m in self.members)

    @property
    def members_env(self) -> str:
        """The value of DOLPHIN_HZ_MEMBERS for this cluster."""
        return ",".join(self.addresses)

    def start(self, timeout: float = 180.0) -> RealCluster:
        """The first member alone (it becomes master at once), then the others together; until all joined."""
        try:
            first, *rest = self.members
            first.start().wait_started(timeout)
            for m in rest:
                m.start()
            for m in rest:
                m.wait_started(timeout)
            self.wait_size(self.size, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def bus_settings(self, **overrides: Any) -> Any:
        """`BusSettings` for DOLPHIN's own client factory, pointed at this cluster."""
        from dolphin.bus import BusSettings

        values: dict[str, Any] = {"members": self.addresses, "cluster_name": self.cluster_name,
                                  "connect_timeout_s": 30.0, "embedded": False}
        values.update(overrides)
        return BusSettings(**values)

    def client(self, **options: Any) -> Any:
        import hazelcast

        opts: dict[str, Any] = {"cluster_members": list(self.addresses), "cluster_name": self.cluster_name,
                                "cluster_connect_timeout": 30.0}
        opts.update(options)
        return hazelcast.HazelcastClient(**opts)

    def wait_size(self, n: int, timeout: float = 120.0) -> None:
        """Until a fresh client sees exactly ``n`` members (the cluster's own view)."""
        client = self.client()
        try:
            wait_until(lambda: len(client.cluster_service.get_members()) == n, timeout, 0.1,
                       f"a cluster of {n} members")
        finally:
            client.shutdown()

    def restart(self, member: RealMember, timeout: float = 120.0) -> None:
        member.start().wait_started(timeout)

    def stop(self) -> None:
        for m in self.members:
            m.kill9()
