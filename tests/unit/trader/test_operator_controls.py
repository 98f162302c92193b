"""The operator's controls in the trader: three kill-switch levels and the force exit, journaled and replayed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from dolphin.backtest.runner import run_backtest
from dolphin.backtest.session import SessionInputs
from dolphin.enums import KillLevel
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.manual import ExitRequests
from dolphin.execution.trader import TraderCore
from dolphin.store.journal import Journal, KillRecord, ManualExitRecord, ScanInput
from tests.unit.trader.support import WARM, bars_of, make_core

pytestmark = [pytest.mark.actor, pytest.mark.signal_fill]


def _core(blue, market, home: Path) -> TraderCore:
    return make_core(blue, market, home / "journal.jsonl", kill_switch=KillSwitch.under(home, "KILL"),
                     exit_requests=ExitRequests.under(home))


def _records(home: Path) -> list[object]:
    return list(Journal(home / "journal.jsonl").iter_records())


def _replayed(market, blue, home: Path):  # noqa: ANN202
    return run_backtest(market, blue, session=SessionInputs.from_journal(home / "journal.jsonl"))


def test_force_exit_goes_through_the_engine_and_replays(market, blue, tmp_path: Path) -> None:
    core = _core(blue, market, tmp_path)
    requests = ExitRequests.under(tmp_path)
    bars = bars_of(market, WARM, market.rows)

    async def go() -> int:
        await core.start()
        core.warm(bars_of(market, 0, WARM, published=None))
        asked_at = -1
        for i, bar in enumerate(bars):
            if asked_at < 0 and core.engine.open_position is not None:
                requests.submit("all", reason="test: flatten", by="tester")
                asked_at = i
            await core.process(bar)
            if asked_at >= 0 and i > asked_at + 3:
                break
        return asked_at

    asked_at = asyncio.run(go())
    assert asked_at >= 0, "no position opened in the sample"
    manual = [t for t in core.trades if t.exit_reason == "MANUAL"]
    assert len(manual) == 1
    still_open = core.engine.open_position
    assert still_open is None or still_open.trade_id != manual[0].trade_id
    taken = [r for r in _records(tmp_path) if isinstance(r, ManualExitRecord)]
    assert len(taken) == 1 and taken[0].applied and taken[0].by == "tester" and taken[0].reason == "test: flatten"
    assert requests.pending() == []                                       # the request file is gone once journaled
    inputs = [r for r in _records(tmp_path) if isinstance(r, ScanInput) and r.manual_exit]
    assert len(inputs) == 1 and inputs[0].scan_number == taken[0].scan_number
    replayed = _replayed(market, blue, tmp_path)
    assert replayed.trades == core.trades                                 # the MANUAL exit replays bit for bit


def test_a_request_with_nothing_to_close_is_journaled_and_dropped(market, blue, tmp_path: Path) -> None:
    core = _core(blue, market, tmp_path)
    ExitRequests.under(tmp_path).submit("BTCUSDT", reason="nothing there")

    async def go() -> None:
        await core.start()
        for bar in bars_of(market, 0, 3):
            await core.process(bar)

    asyncio.run(go())
    (taken,) = [r for r in _records(tmp_path) if isinstance(r, ManualExitRecord)]
    assert not taken.applied and ExitRequests.under(tmp_path).pending() == []


def test_kill_levels_pause_reduce_halt_clear_and_the_kill_file(market, blue, tmp_path: Path) -> None:
    core = _core(blue, market, tmp_path)
    switch = KillSwitch.under(tmp_path, "KILL")
    bars = bars_of(market, WARM, market.rows)
    levels: dict[int, KillLevel] = {}
    schedule = {400: KillLevel.PAUSE, 1400: KillLevel.HALT, 2200: KillLevel.REDUCE, 3000: KillLevel.CLEAR}

    async def go() -> None:
        await core.start()
        core.warm(bars_of(market, 0, WARM, published=None))
        for i, bar in enumerate(bars):
            if i in schedule:
                switch.engage(schedule[i], reason=f"test at {i}", by="tester")
            if i == 3600:
                (tmp_path / "KILL").touch()        # the bare file works as halt
            await core.process(bar)
            levels[bar.scan_number] = core.kill_state.level

    asyncio.run(go())
    entries = {t.entry_bar for t in core.trades} | ({core.engine.open_position.entry_bar}
                                                   if core.engine.open_position else set())
    exits = {t.exit_bar for t in core.trades}
    assert not any(levels[b].blocks_entries for b in entries)            # no entry while paused/reduced/halted
    assert not any(levels[b] is KillLevel.HALT for b in exits)          # no order at all while halted
    kills = [r for r in _records(tmp_path) if isinstance(r, KillRecord)]
    assert [r.level for r in kills] == ["pause", "halt", "reduce", "clear", "halt"]
    assert kills[0].by == "tester" and kills[0].reason == "test at 400" and kills[-1].by == "kill file"
    replayed = _replayed(market, blue, tmp_path)
    assert replayed.trades == core.trades and replayed.open_position == core.engine.open_position
    # the level is durable: a new process reads the same switch
    assert KillSwitch.under(tmp_path, "KILL").state().level is KillLevel.HALT
    (tmp_path / "KILL").unlink()
    assert KillSwitch.under(tmp_path, "KILL").state().level is KillLevel.CLEAR
    assert msgspec.json.decode((tmp_path / "kill_switch.json").read_bytes())["by"] == "tester"


def test_a_corrupt_kill_state_file_is_halt(tmp_path: Path) -> None:
    (tmp_path / "kill_switch.json").write_bytes(b"{not json")
    state = KillSwitch.under(tmp_path, "KILL").state()
    assert state.level is KillLevel.HALT and "corrupt" in state.reason
