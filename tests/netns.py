"""Hosts on one machine: network namespaces joined by a bridge, for tests of a family split across hosts.

`Network` creates a "switch" namespace holding a bridge, then one namespace per host,
each with a veth pair into the bridge and one address on a private /24; optionally a
leg for the test process itself (root namespace), so the test can reach the hosts.
`cut(host)` takes the host's switch port down — its packets vanish, no reset is sent,
exactly like a pulled cable — and `restore(host)` brings it back. `destroy()` deletes
every namespace it made (which removes their interfaces and the root leg too).

Needs root and ``ip`` (iproute2). `require_netns()` skips otherwise, naming what is
missing — or fails with CI=true, where the tests run as root.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field


def netns_unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "network-namespace tests need the `ip` command (iproute2), not found"
    if os.geteuid() != 0:
        return "network-namespace tests need root (ip netns add); CI runs them as root"
    return None


def require_netns() -> None:
    import pytest

    from tests.hzcluster import ci

    reason = netns_unavailable()
    if reason is not None:
        if ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")


@dataclass
class Network:
    """A private /24 of namespaced hosts behind one bridge (see the module doc)."""

    tag: str = field(default_factory=lambda: f"{os.getpid() % 1000:03d}{random.randrange(100):02d}")
    subnet: str = field(default_factory=lambda: f"10.213.{random.randrange(1, 255)}")
    hosts: dict[str, str] = field(default_factory=dict)  # host name -> address
    _namespaces: list[str] = field(default_factory=list)
    _ports: dict[str, str] = field(default_factory=dict)  # host name -> its veth end in the switch
    root_address: str | None = None

    @property
    def switch(self) -> str:
        return f"d{self.tag}sw"

    def ns(self, host: str) -> str:
        return f"d{self.tag}{host}"

    def create(self) -> Network:
        _ip("netns", "add", self.switch)
        self._namespaces.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        return self

    def _leg(self, index: int) -> tuple[str, str]:
        return f"d{self.tag}v{index}a", f"d{self.tag}v{index}b"

    def add_host(self, host: str, last_octet: int) -> str:
        """A host namespace with loopback and one address on the bridge; returns the address."""
        ns = self.ns(host)
        _ip("netns", "add", ns)
        self._namespaces.append(ns)
        inside, port = self._leg(last_octet)
        _ip("link", "add", inside, "type", "veth", "peer", "name", port)
        _ip("link", "set", inside, "netns", ns)
        _ip("link", "set", port, "netns", self.switch)
        address = f"{self.subnet}.{last_octet}"
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", inside)
        _ip("-n", ns, "link", "set", inside, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        self.hosts[host] = address
        self._ports[host] = port
        return address

    def add_root_leg(self, last_octet: int = 1) -> str:
        """Give the test process an address on the bridge (removed with the switch namespace)."""
        inside, port = self._leg(last_octet)
        _ip("link", "add", inside, "type", "veth", "peer", "name", port)
        _ip("link", "set", port, "netns", self.switch)
        self.root_address = f"{self.subnet}.{last_octet}"
        _ip("addr", "add", f"{self.root_address}/24", "dev", inside)
        _ip("link", "set", inside, "up")
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        return self.root_address

    def prefix(self, host: str) -> tuple[str, ...]:
        """Prepend to a command to run it on `host`."""
        return ("ip", "netns", "exec", self.ns(host))

    def cut(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", self._ports[host], "down")

    def restore(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", self._ports[host], "up")

    def destroy(self) -> None:
        """Delete every namespace this network made (best effort: each one is tried)."""
        for ns in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self._namespaces.clear()
