"""TraderCore: parity with the backtest engine, dedup, staleness, gates, posture, crash recovery."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from dolphin.engine.acb import AdaptiveCircuitBreaker
from dolphin.engine.engine import NDAlphaEngine
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.ob_inputs import StepOBProvider
from dolphin.execution.trader import ScanBar
from dolphin.scan.volatility import vol_regime_ok
from dolphin.store.journal import JournalLocked
from tests.unit.trader.support import NOW, WARM, CountingExecutor, bars_of, drive, make_core, run

pytestmark = [pytest.mark.actor]

def backtest_trades(cfg, table, warm_until: int, stop: int):
    """The backtest engine on the same bars: warm (no trading) before `warm_until`, trade after."""
    ref = cfg.extras.vol_reference
    _, vol_ok = vol_regime_ok(table.price(ref), cfg.extras.vol_window, cfg.extras.vol_percentile,
                              cfg.extras.vol_calib_bars)
    # a trader's engine runs with OB on (neutral without OBF), never the Monte-Carlo edge
    eng = NDAlphaEngine(cfg, list(table.assets), acb=AdaptiveCircuitBreaker(cfg.acb), ob_provider=StepOBProvider())
    eng.begin_day("2026-01-05")
    args = (table.scan_number, table.ts, table.vel_div, table.v750_lambda_max_velocity, vol_ok, table.prices)
    eng.run_block(*(a[:warm_until] for a in args), trade=False)
    eng.run_block(*(a[warm_until:stop] for a in args))
    return eng


def test_paper_trader_equals_the_backtest_engine(market, blue, tmp_path: Path) -> None:
    core = run(drive(make_core(blue, market, tmp_path / "j.jsonl", fsync=True), bars_of(market, WARM, market.rows),
                     warm=bars_of(market, 0, WARM, published=None)))
    eng = backtest_trades(blue, market, WARM, market.rows)
    assert len(core.trades) > 3
    assert core.trades == eng.trades
    assert core.engine.capital == eng.capital


def test_the_write_ahead_input_is_in_the_file_before_an_order_leaves_and_durable_before_its_fill(
        market, blue, tmp_path: Path) -> None:
    """The intent is written (a kill -9 keeps it) before the executor is called; its fsync runs beside the order,
    and the step's fills are appended only once it returned (docs/trader.md, "Write-ahead, then fsync")."""
    from dolphin.store.journal import Journal

    events: list[str] = []

    class Recording(Journal):
        def append(self, *records, durable: bool = True) -> None:
            super().append(*records, durable=durable)
            events.append(f"append:{'+'.join(sorted({type(r).__name__ for r in records}))}:{durable}")

        def sync(self) -> None:
            pending = self._unsynced
            super().sync()
            events.append(f"sync:{pending}")

    class Checking(CountingExecutor):
        async def submit(self, intent):
            last = core.journal.path.read_bytes().splitlines()[-1]
            assert json.loads(last)["type"] == "scan", "the order left before its input was in the file"
            events.append("submit")
            return await super().submit(intent)

    core = make_core(blue, market, tmp_path / "j.jsonl", Checking(), fsync=True)
    core.journal = Recording(tmp_path / "j.jsonl", fsync=True)

    async def until_a_round_trip() -> None:   # fsync on: only as many bars as one entry and its exit need
        await core.start()
        core.warm(bars_of(market, 0, WARM, published=None))
        for bar in bars_of(market, WARM, market.rows):
            await core.process(bar)
            if core.trades:
                return

    run(until_a_round_trip())
    assert core.trades and events.count("submit") == 2
    first = events.index("submit")
    ahead = max(i for i, e in enumerate(events[:first]) if e.startswith("append:"))
    assert events[ahead] == "append:ScanInput:False"                # written ahead, not yet fsynced
    fills = next(i for i, e in enumerate(events) if i > first and e.startswith("append:") and "FillRecord" in e)
    assert "sync:True" in events[ahead + 1:fills]                   # durable (beside the order) before the fills
    assert events[fills].endswith(":True")                          # the fills and commit: write + fsync


