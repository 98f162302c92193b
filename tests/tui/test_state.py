"""The TUI's state, formatting and panel text, without a screen: coalescing, ages, garbage, "never published"."""

from __future__ import annotations

import math
import threading

import pytest

from dolphin.bus import BusEvent, schema
from dolphin.bus.payloads import Heartbeat, WarmupProgress
from dolphin.enums import WarmupUnit
from dolphin.supervision.programs import BY_NAME
from dolphin.supervision.rpc import ProcessInfo
from tests.tui import support as S
from tui import format as fmt
from tui.panels.base import missing_reason
from tui.state import (
    LINK_CONNECTED,
    LINK_DOWN,
    LINK_REPLAY,
    SOURCES,
    ServicesView,
    TuiState,
    topic_for,
)

pytestmark = pytest.mark.data_integrity


def _event(map_name: str, key: str, payload: object, kind: str = "ADDED", at: float = S.T0) -> BusEvent:
    return BusEvent(map_name, key, kind, payload, at)  # type: ignore[arg-type]


def _proc(name: str, state: str = "RUNNING", pid: int = 100) -> ProcessInfo:
    return ProcessInfo(name=name, group="dolphin_data", state=state, pid=pid, start=int(S.T0) - 60, now=int(S.T0),
                       exitstatus=0, spawnerr="", description="", logfile="")


def test_topics_cover_the_shown_keys_and_ignore_the_rest() -> None:
    assert topic_for(schema.FEATURES, schema.LATEST_EIGEN_SCAN) == "scan"
    assert topic_for(schema.PNL_BLUE, "2026-04-05") == "pnl"
    assert topic_for(schema.HEARTBEAT, "scanner_heartbeat") == "heartbeat"
    assert topic_for(schema.STATE_BLUE, "state_blue_2026-04-05") is None  # per-run snapshots are not shown
    assert topic_for(schema.PNL_GREEN, "2026-04-05") is None


def test_a_burst_of_events_notifies_once_until_drained() -> None:
    state = TuiState(clock=lambda: S.T0)
    calls: list[int] = []
    state.set_notifier(lambda: calls.append(1))
    for n in range(50):
        state.deliver(_event(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(n, S.T0)))
    state.deliver(_event(schema.SAFETY, schema.LATEST, S.safety(S.T0)))
    assert len(calls) == 1
    assert state.take_dirty() == {"scan", "safety"}
    state.deliver(_event(schema.FEATURES, schema.ACB_BOOST, S.acb(S.T0)))
    assert len(calls) == 2 and state.take_dirty() == {"acb"}
    assert state.vel_div_history()[-1] == pytest.approx(-0.0312) and len(state.vel_div_history()) == 50


