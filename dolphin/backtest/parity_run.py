"""Gather what a parity report compares, from files: the scan archive, the trader's journal, three replays.

`parity_report` is what `dolphin parity` and the parity daemon both call; the comparison
itself is `dolphin.backtest.parity` (pure). The archive is read through `ArchiveCache`,
which keeps the rows it has read and opens only the files added since (the daemon re-reads
every minute; a day of 5 s scans is 17,280 files and opening them is most of the cost).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from dolphin.backtest.parity import ParityRuns, Run, Span, Tolerances, build_report, failed_report
from dolphin.backtest.runner import BacktestResult, run_backtest
from dolphin.backtest.session import SessionInputs, StepFlags
from dolphin.bus.payloads import ParityReport
from dolphin.config.champion import champion_hash
from dolphin.engine.params import StrategyConfig
from dolphin.enums import ParityStatus, Posture
from dolphin.errors import DataError
from dolphin.scan.table import ScanTable
from dolphin.store.arrow_scans import ScanFileError
from dolphin.store.journal import JournalCorrupt, read_books
from dolphin.store.scan_archive import (
    ArchiveRead,
    ScanFile,
    _concat,
    _validate_columns,
    list_scan_files,
    open_checked,
    report_read,
    resolve_archive,
    to_scan_table,
)


def model_session(session: SessionInputs) -> SessionInputs:
    """The session with the engine's own fill and fee model instead of the venue's fills."""
    return dataclasses.replace(session, venue="paper", fills={})


def backtest_session(session: SessionInputs, scans: np.ndarray) -> SessionInputs:
    """The session without its live-only inputs: every archived scan of the span traded, posture APEX,
    no kill switch, no force exit. The market's inputs (ACB, MC-Forewarner, OB) stay as journaled."""
    steps: dict[int, StepFlags] = {}
    for n in scans.tolist():
        live = session.steps.get(n)
        steps[n] = StepFlags(trade=True, acb=live.acb if live else None, posture=Posture.APEX, kill_switch=False,
                             mc=live.mc if live else None)
    return SessionInputs(first_scan=session.first_scan, last_scan=session.last_scan, steps=steps, venue="paper",
                         ob_records=session.ob_records)


def _run(result: BacktestResult) -> Run:
    return Run(result.trades, result.open_position, result.metrics.final_capital)


def gather(table: ScanTable, cfg: StrategyConfig, journal: Path) -> ParityRuns:
    """Read the journal, replay its session three ways over `table` (DataError when there is nothing to compare)."""
    try:
        books = read_books(journal)
    except JournalCorrupt as exc:
        raise DataError(str(exc)) from None
    if books.config_hash is not None and books.config_hash != champion_hash(cfg.frozen_params()):
        raise DataError(f"{journal} was opened with another {cfg.name} config (hash {books.config_hash[:12]}…): "
                        "replaying it with the current one would compare different strategies")
    session = SessionInputs.from_journal(journal)
    in_span = (table.scan_number >= session.first_scan) & (table.scan_number <= session.last_scan)
    scans = table.scan_number[in_span]
    span = Span(scans, table.ts[in_span], session.steps)
    exact: Run | None = None
    exact_error: str | None = None
    try:
        exact = _run(run_backtest(table, cfg, session=session))
    except DataError as exc:
        if not session.venue_truth:   # the model replay is the same run: nothing can be compared
            raise
        exact_error = str(exc)
    model = exact if not session.venue_truth and exact is not None else \
        _run(run_backtest(table, cfg, session=model_session(session)))
    backtest = _run(run_backtest(table, cfg, session=backtest_session(session, scans)))
    stepped = np.fromiter((n for n in session.steps if session.first_scan <= n <= session.last_scan), dtype=np.int64)
    return ParityRuns(
        strategy=cfg.name, journal_path=str(journal), venue=session.venue, venue_truth=session.venue_truth,
        journal=books.trades, journal_open=exact.open_position if exact is not None else None,
        journal_capital=books.capital, exact=exact, exact_error=exact_error, model=model, backtest=backtest,
        span=span, first_scan=session.first_scan, last_scan=session.last_scan,
        behind_scans=int(np.count_nonzero(table.scan_number > session.last_scan)),
        archive_missing=int(np.count_nonzero(~np.isin(stepped, scans))))


