"""The parity daemon: every `parity.interval_s`, strategy health, then the session's replays against its journal.

Each cycle (a thread, off the event loop):

1. strategy health — the journal's closed trades against the registered baseline
   (`dolphin.execution.strategy_guard.assess`, acting: a new disabled state pauses entries
   through the kill switch) → ``DOLPHIN_FEATURES["strategy_health_latest"]``;
2. parity — the scan archive (read incrementally) and the journal replayed three ways and
   compared trade by trade (`dolphin.backtest.parity_run`) → ``DOLPHIN_FEATURES["parity_latest"]``
   and ``<home>/parity_report.json``. An unchanged journal and archive reuse the last
   comparison (re-stamped), so an idle family costs a stat per cycle.

Health runs first and on its own: a replay that cannot run (no archive yet, a journal
written by another config) never stops the disable check. Failures become reports with
an error (logged once per distinct cause); the loop goes on. Strategy health lives here,
not in MHS, because it is a verdict on the trader's books — which this daemon reads every
cycle anyway — while MHS watches processes and data freshness every 10 s and must stay
light and independent of the trading books.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import msgspec

from dolphin.backtest.parity import MAX_DIFFS, MAX_GAPS, Tolerances, failed_report
from dolphin.backtest.parity_run import ArchiveCache, parity_report
from dolphin.bus import schema
from dolphin.bus.payloads import ParityReport, StrategyHealthReport
from dolphin.config import load_config
from dolphin.config.services import ParitySection, load_services_config
from dolphin.engine.params import StrategyConfig
from dolphin.enums import HealthState, ParityStatus
from dolphin.errors import DolphinError
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.strategy_guard import StrategyGuard, assess, journal_path
from dolphin.services.runtime import ServiceContext
from dolphin.store.atomic import atomic_write_bytes

log = logging.getLogger("dolphin.parity")

REPORT_FILE = "parity_report.json"


class ParityMonitor:
    """One cycle of health and parity for one strategy's books (no bus: the service publishes)."""

    def __init__(self, home: Path, cfg: StrategyConfig, settings: ParitySection, kill_switch: KillSwitch | None) -> None:
        self.home = home
        self.cfg = cfg
        self.settings = settings
        self.tol = Tolerances(price_bps=settings.max_price_drift_bps, fee_bps=settings.max_fee_drift_bps)
        self.archive = ArchiveCache(home)
        self.guard = StrategyGuard(home, cfg.name, kill_switch)
        self.journal = journal_path(home, cfg.name)
        self.report_path = home / REPORT_FILE
        self._inputs: tuple[object, ...] | None = None
        self._last: ParityReport | None = None
        self._logged: dict[str, str] = {}
        self.cycles = 0
        self.replays = 0

    def _once(self, what: str, message: str) -> None:
        """Log a failure once per distinct message (a broken archive must not flood the log every minute)."""
        if self._logged.get(what) != message:
            self._logged[what] = message
            log.error("%s: %s", what, message)

    def health(self, now: float) -> StrategyHealthReport:
        try:
            report = assess(self.home, self.cfg, self.guard, act=True, now=now, interval_s=self.settings.interval_s)
            self._logged.pop("strategy health", None)
            return report
        except (DolphinError, OSError) as exc:
            self._once("strategy health", str(exc))
            return StrategyHealthReport(strategy=self.cfg.name, state=HealthState.PROBATION, timestamp=now,
                                        error=str(exc), interval_s=self.settings.interval_s)

    def _journal_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.journal)
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def parity(self, now: float) -> ParityReport:
        interval = self.settings.interval_s
        try:
            table = self.archive.table()
        except (DolphinError, OSError) as exc:
            self._once("scan archive", str(exc))
            status = ParityStatus.NO_SESSION if self._journal_stamp() is None else ParityStatus.ERROR
            return failed_report(self.cfg.name, status, f"scan archive: {exc}", now=now, journal=str(self.journal),
                                 interval_s=interval)
        inputs = (self._journal_stamp(), table.rows, int(table.scan_number[-1]))
        if inputs == self._inputs and self._last is not None:
            return msgspec.structs.replace(self._last, timestamp=now)
        report = parity_report(table, self.cfg, self.journal, tol=self.tol, now=now, max_diffs=MAX_DIFFS,
                               max_gaps=MAX_GAPS, interval_s=interval)
        self.replays += 1
        if report.error:
            self._once("parity", report.error)
        else:
            self._logged.pop("parity", None)
        self._inputs, self._last = inputs, report
        return report

    def cycle(self, now: float | None = None) -> tuple[StrategyHealthReport, ParityReport]:
        stamp = time.time() if now is None else now
        health = self.health(stamp)
        report = self.parity(stamp)
        self.cycles += 1
        try:
            atomic_write_bytes(self.report_path, msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")
        except OSError as exc:
            self._once("report file", f"cannot write {self.report_path}: {exc.strerror or exc}")
        return health, report


def _summary(health: StrategyHealthReport, report: ParityReport) -> str:
    cov = "—" if report.scan_coverage is None else f"{report.scan_coverage * 100:.1f} %"
    sig = "—" if report.signal_coverage is None else f"{report.signal_coverage * 100:.1f} %"
    return (f"parity {report.status}: scans {cov}, signals {sig}, missed {report.missed}, extra {report.extra}, "
            f"unexplained {report.unexplained}, pnl diff {report.pnl_diff:+.2f}; health {health.state} "
            f"({health.trades} trades)")


async def run(ctx: ServiceContext) -> None:
    scfg = load_services_config()
    cfg = load_config(scfg.trader.strategy)
    monitor = ParityMonitor(ctx.home, cfg, scfg.parity, KillSwitch.under(ctx.home, scfg.trader.kill_switch))
    bus = await ctx.connect_bus()
    if bus is None:
        return
    ctx.phase = "running"
    last_summary = ""
    while not ctx.stop.is_set():
        health, report = await asyncio.to_thread(monitor.cycle)
        for key, payload in ((schema.STRATEGY_HEALTH_LATEST, health), (schema.PARITY_LATEST, report)):
            try:
                await bus.put(schema.FEATURES, key, payload)
            except Exception as exc:  # the bus being away must not stop the checks (the file still has the report)
                ctx.log.warning("could not publish %s: %s", key, exc)
        summary = _summary(health, report)
        if summary != last_summary:   # a line when something changed, not one a minute
            ctx.log.info("%s", summary)
            last_summary = summary
        await ctx.sleep(scfg.parity.interval_s)