def test_duplicates_and_stale_scans(market, blue, tmp_path: Path) -> None:
    core = make_core(blue, market, tmp_path / "j.jsonl", speed=60.0)

    async def go():
        await core.start()
        bars = bars_of(market, 0, 3)
        await core.process(bars[0])
        again = await core.process(bars[0])
        stale_bar = bars_of(market, 1, 2, published=NOW - 1.0)[0]   # 1 s wall × 60 = 60 s of market time
        stale = await core.process(stale_bar)
        return again, stale

    again, stale = run(go())
    assert again.duplicate and core.stats.duplicates == 1
    assert stale.stale and core.stats.stale == 1 and core.stats.traded_scans == 1
    assert core.engine.bar_count == 2                                # the stale bar still fed the histories


def test_date_boundary_from_the_scans_own_time(market, blue, tmp_path: Path) -> None:
    core = make_core(blue, market, tmp_path / "j.jsonl")
    day = 86_400_000
    bars = [ScanBar(scan_number=i + 1, ts_ms=day * 20_000 + (i - 1) * 5000, vel_div=0.0, v50=0.0, v750=0.0,
                    prices={"BTCUSDT": 100.0}, published_s=NOW) for i in range(3)]

    async def go():
        await core.start()
        return [await core.process(b) for b in bars]

    results = run(go())
    assert results[0].closed_day is None and results[1].closed_day is not None
    assert results[1].closed_day.date != core.engine.current_date


def test_acb_pending_flag_under_concurrent_listener_events(market, blue, tmp_path: Path) -> None:
    """Listener threads only swap the pending value; the engine is called from the loop alone."""
    core = make_core(blue, market, tmp_path / "j.jsonl")
    callers: set[int] = set()
    original = core.engine.update_acb_boost

    def spy(boost: float, beta: float) -> bool:
        callers.add(threading.get_ident())
        return original(boost, beta)

    core.engine.update_acb_boost = spy  # type: ignore[method-assign]
    stop = threading.Event()

    def listener(k: int) -> None:
        i = 0
        while not stop.is_set():
            core.acb_inbox.offer((1.0 + 0.01 * ((i + k) % 30), 0.2))
            i += 1

    threads = [threading.Thread(target=listener, args=(k,)) for k in range(4)]

    async def go():
        await core.start()
        loop_thread = threading.get_ident()
        for t in threads:
            t.start()
        for bar in bars_of(market, 0, 300):
            await core.process(bar)
        stop.set()
        return loop_thread

    loop_thread = run(go())
    for t in threads:
        t.join()
    assert callers == {loop_thread}
    assert core.acb_inbox.offers > 300 and 1.0 <= core.engine.day_base_boost <= 1.3


def test_gatesnap_flags_a_posture_change_mid_step(market, blue, tmp_path: Path) -> None:
    readings = iter(["APEX"])      # the posture read before the step; the watchdog moves it during the step

    def posture_now() -> str:
        return next(readings, "STALKER")

    core = make_core(blue, market, tmp_path / "j.jsonl", posture_now=posture_now)

    async def go():
        await core.start()
        return await core.process(bars_of(market, 0, 1)[0])

    result = run(go())
    assert result.stale_state and "posture" in result.changed_fields and core.stats.stale_state_events == 1


def test_hibernate_and_kill_switch(market, blue, tmp_path: Path) -> None:
    kill = tmp_path / "KILL"
    kill.touch()
    core = run(drive(make_core(blue, market, tmp_path / "a.jsonl", kill_switch=KillSwitch.under(tmp_path, "KILL")),
                     bars_of(market, WARM, market.rows), warm=bars_of(market, 0, WARM, published=None)))
    assert core.trades == [] and core.engine.open_position is None
    hib = run(drive(make_core(blue, market, tmp_path / "b.jsonl", posture_now=lambda: "HIBERNATE"),
                    bars_of(market, WARM, market.rows), warm=bars_of(market, 0, WARM, published=None)))
    assert hib.trades == [] and hib.engine.posture == "HIBERNATE"