def parity_report(table: ScanTable, cfg: StrategyConfig, journal: Path, *, tol: Tolerances, now: float | None = None,
                  since_ms: int | None = None, max_diffs: int | None = None, max_gaps: int | None = None,
                  interval_s: float | None = None) -> ParityReport:
    """The report of one journal over one archive table; a journal with no committed step yet says so."""
    t0 = time.perf_counter()
    stamp = time.time() if now is None else now
    if not journal.is_file():
        return failed_report(cfg.name, ParityStatus.NO_SESSION, f"no trader journal at {journal} yet", now=stamp,
                             journal=str(journal), interval_s=interval_s)
    try:
        runs = gather(table, cfg, journal)
    except DataError as exc:
        status = ParityStatus.NO_SESSION if "no committed live step" in str(exc) else ParityStatus.ERROR
        return failed_report(cfg.name, status, str(exc), now=stamp, journal=str(journal), interval_s=interval_s)
    return build_report(runs, tol=tol, now=stamp, since_ms=since_ms, max_diffs=max_diffs, max_gaps=max_gaps,
                        replay_seconds=time.perf_counter() - t0, interval_s=interval_s)


def _validated(batches: list[pa.RecordBatch], read: list[ScanFile],
               skipped: list[ScanFileError]) -> tuple[pa.Table, list[ScanFile]]:
    """The new rows as one table, without a file whose values are unusable (checked together, then alone)."""
    table = _concat(batches)   # one contiguous chunk (one chunk per file would make every later concat slow)
    try:
        _validate_columns(table, read)
        return table, read
    except ScanFileError:
        pass
    good: list[pa.RecordBatch] = []
    kept: list[ScanFile] = []
    for batch, f in zip(batches, read):
        try:
            _validate_columns(pa.Table.from_batches([batch]), [f])
        except ScanFileError as exc:
            skipped.append(exc)
            continue
        good.append(batch)
        kept.append(f)
    return (_concat(good) if good else table.slice(0, 0)), kept


class ArchiveCache:
    """The archive as a replay table, re-read incrementally: only files numbered after the last one read.

    The archive is append-only (the scanner numbers every bar and never rewrites a file),
    so new rows are the files with a higher scan number; the day directories before the
    last one read are not listed again.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._table: pa.Table | None = None
        self._paths: list[str] = []
        self._last_number = 0
        self._last_day: str | None = None
        self._scan_table: ScanTable | None = None
        self.files_read = 0

    def _new_files(self, archive: Path) -> list[ScanFile]:
        files = list_scan_files(archive, date_from=self._last_day)
        out: list[ScanFile] = []
        for f in files:   # one file per new number (a duplicate number keeps its first file)
            if f.scan_number > self._last_number and (not out or out[-1].scan_number != f.scan_number):
                out.append(f)
        return out

    def table(self) -> ScanTable:
        """The whole archive as of now (DataError when it holds no readable scan)."""
        archive = resolve_archive(self.root)
        fresh = self._new_files(archive)
        if not fresh and self._scan_table is not None:
            return self._scan_table
        batches = []
        read: list[ScanFile] = []
        skipped: list[ScanFileError] = []
        for f in fresh:
            try:
                batches.append(open_checked(f))
            except ScanFileError as exc:   # a file being written, or a foreign one: skipped, as the trader does
                skipped.append(exc)
                continue
            read.append(f)
        if batches:
            added, read = _validated(batches, read, skipped)
        if read:
            self.files_read += len(read)
            self._table = added if self._table is None else pa.concat_tables([self._table, added]).combine_chunks()
            self._paths += [f.path for f in read]
            self._last_number = read[-1].scan_number
            self._last_day = max(read[-1].day, self._last_day or read[-1].day)
        if self._table is None:
            raise DataError(f"{archive}: no readable scan files yet")
        if skipped:
            report_read(ArchiveRead(root=archive, table=self._table, paths=self._paths, skipped=skipped))
        self._scan_table = to_scan_table(ArchiveRead(root=archive, table=self._table, paths=self._paths))
        return self._scan_table


__all__ = ["ArchiveCache", "backtest_session", "gather", "model_session", "parity_report"]
