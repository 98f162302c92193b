"""The scanner core without sockets: backfill plans, archive resume, gap fills, repairs, carry-forward, publishing."""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dolphin.market.bars import Bar
from dolphin.market.errors import MarketUnavailableError
from dolphin.market.symbols import universe
from dolphin.market.synthetic import SyntheticConfig, SyntheticMarket
from dolphin.scan.precision import ScanEngine
from dolphin.scan.updater import ScanUpdater
from dolphin.services.scanner.backfill import (
    REWARM_BARS,
    WARMUP_BARS,
    ArchiveState,
    BackfillPlan,
    inspect_archive,
    last_closed_open,
    plan_backfill,
)
from dolphin.services.scanner.publisher import ScanPublisher
from dolphin.services.scanner.service import Scanner, ScannerStats
from dolphin.store.arrow_scans import archive_dir, read_scan
from dolphin.store.scan_archive import list_scan_files, load_arrow_scans

pytestmark = [pytest.mark.data_integrity]

BAR = 5_000
N = 8
SYMBOLS = tuple(universe(N))
LOG = logging.getLogger("dolphin.scanner.test")


@pytest.fixture(scope="module")
def market() -> tuple[np.ndarray, np.ndarray]:
    """(open times ms, closes) of 2,600 bars of an 8-symbol synthetic market."""
    bars = SyntheticMarket(SyntheticConfig(seed=11, n_symbols=N)).generate(0, 2_600)
    return bars.ts_ms.copy(), bars.close.copy()