def test_two_traders_cannot_share_a_book(market, blue, tmp_path: Path) -> None:
    first = make_core(blue, market, tmp_path / "j.jsonl")
    run(first.start())
    with pytest.raises(JournalLocked):
        run(make_core(blue, market, tmp_path / "j.jsonl").start())
    first.journal.close()


@pytest.mark.degradation
def test_crash_at_every_journal_record_recovers_the_same_books(market, blue, tmp_path: Path) -> None:
    """Kill -9 at any moment = the journal cut at any byte: same final trades, no order twice."""
    live = bars_of(market, WARM, WARM + 6000)
    warm = bars_of(market, 0, WARM, published=None)
    whole_path = tmp_path / "whole.jsonl"
    whole_exec = CountingExecutor()
    whole = run(drive(make_core(blue, market, whole_path, whole_exec), live, warm=warm))
    whole.journal.close()
    assert len(whole.trades) >= 2
    data = whole_path.read_bytes()
    ends = [i + 1 for i, b in enumerate(data) if b == ord("\n")]
    first_fill = next(i for i, line in enumerate(data.split(b"\n")) if b'"type":"fill"' in line)
    rng = np.random.default_rng(3)
    cuts = sorted(set(ends[first_fill - 3:first_fill + 4]) | set(rng.choice(ends, size=10, replace=False).tolist()))
    cuts += [ends[first_fill] - 7]                                   # a torn fill record
    cuts += [ends[first_fill] - 1]                                   # a whole fill record without its newline
    cuts += [ends[0]]                                                # the session record alone, before any snapshot
    reconciled_cases: list[int] = []
    for cut in cuts:
        path = tmp_path / f"cut_{cut}.jsonl"
        path.write_bytes(data[:cut])
        executor = CountingExecutor()
        # the venue already has every order the dead process submitted before the cut: those
        # journaled, plus (worst case) the ones of a write-ahead input whose fills were not yet written
        already_at_venue = {json.loads(line)["client_order_id"] for line in data[:cut].split(b"\n")
                            if b'"type":"fill"' in line and line.endswith(b"}")}
        kept = [json.loads(line) for line in data[:cut].split(b"\n") if line.endswith(b"}")]
        in_flight = kept and kept[-1]["type"] == "scan" and data[cut:].startswith(b'{"type":"fill"')
        if in_flight:   # died after the write-ahead input, with its orders already at the venue
            rest = [json.loads(line) for line in data[cut:].split(b"\n") if line.strip()]
            already_at_venue |= {r["client_order_id"] for r in rest
                                 if r["type"] == "fill" and r["scan_number"] == kept[-1]["scan_number"]}
        for cid in already_at_venue:
            executor._fills[cid] = whole_exec._fills[cid]
        core = make_core(blue, market, path, executor)

        async def resume(core=core):
            await core.start()
            if core.last_scan == 0:
                core.warm(warm)
            for bar in live:
                await core.process(bar)

        run(resume())
        assert core.trades == whole.trades, f"cut at byte {cut}"
        assert core.engine.capital == whole.engine.capital
        assert len(executor.submitted) == len(set(executor.submitted))   # no client order id twice
        assert set(executor.submitted) | already_at_venue == set(whole_exec._fills)
        assert not set(executor.submitted) & already_at_venue          # nothing the venue had was resent
        if in_flight:
            assert core.stats.reconciled >= 1                          # found at the venue by client order id
            reconciled_cases.append(cut)
        core.journal.close()
    assert reconciled_cases, "no cut fell between a write-ahead input and its fills"


