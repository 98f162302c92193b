"""The closed sets of values DOLPHIN compares, one `@unique` enum per concept.

Each value is the wire string the bible (or the venue, or supervisord) uses, and every
enum is a `StrEnum`, so a member equals its string: payloads, journals, configs and log
lines keep their formats exactly while code compares members instead of spelling strings.
(NautilusTrader's ``model/enums.py`` is the model.)
"""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class Posture(StrEnum):
    """Survival-stack posture (bible §11.5), from most to least permissive."""

    APEX = "APEX"
    STALKER = "STALKER"
    TURTLE = "TURTLE"
    HIBERNATE = "HIBERNATE"

    @property
    def allows_entries(self) -> bool:
        """TURTLE and HIBERNATE stop new entries (§11.7)."""
        return self in (Posture.APEX, Posture.STALKER)


@unique
class PositionSide(StrEnum):
    """Side of an open position (bible §1: the champion is SHORT only)."""

    SHORT = "SHORT"
    LONG = "LONG"

    @classmethod
    def of(cls, direction: int) -> PositionSide:
        """-1 → SHORT, +1 → LONG (the engine's direction sign)."""
        return cls.SHORT if direction < 0 else cls.LONG

    @property
    def sign(self) -> int:
        return -1 if self is PositionSide.SHORT else 1

    @property
    def opening_order(self) -> OrderSide:
        """The order side that opens (and adds to) this position."""
        return OrderSide.SELL if self is PositionSide.SHORT else OrderSide.BUY

    @property
    def closing_order(self) -> OrderSide:
        """The order side that reduces or closes this position."""
        return OrderSide.BUY if self is PositionSide.SHORT else OrderSide.SELL


@unique
class OrderSide(StrEnum):
    """Side of an order on the venue (Binance's spelling)."""

    BUY = "BUY"
    SELL = "SELL"


@unique
class ProcessState(StrEnum):
    """A program's state as supervisord reports it (``statename``)."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"
    UNKNOWN = "UNKNOWN"

    @property
    def is_running(self) -> bool:
        return self is ProcessState.RUNNING

    @property
    def is_stopped(self) -> bool:
        """Not running and not on its way: a start is needed (STOPPED, EXITED, FATAL)."""
        return self in (ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL)

    @classmethod
    def parse(cls, name: str) -> ProcessState:
        """supervisord's state name; a name this supervisord version adds reads as UNKNOWN."""
        try:
            return cls(name)
        except ValueError:
            return cls.UNKNOWN


@unique
class ServiceAction(StrEnum):
    """What an operator (or MHS) can do to one program of the family."""

    START = "start"
    STOP = "stop"
    RESTART = "restart"

    @property
    def past(self) -> str:
        """The verb in the past tense, for one-line results ("restarted scanner …")."""
        return {"start": "started", "stop": "stopped", "restart": "restarted"}[self.value]


@unique
class HealthStatus(StrEnum):
    """MHS verdict on rm_meta (bible §24.5.2)."""

    GREEN = "GREEN"
    WARMING = "WARMING"      # DOLPHIN: a service is still warming up (the scanner's backfill); not a fault
    DEGRADED = "DEGRADED"
    CRITICAL = "CRITICAL"
    DEAD = "DEAD"


@unique
class RecoveryOutcome(StrEnum):
    """How a restart MHS started has ended (bible §24.5.3): still running, done, or failed."""

    PENDING = "pending"
    OK = "ok"
    FAILED = "failed"


@unique
class McStatus(StrEnum):
    """MC-Forewarner status on the bus (bible §28.6)."""

    GREEN = "GREEN"
    ORANGE = "ORANGE"
    RED = "RED"


@unique
class McSource(StrEnum):
    """Where an MC-Forewarner report came from (bible §28.6 `source`).

    DOLPHIN's forewarner is a Monte-Carlo of its own engine (`MONTE_CARLO`); `REAL_MODEL`
    is the bible's pretrained model, kept so a peer deployment's reports read the same.
    """

    MONTE_CARLO = "MONTE_CARLO"
    REAL_MODEL = "REAL_MODEL"
    FALLBACK_NO_DATA = "FALLBACK_NO_DATA"
    FALLBACK_ERROR = "FALLBACK_ERROR"


