"""The three risk daemons as real processes: kill -9 each, two ACBs under one lock, a drawdown driving Cat5.

A real member (short CP session TTL, so a killed lock holder's session expires within
seconds) and a real simulator; the daemons run as ``python -m dolphin.services.<name>``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dolphin.bus import Bus, EmbeddedMember, StrategyState, schema
from dolphin.bus.client import connect
from dolphin.engine.acb import ExternalFactors, acb_signals, base_boost
from dolphin.engine.params import AcbParams
from dolphin.market.sim import SimConfig, SimExchange
from dolphin.market.synthetic import DEFAULT_START_MS
from tests.integration.risk.support import Collector, Daemon, risk_env
from tests.support import wait_until

pytestmark = [pytest.mark.degradation, pytest.mark.slow]


def _drawdown_state(drawdown: float) -> StrategyState:
    capital = 25_000.0 * (1 - drawdown)
    return StrategyState(strategy="blue", capital=capital, date="2026-01-06", pnl=capital - 25_000.0, trades=3,
                         peak_capital=25_000.0, drawdown=drawdown, updated_at=time.time())


def test_kill_9_of_each_daemon_two_acb_writers_and_a_drawdown(tmp_path: Path) -> None:
    start = DEFAULT_START_MS + 86_400_000 + 6 * 3_600_000
    with EmbeddedMember(port=0, session_ttl_s=4.0, session_heartbeat_s=1.0) as member, \
            SimExchange(SimConfig(port=0, symbols=10, seed=7, start_ms=start, speed=20)) as sim:
        env = risk_env(tmp_path, member.port, sim)
        client = connect(cluster_connect_timeout=10.0, cluster_members=[f"127.0.0.1:{member.port}"])
        bus = Bus(client)
        acb_writes = Collector(client, schema.FEATURES, schema.ACB_BOOST)
        postures = Collector(client, schema.SAFETY, schema.LATEST)
        daemons = [Daemon("exf", tmp_path, env), Daemon("acb", tmp_path, env, log_name="acb-a"),
                   Daemon("acb", tmp_path, env, log_name="acb-b"), Daemon("watchdog", tmp_path, env)]
        exf, acb_a, acb_b, watchdog = daemons
        for d in daemons:
            d.start()
        try:
            # ---- ExF up, ACB's verdict is the engine's function of the factors it used
            wait_until(lambda: (x := bus.get(schema.FEATURES, schema.EXF_LATEST)) is not None and not x.stale, 90,
                       what="exf_latest with four fresh factors")
            verdict = acb_writes.wait_for(lambda x: len(x.factors) == 4, 90, "an ACB verdict over four factors")
            expected = acb_signals(ExternalFactors(**verdict.factors), AcbParams())
            assert verdict.signals == expected and verdict.boost == base_boost(expected)

            # ---- two ACBs started at once: one holds the lock and writes, the other waits
            first_writer = verdict.writer
            wait_until(lambda: len(acb_writes.items) >= 3, 60, what="a few ACB writes")
            assert {x.writer for x in acb_writes.items} == {first_writer}
            holder, standby = (acb_a, acb_b) if first_writer.endswith(f":{acb_a.pid}") else (acb_b, acb_a)
            assert first_writer.endswith(f":{holder.pid}")
            wait_until(lambda: "waiting for it" in standby.text(), 30, what="the second ACB to wait for the lock")
            old_fence = verdict.fence
            holder.kill9()
            takeover = acb_writes.wait_for(lambda x: x.writer.endswith(f":{standby.pid}"), 60,
                                           "the standby ACB to take the lock over")
            assert takeover.fence is not None and old_fence is not None and takeover.fence > old_fence
            restarted = Daemon("acb", tmp_path, env, log_name="acb-a2").start()
            daemons.append(restarted)
            n = len(acb_writes.items)
            wait_until(lambda: len(acb_writes.items) >= n + 3, 60, what="more writes by the new holder")
            writers = [x.writer for x in acb_writes.items]
            cut = writers.index(takeover.writer)
            assert set(writers[:cut]) == {first_writer} and set(writers[cut:]) == {takeover.writer}, \
                "writes of two ACB instances interleaved"

            # ---- kill -9 the ExF daemon: a new one publishes again
            exf.kill9()
            killed_at = time.time()
            exf2 = Daemon("exf", tmp_path, env, log_name="exf2").start()
            daemons.append(exf2)
            wait_until(lambda: (x := bus.get(schema.FEATURES, schema.EXF_LATEST)) is not None
                       and x.pushed_at > killed_at and x.dvol_btc is not None and not x.stale, 90,
                       what="a restarted ExF publishing")

            # ---- a drawdown drives Cat5; kill -9 the watchdog: the new one resumes, never back to APEX at once
            bus.put(schema.STATE_BLUE, schema.LATEST, _drawdown_state(0.12))
            down = postures.wait_for(lambda s: s.posture == "TURTLE", 60, "the drawdown to put the posture in TURTLE")
            assert down.sensors["cat5_capital"] == pytest.approx(0.5, abs=1e-6)
            assert "Cat5 capital 0.50 (drawdown 12.0 %)" in (down.reason or "")
            watchdog.kill9()
            killed_at = time.time()
            old = postures.items[-1]
            watchdog2 = Daemon("watchdog", tmp_path, env, log_name="watchdog2").start()
            daemons.append(watchdog2)
            resumed = postures.wait_for(lambda s: (s.timestamp or 0) > killed_at, 90, "the restarted watchdog")
            assert resumed.posture == "TURTLE" and resumed.seq is not None and old.seq is not None
            assert resumed.seq > old.seq and resumed.rm <= 0.5 + 1e-6
            assert "resuming from the standing posture TURTLE" in watchdog2.text()
        finally:
            for d in daemons:
                code = d.stop()
                assert code in (None, 0, -9), f"{d.log.name}: exit {code}\n{d.text()[-2000:]}"
            client.shutdown()
