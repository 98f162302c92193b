"""The ACB loop: take the writer lock, then evaluate and write `acb_boost` while holding it.

One writer at a time (§15.5): each instance waits on the CP FencedLock
``DOLPHIN_ACB_WRITER``; the one that holds it checks its inputs every `check_s`, writes
at once when a trigger re-evaluated the verdict, and rewrites the standing verdict every
`republish_s` (its ``_pushed_at`` is the processor's freshness for MHS and the TUI).
Before every write it asks the member whether it still holds the lock; if not (its CP
session was lost) it stops writing and queues for the lock again. Every write carries
the holder's fence and name, so the history of `acb_boost` shows who wrote what.

Inputs are read from the bus each cycle: a value the codec rejects (NaN, a bad schema)
is counted and logged by the codec, and the last good one is kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from dolphin.bus import schema, subscribe_async
from dolphin.bus.writer_lock import AsyncWriterLock
from dolphin.config import load_config
from dolphin.config.services import AcbSection, load_services_config
from dolphin.services.acb.processor import AcbProcessor, W750History
from dolphin.services.runtime import ServiceContext

log = logging.getLogger("dolphin.acb")


def load_w750_history(home: Path, history: W750History) -> int:
    """The archived scans' w750 velocities (the last two archive days), oldest first; how many were read."""
    from dolphin.store.scan_archive import load_arrow_scans, resolve_archive

    root = resolve_archive(home / "arrow_scans")
    if not root.is_dir():
        return 0
    days = sorted(p.name for p in root.iterdir() if p.is_dir() and len(p.name) == 10 and p.name[4] == "-")
    if not days:
        return 0
    try:
        table = load_arrow_scans(root, date_from=days[-2] if len(days) > 1 else days[-1], skip_corrupt=True)
    except Exception as exc:
        log.warning("scan archive %s unreadable (%s): beta waits for live scans", root, exc)
        return 0
    before = len(history)
    history.extend(table.scan_number, table.ts, table.v750_lambda_max_velocity)
    return len(history) - before


class AcbService:
    """Inputs in, lock held, writes out."""

    def __init__(self, ctx: ServiceContext, processor: AcbProcessor, settings: AcbSection) -> None:
        self.ctx = ctx
        self.processor = processor
        self.settings = settings
        self.exf: Any = None
        self.macro: Any = None
        self.writes = 0
        self.write_failures = 0
        self._last_write = 0.0

    async def read_inputs(self) -> None:
        """Latest ExF and OB macro; a rejected or vanished value keeps the last good one."""
        bus = self.ctx.bus
        try:
            exf = await bus.get(schema.FEATURES, schema.EXF_LATEST)
            macro = await bus.get(schema.FEATURES, schema.OB_MACRO_LATEST)
        except Exception as exc:   # the bus may be away; the standing verdict stays
            log.debug("inputs not readable: %s", exc)
            return
        self.exf = exf if exf is not None else self.exf
        self.macro = macro if macro is not None else self.macro

    async def write(self, lock: AsyncWriterLock, now: float) -> bool:
        """One guarded write of the standing verdict; False when the lock is gone (stop writing)."""
        fence = await lock.verify()
        if fence is None:
            return False
        try:
            await self.ctx.bus.put(schema.FEATURES, schema.ACB_BOOST, self.processor.stamped(now, fence))
        except Exception as exc:
            self.write_failures += 1
            log.warning("acb_boost not written (%s); next cycle retries", exc)
            return True
        self.writes += 1
        self._last_write = now
        return True

    async def hold_and_write(self, lock: AsyncWriterLock) -> None:
        """While this instance holds the lock: evaluate, write on change and every `republish_s`."""
        ctx, p = self.ctx, self.processor
        while not ctx.stop.is_set():
            await self.read_inputs()
            now = time.time()
            trigger = p.step(now, self.exf, self.macro)
            if trigger is not None:
                v = p.payload
                assert v is not None
                log.info("verdict (%s): boost %.3f beta %.2f signals %.1f%s%s", trigger, v.boost, v.beta,
                         v.signals or 0.0, f", stale {','.join(v.stale_factors)}" if v.stale_factors else "",
                         ", OB stress" if v.ob_stress else "")
            if trigger is not None or now - self._last_write >= self.settings.republish_s:
                if not await self.write(lock, now):
                    return
            if await ctx.sleep(self.settings.check_s):
                return

    async def run(self) -> None:
        ctx = self.ctx
        lock = AsyncWriterLock(ctx.client)
        waiting_said = False
        while not ctx.stop.is_set():
            fence = await lock.acquire(self.settings.lock_wait_s)
            if fence is None:
                ctx.phase = "standby"
                if not waiting_said:
                    log.info("another ACB writer holds %s (or CP is not answering): waiting for it",
                             schema.ACB_WRITER_LOCK)
                    waiting_said = True
                if lock.cp.degraded and await ctx.sleep(1.0):
                    return
                continue
            waiting_said = False
            ctx.phase = "writing"
            log.info("holding %s (fence %d): writing %s[%s] as %s", schema.ACB_WRITER_LOCK, fence, schema.FEATURES,
                     schema.ACB_BOOST, self.processor.writer)
            try:
                await self.hold_and_write(lock)
            finally:
                await lock.release()


async def run(ctx: ServiceContext) -> None:
    scfg = load_services_config()
    params = load_config(scfg.trader.strategy).acb     # the ACB the family's trader runs
    processor = AcbProcessor(params, writer=f"{socket.gethostname()}:{os.getpid()}",
                             ob_macro_stale_s=scfg.acb.ob_macro_stale_s)
    loaded = await asyncio.to_thread(load_w750_history, ctx.home, processor.history)
    ctx.log.info("w750 history: %d archived scan(s) (up to scan %d)", loaded, processor.history.last_scan)
    if await ctx.connect_bus() is None:
        return
    await subscribe_async(ctx.client, schema.FEATURES, processor.history, key=schema.LATEST_EIGEN_SCAN,
                          kinds=frozenset({"ADDED", "UPDATED"}), source="acb")
    await AcbService(ctx, processor, scfg.acb).run()