def test_backtest_replays_the_journal_of_a_session_with_live_only_inputs(market, blue, tmp_path: Path) -> None:
    """Stale scans, an ACB update and a posture change are not in the archive; the journal has them."""
    from dolphin.backtest.runner import run_backtest
    from dolphin.backtest.session import SessionInputs

    posture = {"now": "APEX"}
    core = make_core(blue, market, tmp_path / "j.jsonl", posture_now=lambda: posture["now"])

    async def go():
        await core.start()
        core.warm(bars_of(market, 0, WARM, published=None))
        for i, bar in enumerate(bars_of(market, WARM, market.rows)):
            if i % 97 == 13:                                           # stale: fed, not traded
                bar = ScanBar(**{**{f: getattr(bar, f) for f in bar.__struct_fields__}, "published_s": NOW - 60})
            if i == 3000:
                core.acb_inbox.offer((1.5, 0.8))
            if i == 6000:
                posture["now"] = "STALKER"
            if i == 9000:
                posture["now"] = "APEX"
            await core.process(bar)

    run(go())
    assert core.stats.stale > 100 and len(core.trades) > 3
    session = SessionInputs.from_journal(tmp_path / "j.jsonl")
    replayed = run_backtest(market, blue, session=session)
    assert replayed.trades == core.trades and replayed.open_position == core.engine.open_position
    plain = run_backtest(market, blue, trade_from_scan=session.first_scan)
    assert plain.trades != core.trades                                 # without the journal it differs


def test_staleness_is_the_bars_market_age_not_its_publish_time(market, blue, tmp_path: Path) -> None:
    """Backfill published just now (a fresh bridge_ts) for bars minutes old was traded (issue 12 §2)."""
    bars = bars_of(market, 0, 3, published=NOW)               # every one published "now"
    close_of_last = bars[-1].ts_ms + 5_000
    clock = {"now": close_of_last + 6_000}                    # the market: 6 s after the last bar closed
    core = make_core(blue, market, tmp_path / "j.jsonl", market_now=lambda: clock["now"])

    async def go():
        await core.start()
        return [await core.process(b) for b in bars]

    results = run(go())
    assert [r.stale for r in results] == [True, True, False]   # 16, 11, 6 s of market age: only the last is fresh
    assert core.stats.stale == 2 and core.stats.traded_scans == 1
    unknown = make_core(blue, market, tmp_path / "k.jsonl", market_now=lambda: None)
    assert unknown.is_stale(bars[-1])                          # no market clock yet: never traded


def test_the_market_clock_takes_the_simulators_speed(tmp_path: Path) -> None:
    from dolphin.market.clock import MarketClock
    from dolphin.market.rest import BinanceRest
    from dolphin.market.sim import SimConfig, SimExchange

    with SimExchange(SimConfig(port=0, symbols=5, seed=3, speed=20.0)) as sim:
        async def go():
            rest = BinanceRest(sim.rest_url)
            clock = MarketClock(rest)
            try:
                assert clock.now_ms() is None
                assert await clock.sync()
                first = clock.now_ms()
                server = await rest.server_time()
                return clock.rate, first, server, clock.uncertainty_ms
            finally:
                await rest.close()

        rate, first, server, uncertainty = run(go())
    # the venue read its clock somewhere inside the sync's round trip: the estimate is good to half of it
    assert rate == 20.0 and first is not None and server >= first - uncertainty


def test_a_stale_scans_age_reads_as_a_duration_or_a_date() -> None:
    from dolphin.execution.trader import _age_words

    assert _age_words(12.34, 0) == "12.3 s of market time old"
    assert _age_words(600.0, 0) == "10.0 min of market time old"
    assert _age_words(3 * 3600.0, 0) == "3.0 h of market time old"
    # a bar from years ago is named by its date, not by an epoch-sized count of seconds
    assert _age_words(1_796_485_451.9, 0) == "its bar closed 1970-01-01 00:00 UTC, 20793 days before market time"