class FakeHistory:
    """REST history served from a matrix; records what was asked; can fail a few times first."""

    def __init__(self, ts: np.ndarray, closes: np.ndarray, *, carry_forward: bool = False, failures: int = 0) -> None:
        self.ts, self.closes = ts, closes
        self.carry_forward = carry_forward
        self.failures = failures
        self.fetches: list[tuple[int, int]] = []
        self.repairs: list[tuple[int, list[int]]] = []

    def _row(self, open_ms: int) -> int:
        return int((open_ms - int(self.ts[0])) // BAR)

    async def fetch(self, first: int, last: int) -> np.ndarray:
        if self.failures:
            self.failures -= 1
            raise MarketUnavailableError("venue away")
        self.fetches.append((first, last))
        rows = (last - first) // BAR + 1
        out = np.full((rows, N), np.nan)
        for r in range(rows):
            k = self._row(first + r * BAR)
            if 0 <= k < len(self.ts):
                out[r] = self.closes[k]
        return out

    async def repair(self, open_ms: int, columns: list[int], *, timeout_s: float = 2.0) -> dict[int, float]:
        self.repairs.append((open_ms, list(columns)))
        return {c: float(self.closes[self._row(open_ms), c]) for c in columns}


class RecordingPublisher:
    failing = False

    def __init__(self) -> None:
        self.records: list[Any] = []

    def submit(self, record: Any, completed_at: float | None = None) -> asyncio.Future[bool]:
        self.records.append(record)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.set_result(True)
        return done


def make_scanner(root: Path, history: FakeHistory, publisher: Any = None) -> tuple[Scanner, ScannerStats]:
    stats = ScannerStats()

    async def no_sleep(_s: float) -> bool:
        return False

    scanner = Scanner(root=root, symbols=SYMBOLS, bar_ms=BAR, engine=ScanEngine(N), history=history,
                      publisher=publisher, stats=stats, log=LOG, archive=inspect_archive(root), sleep=no_sleep)
    return scanner, stats


def bar(ts: np.ndarray, closes: np.ndarray, k: int, *, drop: tuple[int, ...] = ()) -> Bar:
    row = closes[k].copy()
    row[list(drop)] = np.nan
    return Bar(int(ts[k]), row, len(drop), bool(drop), 0.0)


def numbers_and_times(root: Path) -> tuple[list[int], np.ndarray]:
    files = list_scan_files(archive_dir(root))
    return [f.scan_number for f in files], np.asarray(load_arrow_scans(root).ts)


# ------------------------------------------------------------------ plans

def test_plans_first_start_and_restart() -> None:
    now = 1_767_657_602_300
    last = last_closed_open(now, BAR)
    assert last == 1_767_657_595_000  # 1_767_657_600_000 is still forming
    first = plan_backfill(now, BAR, ArchiveState(0, None))
    assert first.first_start and first.bars == WARMUP_BARS and first.last_open == last and first.warm_through is None
    archived = last - 40 * BAR
    again = plan_backfill(now, BAR, ArchiveState(77, archived))
    assert not again.first_start and again.warm_through == archived and again.missing == 40
    assert again.first_open == archived - (REWARM_BARS - 1) * BAR and again.bars == REWARM_BARS + 40
    chunks = BackfillPlan(0, 9 * BAR, None, True, BAR).chunks(4)
    assert chunks == [(0, 3 * BAR), (4 * BAR, 7 * BAR), (8 * BAR, 9 * BAR)]


# ------------------------------------------------------------------ first start, restart, live

def test_first_start_archives_scans_from_the_first_defined_vel_div_unpublished(
        tmp_path: Path, market: tuple[np.ndarray, np.ndarray]) -> None:
    ts, closes = market
    history = FakeHistory(ts, closes, failures=2)  # the venue is away at first: retried
    publisher = RecordingPublisher()
    scanner, stats = make_scanner(tmp_path, history, publisher)
    plan = plan_backfill(int(ts[WARMUP_BARS - 1]) + BAR, BAR, ArchiveState(0, None))
    progress: list[tuple[int, int]] = []
    asyncio.run(scanner.backfill(plan, on_progress=lambda done, total: progress.append((done, total))))
    # the heartbeat's warm-up progress: from 0 to every bar of the plan, never backwards
    assert progress[0] == (0, plan.bars) and progress[-1] == (plan.bars, plan.bars) and len(progress) > 10
    assert all(a[0] <= b[0] and a[1] == b[1] for a, b in zip(progress, progress[1:]))
    numbers, times = numbers_and_times(tmp_path)
    assert numbers == list(range(1, WARMUP_BARS - 751 + 1))  # 899: vel_div is first defined at the 752nd bar
    assert (np.diff(times) == BAR).all() and times[0] == ts[751] and times[-1] == ts[WARMUP_BARS - 1]
    assert publisher.records == [] and stats.backfilled == 899 and stats.warmed == 751
    first = read_scan(list_scan_files(archive_dir(tmp_path))[0].path)
    assert math.isfinite(first.vel_div) and first.timestamp_ns == int(ts[751]) * 1_000_000
    assert first.assets == SYMBOLS


def test_a_restart_resumes_the_numbers_fills_the_gap_and_matches_an_uninterrupted_run(
        tmp_path: Path, market: tuple[np.ndarray, np.ndarray]) -> None:
    ts, closes = market
    end1 = 1_700                                       # bars [0, 1700) before the crash
    scanner, _ = make_scanner(tmp_path, FakeHistory(ts, closes))
    asyncio.run(scanner.backfill(BackfillPlan(int(ts[0]), int(ts[end1 - 1]), None, True, BAR)))
    highest = scanner.next_number - 1
    # restart 60 bars later: re-warm, archive the 60 missing bars, then live bars follow
    history = FakeHistory(ts, closes)
    publisher = RecordingPublisher()
    again, stats = make_scanner(tmp_path, history, publisher)
    assert again.next_number == highest + 1
    plan = plan_backfill(int(ts[end1 + 59]) + BAR, BAR, inspect_archive(tmp_path))
    assert plan.missing == 60 and history.fetches == []
    asyncio.run(again.backfill(plan))
    assert history.fetches[0][0] == int(ts[end1 - REWARM_BARS])
    assert stats.backfilled == 60 and stats.warmed == REWARM_BARS and publisher.records == []

    async def live() -> None:
        await again.handle_bar(bar(ts, closes, end1 + 59))      # already scanned from history: skipped
        await again.handle_bar(bar(ts, closes, end1 + 60))
        await again.handle_bar(bar(ts, closes, end1 + 64))      # a hole of 3 bars: filled from REST first

    asyncio.run(live())
    assert stats.duplicates == 1 and stats.gap_filled == 3 and stats.live == 2
    assert [r.scan_number for r in publisher.records] == list(range(highest + 61, highest + 66))
    numbers, times = numbers_and_times(tmp_path)
    assert numbers == list(range(1, highest + 66)) and (np.diff(times) == BAR).all()
    # the same numbers as one uninterrupted run over the same bars
    ref = ScanUpdater(N)
    ref.warm(closes[:751])
    expected = [ref.update(closes[k]) for k in range(751, end1 + 65)]
    table = load_arrow_scans(tmp_path)
    got = np.asarray(table.vel_div)
    want = np.array([f.vel_div for f in expected])
    assert np.nanmax(np.abs(got - want)) < 1e-12
    resumed = read_scan(list_scan_files(archive_dir(tmp_path))[highest].path)  # the first scan after the crash
    assert math.isfinite(resumed.w750_acceleration) and math.isfinite(resumed.w750_instability)


def test_live_bars_get_missing_closes_repaired_from_rest(tmp_path: Path,
                                                         market: tuple[np.ndarray, np.ndarray]) -> None:
    ts, closes = market
    history = FakeHistory(ts, closes)
    scanner, stats = make_scanner(tmp_path, history, RecordingPublisher())
    asyncio.run(scanner.backfill(BackfillPlan(int(ts[0]), int(ts[799]), None, True, BAR)))
    asyncio.run(scanner.handle_bar(bar(ts, closes, 800, drop=(2, 5))))
    assert history.repairs == [(int(ts[800]), [2, 5])]
    assert stats.repaired == 2 and stats.missing_closes == 0
    assert read_scan(list_scan_files(archive_dir(tmp_path))[-1].path).prices == tuple(closes[800].tolist())


def test_trade_bars_carry_the_previous_close_forward(tmp_path: Path, market: tuple[np.ndarray, np.ndarray]) -> None:
    ts, closes = market
    history = FakeHistory(ts, closes, carry_forward=True)
    scanner, stats = make_scanner(tmp_path, history, RecordingPublisher())
    asyncio.run(scanner.backfill(BackfillPlan(int(ts[0]), int(ts[799]), None, True, BAR)))
    asyncio.run(scanner.handle_bar(bar(ts, closes, 800, drop=(3,))))   # no trade for symbol 3 in this bucket
    assert history.repairs == []
    prices = read_scan(list_scan_files(archive_dir(tmp_path))[-1].path).prices
    assert prices[3] == closes[799, 3] and prices[0] == closes[800, 0]
    assert stats.missing_closes == 0


def test_a_market_behind_the_archive_produces_no_scan_until_it_passes_it(
        tmp_path: Path, market: tuple[np.ndarray, np.ndarray]) -> None:
    ts, closes = market
    scanner, _ = make_scanner(tmp_path, FakeHistory(ts, closes))
    asyncio.run(scanner.backfill(BackfillPlan(int(ts[0]), int(ts[1_000]), None, True, BAR)))
    highest = scanner.next_number - 1
    again, stats = make_scanner(tmp_path, FakeHistory(ts, closes), RecordingPublisher())
    plan = plan_backfill(int(ts[990]) + BAR, BAR, inspect_archive(tmp_path))   # the market restarted earlier
    asyncio.run(again.backfill(plan))

    async def live() -> None:
        for k in range(991, 1_004):
            await again.handle_bar(bar(ts, closes, k))

    asyncio.run(live())
    assert stats.scans == 3 and again.next_number == highest + 4
    numbers, times = numbers_and_times(tmp_path)
    assert numbers == list(range(1, highest + 4)) and (np.diff(times) == BAR).all()


def test_an_unreadable_last_file_is_quarantined_and_the_archive_resumes_from_the_last_valid_scan(
        tmp_path: Path, market: tuple[np.ndarray, np.ndarray]) -> None:
    ts, closes = market
    scanner, _ = make_scanner(tmp_path, FakeHistory(ts, closes))
    asyncio.run(scanner.backfill(BackfillPlan(int(ts[0]), int(ts[760]), None, True, BAR)))
    files = list_scan_files(archive_dir(tmp_path))
    last = files[-1]
    Path(last.path).write_bytes(b"torn")
    state = inspect_archive(tmp_path)
    assert state.highest == files[-2].scan_number and state.last_open_ms == int(ts[759])
    assert not Path(last.path).exists()
    assert (tmp_path / "arrow_scans_quarantine" / last.day / Path(last.path).name).read_bytes() == b"torn"


def test_a_foreign_file_named_far_ahead_cannot_renumber_the_archive(tmp_path: Path,
                                                                    market: tuple[np.ndarray, np.ndarray]) -> None:
    """A 4 KB non-Arrow file named scan_009999_000000.arrow made the scanner resume at 10000 (issue 12 §3)."""
    ts, closes = market
    scanner, _ = make_scanner(tmp_path, FakeHistory(ts, closes))
    asyncio.run(scanner.backfill(BackfillPlan(int(ts[0]), int(ts[760]), None, True, BAR)))
    real = list_scan_files(archive_dir(tmp_path))
    day_dir = Path(real[-1].path).parent
    (day_dir / "scan_009999_000000.arrow").write_bytes(b"\0" * 4096)
    (day_dir / "scan_000005_000000.arrow").write_bytes(b"\1" * 4096)        # a corrupt duplicate of scan 5
    state = inspect_archive(tmp_path)
    assert state.highest == real[-1].scan_number and state.last_open_ms == int(ts[760])
    assert not (day_dir / "scan_009999_000000.arrow").exists()
    from dolphin.store.scan_archive import read_archive
    read = read_archive(tmp_path, skip_corrupt=True)            # the good scan 5 is kept, not the corrupt one
    assert read.paths.count(next(f.path for f in real if f.scan_number == 5)) == 1


# ------------------------------------------------------------------ publishing

class FlakyBus:
    def __init__(self, failures: int = 0, hang: bool = False) -> None:
        self.failures = failures
        self.hang = hang
        self.values: list[Any] = []

    async def put(self, map_name: str, key: str, payload: Any) -> None:
        if self.hang:
            await asyncio.sleep(3600)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("member away")
        self.values.append(payload)


def _records(tmp_path: Path, market: tuple[np.ndarray, np.ndarray], count: int) -> list[Any]:
    ts, closes = market
    publisher = RecordingPublisher()
    scanner, _ = make_scanner(tmp_path, FakeHistory(ts, closes), publisher)
    asyncio.run(scanner.backfill(BackfillPlan(int(ts[0]), int(ts[751]), None, True, BAR)))

    async def live() -> None:
        for k in range(752, 752 + count):
            await scanner.handle_bar(bar(ts, closes, k))

    asyncio.run(live())
    return publisher.records


def test_publisher_writes_every_scan_in_order_and_survives_an_outage(
        tmp_path: Path, market: tuple[np.ndarray, np.ndarray], caplog: pytest.LogCaptureFixture) -> None:
    records = _records(tmp_path, market, 6)
    bus = FlakyBus()

    async def run() -> ScanPublisher:
        pub = ScanPublisher(lambda: bus, LOG, timeout_s=0.2)
        task = asyncio.create_task(pub.run())
        sent = [pub.submit(r) for r in records[:2]]
        assert await pub.wait_idle(60)
        bus.failures = 2
        sent.append(pub.submit(records[2]))    # fails: counted, logged once
        assert await pub.wait_idle(60)
        assert pub.failing
        sent.append(pub.submit(records[3]))    # fails again: only counted
        assert await pub.wait_idle(60)
        sent.append(pub.submit(records[4]))    # the bus is back: the latest goes through
        assert await pub.wait_idle(60)
        assert not pub.failing
        bus.hang = True
        sent.append(pub.submit(records[5]))    # a put that never answers is bounded by the timeout
        assert await pub.wait_idle(60)
        assert [f.result() for f in sent] == [True, True, False, False, True, False]
        task.cancel()
        return pub

    with caplog.at_level(logging.INFO, logger=LOG.name):
        pub = asyncio.run(run())
    assert [p.scan_number for p in bus.values] == [records[i].scan_number for i in (0, 1, 4)]
    assert pub.published == 3 and pub.failures == 3
    assert caplog.text.count("bus write of scan") == 2 and "bus writes work again" in caplog.text
    assert all(p.bridge_ts is not None for p in bus.values)


def test_publisher_without_a_bus_counts_and_keeps_going(tmp_path: Path,
                                                        market: tuple[np.ndarray, np.ndarray]) -> None:
    records = _records(tmp_path, market, 3)

    async def run() -> ScanPublisher:
        pub = ScanPublisher(lambda: None, LOG, timeout_s=0.2)
        task = asyncio.create_task(pub.run())
        sent = [pub.submit(r) for r in records]
        assert await pub.wait_idle(60)
        assert all(f.done() and f.result() is False for f in sent)   # failed or dropped, never left pending
        task.cancel()
        return pub

    pub = asyncio.run(run())
    assert pub.failures >= 1 and pub.published == 0


# ------------------------------------------------------------------ precision

def test_arb512_path_makes_the_same_threshold_decisions_as_float64(market: tuple[np.ndarray, np.ndarray]) -> None:
    _, closes = market
    f64, arb = ScanEngine(N, "float64"), ScanEngine(N, "arb512")
    f64.warm(closes[:760])
    arb.warm(closes[:760])
    for k in range(760, 790):
        a, b = f64.update(closes[k]), arb.update(closes[k])
        assert (a.vel_div < -0.02) == (b.vel_div < -0.02) and (a.vel_div > 0.01) == (b.vel_div > 0.01)
        assert abs(a.vel_div - b.vel_div) < 1e-12
        assert np.allclose(a.lambda_max, b.lambda_max, rtol=1e-12, atol=0)
        assert np.all(np.isfinite(b.acceleration))  # defined from the first scan after the warm-up
        assert np.allclose(a.acceleration, b.acceleration, rtol=0, atol=1e-12)
        assert np.array_equal(a.instability, b.instability)  # no eigenvector in 512 bits: float64's
    assert arb.eligibility_mismatches == 0 and arb.last_compute_s > 0
    with pytest.raises(ValueError):
        ScanEngine(N, "float32")
