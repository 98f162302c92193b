"""The `mcfw` daemon: an MC-Forewarner assessment at start and every `interval_h` (bible §28.6), on the bus.

Each cycle:

1. reads the day's ACB state from the bus (``DOLPHIN_FEATURES["acb_boost"]``: boost and
   beta; 1.0 / 0.0 before any was read — the engine's own defaults without an ACB; a
   value the codec rejects, an absent key or a bus hiccup later keeps the last good one);
2. loads the recent history (`assess.load_history`) and runs the Monte-Carlo of the
   engine on a worker thread (numba threads over the paths), so the heartbeat keeps
   beating; a stop request is honoured between batches of paths;
3. writes the report to ``<home>/mcfw/latest.json`` (atomically: a kill -9 leaves the
   previous report whole) and puts it on ``DOLPHIN_FEATURES["mc_forewarner_latest"]``,
   where the trader applies it at its next step (§12). The report carries the recent
   probabilities (the newer of the bus value's and this daemon's, then its own), so an
   on-demand `dolphin mc run` joins the same history.

Too little history publishes FALLBACK_NO_DATA; a failure (an unreadable archive, a
bug) publishes FALLBACK_ERROR with the reason — both ORANGE 0.20 / 0.80, §28.6's
conservative posture, never a random number — and the loop goes on. A restarted daemon
assesses at once (a kill -9 mid-run loses only that run) and continues the probability
history from its last report.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dolphin.backtest.montecarlo import McAssessment, McCancelled, McSettings, fallback, set_threads
from dolphin.bus import schema
from dolphin.bus.payloads import McForewarner
from dolphin.config.loader import load_config
from dolphin.config.services import ServicesConfig, load_services_config
from dolphin.engine.params import StrategyConfig
from dolphin.enums import McSource
from dolphin.errors import DolphinError
from dolphin.services.mcfw.assess import (
    ArchiveCache,
    History,
    assess,
    load_history,
    read_report,
    report_path,
    save_report,
    settings_from,
    to_payload,
)
from dolphin.services.runtime import ServiceContext

log = logging.getLogger("dolphin.mcfw")

PUBLISH_RETRY_S = 5.0
REASON_MAX = 300


def last_own_report(path: Path) -> McForewarner | None:
    """This daemon's last report file (None when absent or unreadable: its history starts afresh)."""
    try:
        return read_report(path)
    except (OSError, DolphinError) as exc:
        log.warning("%s unreadable (%s): the probability history starts afresh", path, exc)
        return None


def acb_state(payload: Any) -> tuple[float, float]:
    """(boost, beta) of an `acb_boost` payload; the engine's defaults without one."""
    if payload is None:
        return 1.0, 0.0
    boost, beta = float(payload.boost), float(payload.beta)
    if not (math.isfinite(boost) and boost > 0 and math.isfinite(beta) and beta >= 0):
        return 1.0, 0.0
    return boost, beta


