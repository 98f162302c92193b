"""Strategy health's memory and its one action: a disabled strategy stays disabled and pauses entries.

`dolphin.backtest.strategy_health` says what the metrics say *now*; the KB's disabled state
is sticky ("a one-day metric recovery does not auto-enable a troubled strategy"), so the
state lives in ``<home>/strategy_health/<strategy>.json`` (atomic, 0600) and survives any
restart. On the transition to disabled the guard writes the state first, then engages the
kill switch at pause (`KillSwitch.engage(KillLevel.PAUSE, by="strategy health")`) — never
lowering a stricter level an operator set — then records that it did; a crash in between
engages it on the next evaluation. Only `reset` (`dolphin health strategy --reset`) leaves
disabled: it starts a new probation on the trades closed after it. The kill switch is the
operator's to clear (`dolphin kill clear`).

`assess` is what the parity daemon runs every cycle (and `dolphin health strategy` runs
read-only): journal + baseline + sticky state → a `StrategyHealthReport`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from dolphin.backtest.strategy_health import Baseline, Verdict, evaluate, live_metrics
from dolphin.bus.payloads import HealthGauge, StrategyHealthReport
from dolphin.config.champion import champion_hash
from dolphin.engine.params import StrategyConfig
from dolphin.engine.trades import ClosedTrade
from dolphin.enums import HealthState, KillLevel
from dolphin.errors import DataError
from dolphin.execution.kill_switch import KillSwitch
from dolphin.store.atomic import atomic_write_bytes
from dolphin.store.baselines import load_baseline
from dolphin.store.journal import JournalCorrupt, read_books

log = logging.getLogger("dolphin.health")

STATE_DIR = "strategy_health"
ENGAGED_BY = "strategy health"


class GuardState(msgspec.Struct, frozen=True, kw_only=True):
    """What must survive a restart: the state, when and why it was disabled, the last reset."""

    strategy: str
    state: HealthState = HealthState.PROBATION
    disabled_at: float | None = None
    disabled_reason: str = ""
    kill_engaged: bool = False
    reset_after_trade: int | None = None     # evaluate only trades with a higher id (a reset's new probation)
    reset_at_ms: int | None = None           # market time of the reset
    reset_by: str = ""
    updated_at: float = 0.0


_DECODER = msgspec.json.Decoder(GuardState)


class StrategyGuard:
    def __init__(self, home: Path, strategy: str, kill_switch: KillSwitch | None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = home / STATE_DIR / f"{strategy}.json"
        self.strategy = strategy
        self.kill_switch = kill_switch
        self.clock = clock

    def load(self) -> GuardState:
        """The persisted state (a fresh one when none); DataError when the file is not a state."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return GuardState(strategy=self.strategy)
        try:
            return _DECODER.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DataError(f"{self.path}: not a strategy health state ({exc})") from None

    def _save(self, state: GuardState) -> GuardState:
        atomic_write_bytes(self.path, msgspec.json.format(msgspec.json.encode(state), indent=2) + b"\n")
        return state

    def preview(self, verdict: Verdict) -> GuardState:
        """What `apply` would persist, without writing or acting (the CLI's read-only view)."""
        prev = self.load()
        if prev.state is HealthState.DISABLED:
            return prev
        if verdict.state is HealthState.DISABLED:
            return msgspec.structs.replace(prev, state=HealthState.DISABLED, disabled_at=self.clock(),
                                           disabled_reason="; ".join(verdict.reasons))
        return msgspec.structs.replace(prev, state=verdict.state)

    def apply(self, verdict: Verdict) -> GuardState:
        """Persist the new state; disabled is sticky and engages the kill switch (once, crash-safe)."""
        prev = self.load()
        now = self.clock()
        if prev.state is HealthState.DISABLED:
            state = prev
        elif verdict.state is HealthState.DISABLED:
            state = self._save(msgspec.structs.replace(prev, state=HealthState.DISABLED, disabled_at=now,
                                                       disabled_reason="; ".join(verdict.reasons), kill_engaged=False,
                                                       updated_at=now))
            log.critical("strategy %s DISABLED: %s — pausing entries through the kill switch", self.strategy,
                         state.disabled_reason)
        else:
            if verdict.state is not prev.state:
                log.warning("strategy %s health %s → %s%s", self.strategy, prev.state, verdict.state,
                            f" ({'; '.join(verdict.reasons)})" if verdict.reasons else "")
                return self._save(msgspec.structs.replace(prev, state=verdict.state, updated_at=now))
            return prev
        if not state.kill_engaged:
            self._engage(state.disabled_reason)
            state = self._save(msgspec.structs.replace(state, kill_engaged=True, updated_at=now))
        return state

    def _engage(self, reason: str) -> None:
        """Pause entries, unless the switch is already at pause or stricter (never lower an operator's level)."""
        if self.kill_switch is None:
            return
        current = self.kill_switch.state()
        if current.level.rank >= KillLevel.PAUSE.rank:
            log.warning("kill switch already at %s (by %s): left as it is", current.level, current.by or "?")
            return
        self.kill_switch.engage(KillLevel.PAUSE, reason=f"strategy disabled: {reason}", by=ENGAGED_BY)

    def reset(self, *, last_trade_id: int | None, at_ms: int | None, by: str) -> GuardState:
        """Leave disabled (or any state): a new probation on the trades closed from now on."""
        now = self.clock()
        state = GuardState(strategy=self.strategy, state=HealthState.PROBATION, reset_after_trade=last_trade_id,
                           reset_at_ms=at_ms, reset_by=by, updated_at=now)
        log.warning("strategy %s health reset by %s: a new probation after trade %s", self.strategy, by,
                    last_trade_id)
        return self._save(state)


