"""Snapshots of the parity screen (`p`) at the two sizes the issue names, 120×40 and 200×50.

Deterministic like tests/tui/test_snapshots.py: a frozen clock, fixed reports (a divergent
session with a coverage gap; a disabled strategy whose gauges span every colour band), no
feed or poller. Update after a deliberate UI change with
``pytest tests/tui/test_parity_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.bus import BusEvent, schema
from tests.tui import support as S
from tests.tui.test_parity_screen import health, parity
from tests.tui.test_snapshots import _app, _state
from tui.state import LINK_CONNECTED

pytestmark = pytest.mark.data_integrity


@pytest.mark.parametrize("size", [(120, 40), (200, 50)], ids=["120x40", "200x50"])
def test_parity_screen_divergent_and_disabled(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    state = _state()
    state.set_bus(LINK_CONNECTED, address="127.0.0.1:5701")
    S.fill(state, published=S.T0 - 3)
    state.set_services(S.family_view())
    state.deliver(BusEvent(schema.FEATURES, schema.PARITY_LATEST, "ADDED", parity(S.T0 - 5), S.T0 - 5))
    state.deliver(BusEvent(schema.FEATURES, schema.STRATEGY_HEALTH_LATEST, "ADDED", health(S.T0 - 5), S.T0 - 5))

    async def open_parity(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("p")
        await pilot.pause()

    assert snap_compare(_app(state, S.write_results(tmp_path / "results.json")), terminal_size=size,
                        run_before=open_parity)