@unique
class ScanRejection(StrEnum):
    """Why the trader refused a well-formed bus scan (see `dolphin.execution.scan_gate`)."""

    IMPLAUSIBLE = "implausible"            # outside the math's bounds, or no asset of the universe
    BACKWARDS = "backwards"                # a later number with an earlier (or equal) bar time
    JUMP = "jump"                          # numbers and bar times out of lock, or too far ahead
    FUTURE = "future"                      # a bar that has not closed on the market's clock
    ARCHIVE_MISMATCH = "archive_mismatch"  # the archive holds this number with other content


@unique
class ObRegime(StrEnum):
    """The order-book regime of the market (bible §9.2 ``regime_signal``; OB-5 acts on it)."""

    CALM = "CALM"            # regime_signal −1: deep books, nothing withdrawing
    NEUTRAL = "NEUTRAL"      # 0
    STRESS = "STRESS"        # +1: liquidity withdrawal stress or cascades

    @property
    def signal(self) -> float:
        return {"CALM": -1.0, "NEUTRAL": 0.0, "STRESS": 1.0}[self.value]

    @classmethod
    def of_signal(cls, signal: float) -> ObRegime:
        return cls.STRESS if signal > 0.5 else cls.CALM if signal < -0.5 else cls.NEUTRAL


@unique
class WarmupUnit(StrEnum):
    """What a service's warm-up progress counts (`WarmupProgress.unit` on its heartbeat)."""

    BARS = "bars"            # the scanner's start-up backfill: bars of history scanned
    SECONDS = "s"            # OBF's first-publish warm-up (§20.1): wall seconds before the first publish


@unique
class CircuitState(StrEnum):
    """A bus writer's circuit breaker (bible §15.6, §20.1): closed pushes, open falls back to a file."""

    CLOSED = "closed"          # pushing to the bus
    OPEN = "open"              # too many failed pushes: file-only until the back-off has passed
    HALF_OPEN = "half_open"    # one probe push decides: closed again, or open with a longer back-off


@unique
class ObSource(StrEnum):
    """Where the OB features an engine step acted on came from (shown by the trader and the TUI)."""

    BUS = "bus"                  # OBF's shard maps, live
    FALLBACK = "fallback"        # OBF's local file, while its bus pushes fail (§15.6)
    NONE = "none"                # no OB bar for this step: neutral values
    RECORDED = "recorded"        # a backtest on recorded OB history (--ob) or a journal's inputs
    MONTE_CARLO = "monte-carlo"  # no OB data at all: the legacy seeded fill edge (§8.3; synthetic backtests)


@unique
class KillLevel(StrEnum):
    """The operator's kill switch, from least to most restrictive (docs/trader.md, "Kill switch")."""

    CLEAR = "clear"      # trading as usual
    PAUSE = "pause"      # no new entries; open positions are still managed (exits go out)
    REDUCE = "reduce"    # only position-reducing orders (exits); anything that adds exposure is refused
    HALT = "halt"        # no orders at all; open orders are cancelled; positions are left as they are

    @property
    def rank(self) -> int:
        return ("clear", "pause", "reduce", "halt").index(self.value)

    @property
    def blocks_entries(self) -> bool:
        return self is not KillLevel.CLEAR

    @property
    def blocks_exits(self) -> bool:
        return self is KillLevel.HALT

    @property
    def meaning(self) -> str:
        """What the level does, in the operator's words (CLI and TUI say the same)."""
        return _KILL_MEANING[self.value]


_KILL_MEANING = {"clear": "trading as usual", "pause": "no new entries; open positions are still managed",
                 "reduce": "only position-reducing orders (exits)",
                 "halt": "no orders at all; open orders are cancelled, positions left as they are"}


@unique
class SignalState(StrEnum):
    """Where vel_div stands against the strategy's entry gate (bible §4.1); see `engine.signal.classify`."""

    UNDEFINED = "undefined"   # vel_div not finite (warm-up)
    NONE = "none"             # on the wrong side of the gate: the engine does not trade
    SIGNAL = "signal"         # past the gate: the engine may enter
    EXTREME = "extreme"       # past the extreme level: full size

    @property
    def active(self) -> bool:
        return self in (SignalState.SIGNAL, SignalState.EXTREME)


