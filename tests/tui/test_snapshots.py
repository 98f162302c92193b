"""Snapshot tests of the main screen in fixed states (pytest-textual-snapshot).

Deterministic by construction: the state's clock is frozen at T0 (ages and the header
clock never move), payloads are fixed, the services table is a fixed supervisord view,
the terminal is 160×50, and no feed or poller runs. Update after a deliberate UI change
with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.engine.params import StrategyConfig
from tests.tui import support as S
from tui.app import DolphinTui
from tui.state import LINK_CONNECTED, LINK_CONNECTING, LINK_LOST, Catalog, StrategyView, TuiState

pytestmark = pytest.mark.data_integrity

SIZE = (160, 50)
STRATEGY = StrategyView(config=StrategyConfig(), source="test")
# Pinned so that a program added to the family later does not change these reference screens.
_PUBLISHERS = {"DOLPHIN_FEATURES[latest_eigen_scan]": "scanner", "DOLPHIN_FEATURES[acb_boost]": "acb",
               "DOLPHIN_FEATURES[exf_latest]": "exf", "DOLPHIN_FEATURES[obf_universe_latest]": "obf",
               "DOLPHIN_FEATURES[mc_forewarner_latest]": "mc", "DOLPHIN_SAFETY[latest]": "watchdog",
               "DOLPHIN_STATE_BLUE[latest]": "trader", "DOLPHIN_PNL_BLUE[<date>]": "trader",
               "DOLPHIN_META_HEALTH[latest]": "mhs"}


def _publisher_of(map_name: str, key: str) -> str | None:
    return _PUBLISHERS.get(f"{map_name}[{'<date>' if map_name == 'DOLPHIN_PNL_BLUE' else key}]")


CATALOG = Catalog(
    publisher_of=_publisher_of,
    programs={"hz": "embedded Hazelcast-protocol member (the bus)",
              "sim": "simulator exchange (Binance USD-M protocol)", "scanner": "eigen scanner: 5 s bars → scans (NG8)",
              "mhs": "meta health: sensors M1–M5, rm_meta, auto-restart", "trader": "paper/sim trader (blue)"})


def _state(now: float = S.T0) -> TuiState:
    state = TuiState(clock=lambda: now, catalog=CATALOG)
    state.rejections = lambda: 0
    return state


def _app(state: TuiState, results: Path) -> DolphinTui:
    return DolphinTui(state=state, results_path=results, strategy=STRATEGY)


def test_cold_start_nothing_published_yet(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Family up, bus connected, nothing published: every panel names its publisher and that service's state."""
    state = _state()
    state.set_bus(LINK_CONNECTED, address="127.0.0.1:5701")
    state.set_services(S.family_view({"mhs": "FATAL"}))
    assert snap_compare(_app(state, tmp_path / "none.json"), terminal_size=SIZE)


def test_connecting_with_no_supervisord(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = _state()
    state.set_bus(LINK_CONNECTING, address="127.0.0.1:5701")
    state.set_services(S.family_view(error="supervisord is not running (start the family with `dolphin up`)"))
    assert snap_compare(_app(state, tmp_path / "none.json"), terminal_size=SIZE)


def test_live_system_every_panel_fresh(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = _state()
    state.set_bus(LINK_CONNECTED, address="127.0.0.1:5701")
    S.fill(state, published=S.T0 - 3)
    state.set_services(S.family_view())
    assert snap_compare(_app(state, S.write_results(tmp_path / "results.json")), terminal_size=SIZE)


@pytest.mark.parametrize("size", [(120, 40), (200, 50)], ids=["120x40", "200x50"])
def test_live_system_at_the_operators_sizes(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """The smallest terminal an operator uses (compact rows, the services table scrolling) and a wide one."""
    state = _state()
    state.set_bus(LINK_CONNECTED, address="127.0.0.1:5701")
    S.fill(state, published=S.T0 - 3)
    state.set_services(S.family_view())
    assert snap_compare(_app(state, S.write_results(tmp_path / "results.json")), terminal_size=size)


def test_bus_lost_data_marked_stale(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The bus went away 12 s ago: the header says so and every bus panel turns stale."""
    state = _state(S.T0 - 12)
    state.set_bus(LINK_CONNECTED, address="127.0.0.1:5701")
    S.fill(state, published=S.T0 - 20)
    state.set_bus(LINK_LOST, detail="connection lost; reconnecting")
    state.clock = lambda: S.T0
    state.set_services(S.family_view({"hz": "EXITED"}))
    assert snap_compare(_app(state, S.write_results(tmp_path / "results.json")), terminal_size=SIZE)


def test_frozen_scanner_and_malformed_test_results(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Scans stopped 95 s ago while everything else is fresh; the results file is torn."""
    state = _state()
    state.set_bus(LINK_CONNECTED, address="127.0.0.1:5701")
    S.fill(state, published=S.T0 - 95)
    for key, payload in ((("DOLPHIN_META_HEALTH", "latest"), S.meta_health(S.T0 - 2, status="DEGRADED", rm=0.71)),
                         (("DOLPHIN_SAFETY", "latest"), S.safety(S.T0 - 2, posture="STALKER", rm=0.62)),
                         (("DOLPHIN_FEATURES", "acb_boost"), S.acb(S.T0 - 2)),     # ACB and ExF rewrite every 10 s
                         (("DOLPHIN_FEATURES", "exf_latest"), S.exf(S.T0 - 2))):
        from dolphin.bus import BusEvent

        state.deliver(BusEvent(key[0], key[1], "ADDED", payload, S.T0 - 2))
    state.set_services(S.family_view({"scanner": "BACKOFF"}))
    results = S.write_results(tmp_path / "test_results_latest.json", broken=True)
    assert snap_compare(_app(state, results), terminal_size=SIZE)
