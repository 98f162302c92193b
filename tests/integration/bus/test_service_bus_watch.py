"""A service whose bus client gave up (the member away past the connect timeout) must not go on deaf.

Real parts: an embedded member on a free port, the official asyncio client, `run_service`
in its own process (its exit code is what supervisord's autorestart acts on).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dolphin.bus.member import EmbeddedMember
from dolphin.services.runtime import EXIT_BUS_LOST, ServiceContext

pytestmark = [pytest.mark.degradation]

ROOT = Path(__file__).resolve().parents[3]

PROBE = textwrap.dedent("""
    import asyncio, sys
    from dolphin.services.runtime import run_service

    async def main(ctx):
        await ctx.connect_bus()
        print("CONNECTED", flush=True)
        await ctx.stop.wait()

    sys.exit(run_service("probe", main, heartbeat=False))
""")


def _env(port: int, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DOLPHIN_HZ_MEMBERS"}
    env.update(DOLPHIN_HZ_PORT=str(port), DOLPHIN_HZ_CONNECT_TIMEOUT="1", DOLPHIN_HOME=str(tmp),
               PYTHONPATH=str(ROOT))
    return env


def test_a_service_exits_to_be_restarted_when_its_client_gives_up(tmp_path: Path) -> None:
    member = EmbeddedMember(port=0).start()
    proc = subprocess.Popen([sys.executable, "-c", PROBE], env=_env(member.port, tmp_path), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while line and "CONNECTED" not in line:
            line = proc.stdout.readline()
        assert "CONNECTED" in line, "the probe never connected"
        member.stop()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        member.stop()
    assert proc.returncode == EXIT_BUS_LOST != 0
    assert "exiting so supervisord restarts this service" in out and "Traceback" not in out


def test_a_service_that_rebuilds_its_client_reconnects_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    member = EmbeddedMember(port=0).start()
    port = member.port
    monkeypatch.setenv("DOLPHIN_HZ_PORT", str(port))
    monkeypatch.setenv("DOLPHIN_HZ_CONNECT_TIMEOUT", "1")
    monkeypatch.delenv("DOLPHIN_HZ_MEMBERS", raising=False)

    async def scenario() -> tuple[object, object, bool]:
        ctx = ServiceContext(name="probe", log=logging.getLogger("dolphin.probe"), reconnect_bus=True)
        await ctx.connect_bus()
        ctx.start_bus_watch()
        first = ctx.client
        await asyncio.to_thread(member.stop)
        deadline = time.monotonic() + 60
        while first.lifecycle_service.is_running() and time.monotonic() < deadline:   # the client gives up
            await asyncio.sleep(0.1)
        again = EmbeddedMember(port=port)
        await asyncio.to_thread(again.start)
        try:
            while (ctx.client is None or ctx.client is first) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            probe = await ctx.client.get_map("probe")
            await probe.put("k", "v")
            return ctx.client is not first, await probe.get("k"), ctx.bus_lost
        finally:
            await ctx.close()
            await asyncio.to_thread(again.stop)

    replaced, value, lost = asyncio.run(scenario())
    assert replaced and value == "v" and not lost


def test_network_failures_of_the_client_are_one_line_and_bugs_keep_their_traceback() -> None:
    from dolphin.services.runtime import NetworkErrorsOnOneLine

    def record(name: str, exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            return logging.LogRecord(name, logging.WARNING, __file__, 1, "Error during initial connection to %s",
                                     ("Member [127.0.0.1]:5701",), sys.exc_info())

    fmt = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    refused = record("hazelcast.internal.asyncio_connection", ConnectionRefusedError(111, "Connect call failed"))
    assert NetworkErrorsOnOneLine().filter(refused)
    assert fmt.format(refused) == ("WARNING hazelcast.internal.asyncio_connection: Error during initial connection to "
                                   "Member [127.0.0.1]:5701: ConnectionRefusedError: [Errno 111] Connect call failed")
    bug = record("hazelcast.internal.asyncio_connection", KeyError("x"))
    ours = record("dolphin.trader", ConnectionResetError(104, "reset"))
    for kept in (bug, ours):
        assert NetworkErrorsOnOneLine().filter(kept) and "Traceback" in fmt.format(kept)