@dataclass
class Forewarner:
    """One daemon's state: its settings, the strategy it assesses, its last report."""

    home: Path
    scfg: ServicesConfig
    cfg: StrategyConfig
    settings: McSettings
    last: McForewarner | None = None
    runs: int = 0
    failures: int = 0
    acb: tuple[float, float] | None = None   # the last good (boost, beta) read from the bus
    archive: ArchiveCache = field(default_factory=ArchiveCache)

    @classmethod
    def from_config(cls, home: Path, scfg: ServicesConfig) -> Forewarner:
        fw = cls(home, scfg, load_config(scfg.trader.strategy), settings_from(scfg.mcfw))
        fw.last = last_own_report(report_path(home))
        return fw

    def compute(self, boost: float, beta: float, *, progress: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> McAssessment:
        """One assessment (blocking: run it on a worker thread). Raises McCancelled on a stop request."""
        set_threads(self.scfg.mcfw.threads)   # numba's thread count is per calling thread
        context = {"base_boost": boost, "beta": beta, "max_leverage": self.cfg.champion.max_leverage * boost}
        try:
            history: History = load_history(self.home, self.scfg.mcfw, self.settings.history_days,
                                            cache=self.archive)
        except DolphinError as exc:
            log.error("history unreadable: %s", exc)
            return fallback(McSource.FALLBACK_ERROR, str(exc)[:REASON_MAX], self.settings, **context)
        try:
            return assess(history, self.cfg, self.settings, boost=boost, beta=beta, progress=progress,
                          should_stop=should_stop)
        except McCancelled:
            raise
        except Exception as exc:   # a bug must not silence the forewarner: say so, conservatively
            log.exception("assessment failed")
            return fallback(McSource.FALLBACK_ERROR, f"{type(exc).__name__}: {exc}"[:REASON_MAX], self.settings,
                            **context)

    def report(self, assessment: McAssessment, *, timestamp_s: float, compute_s: float,
               on_bus: McForewarner | None) -> McForewarner:
        """The payload; its probability history continues the newer of the bus value and this daemon's last."""
        self.runs += 1
        if assessment.source is not McSource.MONTE_CARLO:
            self.failures += 1
        previous = self.last
        if on_bus is not None and (previous is None or on_bus.timestamp_s() >= previous.timestamp_s()):
            previous = on_bus
        self.last = to_payload(assessment, timestamp_s=timestamp_s, compute_s=compute_s, previous=previous)
        return self.last

    def save(self, payload: McForewarner) -> None:
        save_report(report_path(self.home), payload)


async def _read_acb(ctx: ServiceContext, fw: Forewarner) -> tuple[float, float]:
    """The ACB state to assess at: the bus's, else the last good one read, else the engine's defaults.

    The codec has already counted and logged a rejected value (it reads as None), so a
    NaN boost or a garbled payload costs nothing but a line here: the last good state
    stays in force, as everywhere a bad bus value arrives.
    """
    try:
        payload = await ctx.bus.get(schema.FEATURES, schema.ACB_BOOST)
    except Exception as exc:   # a bus hiccup
        payload = None
        log.warning("acb_boost not readable (%s)", exc)
    if payload is not None:
        fw.acb = acb_state(payload)
        return fw.acb
    if fw.acb is not None:
        log.info("no valid acb_boost on the bus: assessing at the last good boost %.3f, beta %.3f", *fw.acb)
        return fw.acb
    return acb_state(None)


async def _publish(ctx: ServiceContext, payload: McForewarner) -> bool:
    """Put the report on the bus, retrying until it is there or the service stops."""
    while not ctx.stop.is_set():
        try:
            await ctx.bus.put(schema.FEATURES, schema.MC_FOREWARNER_LATEST, payload)
            return True
        except Exception as exc:
            log.warning("report not published (%s); retrying in %.0f s", exc, PUBLISH_RETRY_S)
            await ctx.sleep(PUBLISH_RETRY_S)
    return False


async def run_cycle(ctx: ServiceContext, fw: Forewarner) -> McForewarner | None:
    """Assess, save and publish once; None when a stop request interrupted it."""
    boost, beta = await _read_acb(ctx, fw)
    t0 = time.monotonic()

    def progress(done: int, total: int) -> None:
        ctx.phase = f"assessing {done}/{total} paths"

    ctx.phase = "assessing"
    try:
        assessment = await asyncio.to_thread(fw.compute, boost, beta, progress=progress,
                                              should_stop=ctx.stop.is_set)
    except McCancelled as exc:
        log.info("assessment %s", exc)
        return None
    try:
        on_bus = await ctx.bus.get(schema.FEATURES, schema.MC_FOREWARNER_LATEST)
    except Exception:
        on_bus = None
    payload = fw.report(assessment, timestamp_s=time.time(), compute_s=time.monotonic() - t0, on_bus=on_bus)
    try:
        await asyncio.to_thread(fw.save, payload)
    except OSError as exc:   # the bus still gets the report
        log.error("cannot write %s (%s)", report_path(fw.home), exc.strerror or exc)
    published = await _publish(ctx, payload)
    extra = f" ({payload.reason})" if payload.reason else ""
    log.info("%s %s: catastrophic_prob %.3f, envelope %.3f, %d paths × %g d, boost %.3f, %.1f s%s%s",
             payload.status, payload.source, payload.catastrophic_prob, payload.envelope_score, payload.paths or 0,
             payload.horizon_days or 0.0, boost, payload.compute_s or 0.0, extra, "" if published else " (not published)")
    ctx.phase = "running"
    return payload


async def run_mcfw(ctx: ServiceContext, scfg: ServicesConfig | None = None) -> None:
    """The service body: connect, then assess at once and every `mcfw.interval_h`."""
    scfg = scfg if scfg is not None else load_services_config()
    fw = Forewarner.from_config(ctx.home, scfg)
    interval_s = scfg.mcfw.interval_h * 3600.0
    if await ctx.connect_bus() is None:
        return
    ctx.phase = "running"
    while not ctx.stop.is_set():
        started = time.monotonic()
        if await run_cycle(ctx, fw) is None:
            return
        await ctx.sleep(max(0.0, interval_s - (time.monotonic() - started)))