def _gauges(verdict: Verdict) -> list[HealthGauge]:
    return [HealthGauge(metric=g.metric, live=g.live, baseline=g.baseline, ratio=g.ratio, level=g.level)
            for g in verdict.gauges]


def journal_path(home: Path, strategy: str) -> Path:
    """The trader's journal of a strategy (the trader service's layout)."""
    return home / "journal" / f"{strategy}.jsonl"


def assess(home: Path, cfg: StrategyConfig, guard: StrategyGuard, *, act: bool, now: float | None = None,
           interval_s: float | None = None) -> StrategyHealthReport:
    """Evaluate the strategy's live trades against its baseline; with `act`, persist and apply the state."""
    stamp = time.time() if now is None else now
    baseline: Baseline | None = load_baseline(home, cfg.name)
    state = guard.load()
    path = journal_path(home, cfg.name)
    trades: list[ClosedTrade] = []
    start_ms = end_ms = None
    if path.is_file():
        try:
            books = read_books(path)
        except JournalCorrupt as exc:
            raise DataError(str(exc)) from None
        trades = [t for t in books.trades if state.reset_after_trade is None or t.trade_id > state.reset_after_trade]
        start_ms = state.reset_at_ms or books.first_ts_ms
        end_ms = books.last_ts_ms
    live = live_metrics(trades, start_ms or 0, end_ms or start_ms or 0)
    verdict = evaluate(live, baseline)
    final = guard.apply(verdict) if act else guard.preview(verdict)
    reasons = list(verdict.reasons)
    if final.state is HealthState.DISABLED and verdict.state is not HealthState.DISABLED:
        reasons.insert(0, f"disabled since {time.strftime('%Y-%m-%d %H:%M', time.gmtime(final.disabled_at or 0))} "
                          f"UTC ({final.disabled_reason}): sticky until `dolphin health strategy --reset`")
    matches = None if baseline is None else baseline.config_hash == champion_hash(cfg.frozen_params())
    if matches is False:
        reasons.append("the baseline was registered from another config: register it again")
    return StrategyHealthReport(
        strategy=cfg.name, state=final.state, timestamp=stamp, evaluated=verdict.state, trades=live.trades,
        reasons=reasons, gauges=_gauges(verdict), expectancy_ratio=verdict.expectancy_ratio,
        sharpe_ratio=verdict.sharpe_ratio, dd_stress=verdict.dd_stress, baseline_registered=baseline is not None,
        baseline_source=baseline.source if baseline else "", baseline_matches_config=matches,
        disabled_at=final.disabled_at, disabled_reason=final.disabled_reason, kill_engaged=final.kill_engaged,
        reset_after_trade=final.reset_after_trade, interval_s=interval_s)


__all__ = ["ENGAGED_BY", "GuardState", "STATE_DIR", "StrategyGuard", "assess", "journal_path"]
