"""The parity screen (`p`): the parity and strategy health panels, fed by the bus through the TUI's feed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from dolphin.bus import Bus, BusSettings, schema
from dolphin.bus.payloads import HealthGauge, ParityDiff, ParityGap, ParityReport, StrategyHealthReport
from dolphin.enums import (
    GaugeLevel,
    HealthState,
    ParityCause,
    ParityDiffKind,
    ParityStage,
    ParityStatus,
    StepCoverage,
)
from tests.tui.support import FakeClock, plain, wait_for
from tui.app import build_live_app
from tui.panels.parity import ParityPanel
from tui.panels.strategy import StrategyHealthPanel
from tui.state import TuiState

pytestmark = pytest.mark.actor


def parity(now: float, **changes: Any) -> ParityReport:
    values: dict[str, Any] = dict(
        strategy="blue", status=ParityStatus.DIVERGENT, timestamp=now, venue="sim", first_scan=705, last_scan=860,
        scans=156, traded_scans=116, untraded_scans=40, scan_coverage=116 / 156, replay_entries=1, seen_entries=0,
        acted_entries=0, signal_coverage=0.0, acted_share=0.0, live_trades=0, backtest_trades=0, missed=1,
        causes={"coverage_gap": 1}, pnl_diff=-12.5, pnl_inputs=-12.5, price_drift_bps_mean=3.25,
        price_drift_bps_max=4.0, fee_drift_bps_mean=0.5, fee_drift_bps_max=0.5, interval_s=60.0,
        gaps=[ParityGap(kind=StepCoverage.UNTRADED, first_scan=761, last_scan=800, scans=40)], gaps_total=1,
        diffs=[ParityDiff(stage=ParityStage.INPUTS, cause=ParityCause.COVERAGE_GAP, kind=ParityDiffKind.MISSED,
                          at_scan=785, asset="THETAUSDT", side="SHORT", entry_scan=785, pnl_delta=-12.5,
                          detail="stale")], diffs_total=1)
    values.update(changes)
    return ParityReport(**values)


def health(now: float, **changes: Any) -> StrategyHealthReport:
    values: dict[str, Any] = dict(
        strategy="blue", state=HealthState.DISABLED, timestamp=now, evaluated=HealthState.WATCH, trades=34,
        kill_engaged=True, dd_stress=2.2, reasons=["drawdown stress 2.20 > 2.0"], baseline_registered=True,
        gauges=[HealthGauge(metric="expectancy", live=0.0004, baseline=0.001, ratio=0.4, level=GaugeLevel.BAD),
                HealthGauge(metric="sharpe", live=1.7, baseline=2.0, ratio=0.85, level=GaugeLevel.GOOD),
                HealthGauge(metric="drawdown", live=0.11, baseline=0.05, ratio=0.45, level=GaugeLevel.BAD),
                HealthGauge(metric="win_rate", live=0.4, baseline=0.6, ratio=0.67, level=GaugeLevel.WARN),
                HealthGauge(metric="frequency", live=9.0, baseline=None, ratio=None, level=GaugeLevel.NONE)])
    values.update(changes)
    return StrategyHealthReport(**values)


def panel_text(app: Any, panel_id: str, width: int = 100) -> str:
    """A panel of the screen on top (the parity screen is a modal: `app.query_one` looks under it)."""
    return plain(app.screen.query_one(f"#{panel_id}").body_widget.content, width)


def test_the_panels_lay_out_the_reports() -> None:
    state = TuiState(clock=lambda: 1_780_000_000.0)
    p = ParityPanel(state)
    assert "never published" in plain(p.body(0.0), 100)
    from dolphin.bus import BusEvent

    state.deliver(BusEvent(schema.FEATURES, schema.PARITY_LATEST, "ADDED", parity(1_780_000_000.0), 1_780_000_000.0))
    text = plain(p.body(1_780_000_000.0), 100)
    assert "DIVERGENT" in text and "74.4%" in text and "1 missed" in text and "coverage_gap 1" in text
    assert "untraded 40 scans (761–800)" in text and "#785 coverage_gap missed SHORT THETAUSDT -12.50" in text
    state.deliver(BusEvent(schema.FEATURES, schema.STRATEGY_HEALTH_LATEST, "ADDED", health(1_780_000_000.0),
                           1_780_000_000.0))
    text = plain(StrategyHealthPanel(state).body(1_780_000_000.0), 100)
    assert "DISABLED" in text and "entries paused" in text and "0.40×" in text and "no baseline" in text
    assert "DD stress 2.20" in text and "drawdown stress 2.20 > 2.0" in text
    # the state badge's red background stays on the badge: "entries paused" (bold red) must not sit on red
    from rich.console import Console

    segments = list(Console(width=100).render(StrategyHealthPanel(state).body(1_780_000_000.0)))
    paused = [s for s in segments if "entries paused" in s.text]
    assert paused and all(s.style is None or s.style.bgcolor is None for s in paused), paused


def test_p_opens_the_parity_screen_fed_by_the_bus(settings: BusSettings, bus: Bus, tmp_path: Path,
                                                  clock: FakeClock) -> None:
    async def scenario() -> None:
        app = build_live_app(settings=settings, socket_path=tmp_path / "no-supervisord.sock",
                             results_path=tmp_path / "results.json", clock=clock)
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: app.state.bus.state == "connected")
            now = clock()
            bus.put(schema.FEATURES, schema.PARITY_LATEST, parity(now))
            await pilot.press("p")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "ParityScreen")
            await wait_for(pilot, lambda: "DIVERGENT" in panel_text(app, "parity", width=100))
            assert "never published" in panel_text(app, "strategy-health", width=100)
            bus.put(schema.FEATURES, schema.STRATEGY_HEALTH_LATEST, health(now, state=HealthState.WATCH,
                                                                           kill_engaged=False))
            await wait_for(pilot, lambda: "WATCH" in panel_text(app, "strategy-health", width=100))
            bus.put(schema.FEATURES, schema.PARITY_LATEST, parity(now, status=ParityStatus.PARITY, causes={},
                                                                   missed=0, gaps=[], diffs=[], scan_coverage=1.0))
            await wait_for(pilot, lambda: "PARITY" in panel_text(app, "parity", width=100))
            clock.advance(400)                              # no report for longer than a few cycles: stale
            await wait_for(pilot, lambda: app.screen.query_one("#parity").has_class("-stale"))
            await pilot.press("escape")
            await wait_for(pilot, lambda: type(app.screen).__name__ != "ParityScreen")
            assert not [p for p in app.panels if p.id in ("parity", "strategy-health")]

    asyncio.run(scenario())