def test_concurrent_writers_lose_nothing_and_notify_boundedly() -> None:
    state = TuiState(clock=lambda: S.T0)
    calls: list[int] = []
    state.set_notifier(lambda: calls.append(1))

    def writer(service: str) -> None:
        for _ in range(200):
            state.deliver(_event(schema.HEARTBEAT, f"{service}_heartbeat", S.heartbeat(service, S.T0)))

    threads = [threading.Thread(target=writer, args=(f"svc{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(state.heartbeats()) == {"svc0", "svc1", "svc2", "svc3"}
    assert state.delivered == 800 and len(calls) == 1


def test_latest_pnl_is_the_latest_date_and_removals_clear() -> None:
    state = TuiState(clock=lambda: S.T0)
    state.deliver(_event(schema.PNL_BLUE, "2026-04-04", S.daily_result(S.T0 - 86400, pnl=-5.0, day="2026-04-04")))
    state.deliver(_event(schema.PNL_BLUE, "2026-04-05", S.daily_result(S.T0, pnl=12.0)))
    entry = state.latest_pnl()
    assert entry is not None and entry.payload.pnl == 12.0
    state.deliver(_event(schema.PNL_BLUE, "2026-04-05", None, kind="REMOVED"))
    entry = state.latest_pnl()
    assert entry is not None and entry.payload.date == "2026-04-04"
    state.deliver(_event(schema.FEATURES, schema.ACB_BOOST, S.acb(S.T0)))
    state.deliver(BusEvent(schema.FEATURES, "", "CLEAR_ALL", None, S.T0))
    assert state.entry(schema.FEATURES, schema.ACB_BOOST) is None


def test_age_counts_from_the_publish_time_not_market_time() -> None:
    """A scan's market time may run ahead (accelerated simulator); its age is from bridge_ts."""
    state = TuiState(clock=lambda: S.T0 + 12)
    state.deliver(_event(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(7, S.T0, market_ahead_s=3600)))
    entry = state.entry(schema.FEATURES, schema.LATEST_EIGEN_SCAN)
    assert state.age_of(entry) == pytest.approx(12.0)


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, "x", True, object()])
def test_formatting_never_raises_and_dashes_garbage(value: object) -> None:
    for render in (fmt.num, fmt.money, fmt.pct, fmt.integer, fmt.price, fmt.age, fmt.clock):
        assert render(value) == fmt.DASH  # type: ignore[operator]
    assert fmt.bar(value) == "░" * 20
    assert fmt.duration(value) == ""  # type: ignore[arg-type]


def test_formatting_values() -> None:
    assert fmt.num(-0.00001, 3, signed=True) == "+0.000"
    assert fmt.age(12.7) == "12 s" and fmt.age(245) == "4 m 05 s" and fmt.age(3 * 3600 + 720) == "3 h 12 m"
    assert fmt.age(-30) == "in the future"
    assert fmt.price(64123.5) == "64,123.50" and fmt.price(0.000123) == "0.000123"
    assert fmt.duration(42) == "42 s" and fmt.duration(600) == "10 m" and fmt.duration(90061) == "1 d 01 h"


def test_the_state_holds_ng8_and_ng7_scans_as_one_record() -> None:
    state = TuiState(clock=lambda: S.T0)
    state.deliver(_event(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(1, S.T0, vel_div=-0.04)))
    r8 = state.scan_record()
    assert r8 is not None and r8.scan_number == 1
    lam, vel, _acc, inst = r8.window(50)
    assert (lam, vel, inst) == (pytest.approx(12.41), pytest.approx(-0.02), pytest.approx(0.031))
    assert math.isnan(r8.window(300)[3])
    state.deliver(_event(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.ng7_payload(2, S.T0)))
    r7 = state.scan_record()
    assert r7 is not None and r7.scan_number == 2
    assert r7.window(50)[0] == 9.5 and r7.window(50)[1] == 0.011 and r7.window(50)[3] == 0.02
    assert r7.w750_velocity == 0.031 and math.isnan(r7.w150_lambda_max) and r7.w150_velocity == 0.004
    assert state.vel_div_history()[-1] == r7.vel_div
    state.deliver(_event(schema.FEATURES, schema.LATEST_EIGEN_SCAN, None, kind="REMOVED"))
    assert state.scan_record() is None


def _reason(state: TuiState, topic: str) -> str:
    return missing_reason(state, SOURCES[topic]).plain


def test_never_published_names_the_publisher_and_its_state() -> None:
    state = TuiState(clock=lambda: S.T0)
    state.set_bus(LINK_DOWN, address="127.0.0.1:5701")
    assert "no bus connection yet" in _reason(state, "scan")
    state.set_bus(LINK_CONNECTED)
    state.set_services(ServicesView(infos=(_proc("scanner"), _proc("acb", "STOPPED", 0)), polled_at=S.T0,
                                    enabled=True, socket="/x"))
    text = _reason(state, "scan")
    assert "DOLPHIN_FEATURES[latest_eigen_scan] never published" in text
    assert "scanner is RUNNING (pid 100) but has not written it yet" in text
    # the scanner's heartbeat says how far its start-up backfill has come (issue 15: warm-up is visible)
    beat = Heartbeat(ts=S.T0, service="scanner", pid=100, phase="backfilling",
                     warmup=WarmupProgress(done=412, total=899))
    state.deliver(_event(schema.HEARTBEAT, "scanner_heartbeat", beat))
    assert "scanner is RUNNING (pid 100), warming up: backfilling 412 of 899 bars (46%)" in _reason(state, "scan")
    state.deliver(_event(schema.HEARTBEAT, "scanner_heartbeat", S.heartbeat("scanner", S.T0)))
    # OBF's first-publish warm-up, in seconds, the same way (one code path: Heartbeat.warmup_text)
    state.set_services(ServicesView(infos=(_proc("scanner"), _proc("acb", "STOPPED", 0), _proc("obf", pid=101)),
                                    polled_at=S.T0, enabled=True, socket="/x"))
    state.deliver(_event(schema.HEARTBEAT, "obf_heartbeat", Heartbeat(
        ts=S.T0, service="obf", pid=101, phase="warm-up", warmup=WarmupProgress(done=23, total=60,
                                                                                 unit=WarmupUnit.SECONDS))))
    assert "obf is RUNNING (pid 101), warming up: warm-up 23 of 60 s (38%)" in _reason(state, "obf")
    assert "acb is STOPPED" in _reason(state, "acb")
    expected = "not a program of this supervisord" if "exf" in BY_NAME else "not part of the family yet"
    assert f"exf — {expected}" in _reason(state, "exf")
    assert "publisher: trader" in _reason(state, "pnl")
    state.set_services(ServicesView(infos=(), polled_at=S.T0, enabled=True, socket="/x",
                                    error="supervisord is not running"))
    assert "supervisord not reachable" in _reason(state, "meta")
    state.set_bus(LINK_REPLAY)
    assert "is not in this replay" in _reason(state, "meta")


def test_the_alpha_panel_agrees_with_the_engine_at_the_gate() -> None:
    """The screen used to say "SHORT signal" at vel_div == threshold, where the engine does not trade."""
    from dolphin.engine.params import StrategyConfig
    from tui.panels.alpha import signal_state

    cfg = StrategyConfig()
    assert signal_state(cfg.signal_threshold, cfg)[0] == "no signal"
    assert signal_state(cfg.signal_threshold - 1e-9, cfg)[0] == "SHORT signal"
    assert signal_state(cfg.signal_extreme, cfg)[0] == "EXTREME SHORT"
    assert signal_state(None, cfg)[0] == "—"
    long_cfg = StrategyConfig(direction="long")
    assert signal_state(long_cfg.signal_threshold + 1e-9, long_cfg) == ("LONG signal", "bold green")


def test_mc_history_is_the_writers_own_when_the_report_carries_one() -> None:
    """mcfw's reports carry their recent probabilities: a TUI started later shows them at once."""
    import msgspec

    state = TuiState(clock=lambda: S.T0)
    state.deliver(_event(schema.FEATURES, schema.MC_FOREWARNER_LATEST, S.mc(S.T0, prob=0.05)))
    state.deliver(_event(schema.FEATURES, schema.MC_FOREWARNER_LATEST, S.mc(S.T0, prob=0.12)))
    assert state.mc_history() == [0.05, 0.12]      # a peer's reports (no history): accumulated here
    carried = msgspec.structs.replace(S.mc(S.T0, prob=0.31), prob_history=[0.02, 0.04, 0.31])
    state.deliver(_event(schema.FEATURES, schema.MC_FOREWARNER_LATEST, carried))
    assert state.mc_history() == [0.02, 0.04, 0.31]