@unique
class ParityCause(StrEnum):
    """Why live trading differs from its replay, one class per difference (docs/parity.md)."""

    COVERAGE_GAP = "coverage_gap"    # the trader never stepped the scan, or stepped it stale/untraded (restarts)
    TIMING = "timing"                # timing/cooldown cascade: an earlier difference shifted this trade
    FILL_PRICE = "fill_price"        # the venue filled at another price than the engine's fill model
    FEE = "fee"                      # the venue charged another fee rate than the engine's fee model
    CONTROL = "control"              # the kill switch, the posture or an operator's force exit acted
    UNEXPLAINED = "unexplained"      # none of the above: a bug (the journal-exact replay must match)

    @property
    def explained(self) -> bool:
        return self is not ParityCause.UNEXPLAINED


@unique
class ParityStage(StrEnum):
    """Which pair of runs a difference was found between (each changes one class of input)."""

    EXACT = "exact"            # the journal vs its exact replay (archive + every journaled input + venue fills)
    EXECUTION = "execution"    # the exact replay vs the engine's own fill model (venue sessions only)
    INPUTS = "inputs"          # the fill-model replay vs the backtest (every scan traded, no live-only input)


@unique
class ParityDiffKind(StrEnum):
    MISSED = "missed"          # the later (more backtest-like) run traded it, live did not
    EXTRA = "extra"            # live traded it, the later run did not
    CHANGED = "changed"        # both traded it (same asset, side, entry scan), with another exit, price or fee
    CAPITAL = "capital"        # the books' capital differs (exact stage only)


@unique
class ParityStatus(StrEnum):
    """The verdict of one parity report, from best to worst (`dolphin parity` exit codes in docs/parity.md)."""

    PARITY = "parity"            # no difference beyond tolerance, 100 % coverage
    DIVERGENT = "divergent"      # differences, every one explained (gaps, cascades, drift, controls)
    UNEXPLAINED = "unexplained"  # at least one unexplained difference: a bug
    NO_SESSION = "no_session"    # no journal with a committed step yet
    ERROR = "error"              # the replay could not run (archive or journal unreadable)


@unique
class StepCoverage(StrEnum):
    """What the trader did with one archived scan of its session span."""

    TRADED = "traded"          # stepped and traded
    UNSTEPPED = "unstepped"    # never stepped: not in the journal (a restart gap the archive could not fill)
    UNTRADED = "untraded"      # stepped stale: histories only (a restart's catch-up, a stalled feed)
    HALTED = "halted"          # stepped untraded because the kill switch was at halt (a control, not a gap)


@unique
class HealthState(StrEnum):
    """A strategy's health (seed forex-crypto-platform KB, "Strategy Health State"), best to worst."""

    PROBATION = "probation"    # fewer than 20 closed trades: not evaluated
    HEALTHY = "healthy"
    WATCH = "watch"            # one metric mildly off (Sharpe ratio < 0.7, expectancy < 0.7, DD stress > 1.2)
    DEGRADING = "degrading"    # expectancy ratio < 0.5 or DD stress > 1.5
    DISABLED = "disabled"      # expectancy ratio < 0.3 or DD stress > 2.0: sticky, pauses entries

    @property
    def rank(self) -> int:
        return ("probation", "healthy", "watch", "degrading", "disabled").index(self.value)


@unique
class GaugeLevel(StrEnum):
    """A decay gauge's colour band: ratio of live to baseline ≥ 0.8 / 0.5–0.8 / < 0.5."""

    GOOD = "good"
    WARN = "warn"
    BAD = "bad"
    NONE = "none"              # no ratio (no baseline, too little data)


__all__ = ["GaugeLevel", "HealthState", "HealthStatus", "KillLevel", "McStatus", "ObRegime", "ObSource", "OrderSide",
           "ParityCause", "ParityDiffKind", "ParityStage", "ParityStatus", "PositionSide", "Posture", "ProcessState",
           "RecoveryOutcome", "ScanRejection", "ServiceAction", "SignalState", "StepCoverage"]
