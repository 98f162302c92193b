"""Engine parameters, one frozen dataclass per concern, and `StrategyConfig`, the whole strategy.

Each field's metadata holds its valid range, so the YAML loader validates against the
same definitions the engine runs on (one source of truth). Fields marked ``frozen`` are
the champion parameters of bible §19.1–§19.3: they are hashed for champion integrity
and any difference from the frozen champion is drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


def spec(default: Any, lo: float | None = None, hi: float | None = None, *, frozen: bool = False,
         choices: tuple[Any, ...] | None = None, doc: str = "") -> Any:
    """A dataclass field carrying its validation range and whether it is champion-frozen."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "frozen": frozen,
                                            "choices": choices, "doc": doc})


@dataclass(frozen=True, slots=True)
class ChampionParams:
    """Bible §19.1 — the frozen SHORT champion."""

    vel_div_threshold: float = spec(-0.02, -0.5, 0.5, frozen=True, doc="primary entry threshold")
    vel_div_extreme: float = spec(-0.05, -0.5, 0.5, frozen=True, doc="full-size regime")
    min_leverage: float = spec(0.5, 0.01, 50.0, frozen=True)
    max_leverage: float = spec(5.0, 0.01, 50.0, frozen=True, doc="base ceiling before ACB")
    abs_max_leverage: float = spec(6.0, 0.01, 50.0, frozen=True, doc="hard ceiling")
    leverage_convexity: float = spec(3.0, 0.1, 10.0, frozen=True)
    fraction: float = spec(0.20, 0.02, 1.0, frozen=True, doc="max capital fraction per trade")
    fixed_tp_pct: float = spec(0.0095, 1e-5, 1.0, frozen=True)
    stop_pct: float = spec(1.0, 1e-5, 1.0, frozen=True, doc="1.0 = effectively disabled")
    max_hold_bars: int = spec(120, 1, 1_000_000, frozen=True)
    dc_lookback_bars: int = spec(7, 1, 60, frozen=True)
    dc_min_magnitude_bps: float = spec(0.75, 0.0, 10_000.0, frozen=True)
    dc_skip_contradicts: bool = spec(True, frozen=True)
    min_irp_alignment: float = spec(0.45, 0.0, 1.0, frozen=True)
    sp_maker_entry_rate: float = spec(0.62, 0.0, 1.0, frozen=True)
    sp_maker_exit_rate: float = spec(0.50, 0.0, 1.0, frozen=True)
    ob_edge_bps: float = spec(5.0, 0.0, 1_000.0, frozen=True)
    ob_confirm_rate: float = spec(0.40, 0.0, 1.0, frozen=True)
    lookback: int = spec(100, 1, 1_000_000, frozen=True, doc="warm-up bars before the first entry")
    seed: int = spec(42, 0, 2**32 - 1, frozen=True, doc="legacy OB Monte-Carlo RNG seed")


@dataclass(frozen=True, slots=True)
class LongParams:
    """Bible §4.1 LONG path (green): used instead of the SHORT pair when direction is long."""

    long_threshold: float = spec(0.01, -0.5, 0.5)
    long_extreme: float = spec(0.04, -0.5, 0.5)


@dataclass(frozen=True, slots=True)
class AcbParams:
    """Bible §10 / §19.2 — ACB v6. The §19.2 keys are frozen; the mild thresholds of §10.2 are not."""

    beta_high: float = spec(0.8, 0.0, 5.0, frozen=True)
    beta_low: float = spec(0.2, 0.0, 5.0, frozen=True)
    w750_threshold_pct: float = spec(60.0, 0.0, 100.0, frozen=True)
    funding_very_bearish: float = spec(-0.0001, -1.0, 1.0, frozen=True)
    dvol_extreme: float = spec(80.0, 0.0, 1_000.0, frozen=True)
    fng_extreme_fear: float = spec(25.0, 0.0, 100.0, frozen=True)
    taker_selling: float = spec(0.8, 0.0, 10.0, frozen=True)
    funding_bearish: float = spec(0.0, -1.0, 1.0, doc="mild funding signal (0.5)")
    dvol_elevated: float = spec(55.0, 0.0, 1_000.0, doc="mild dvol signal (0.5)")
    fng_fear: float = spec(40.0, 0.0, 100.0, doc="mild fear signal (0.5)")
    taker_mild: float = spec(0.9, 0.0, 10.0, doc="mild taker signal (0.5)")
    w750_history_bars: int = spec(17_280, 10, 10_000_000,
                                  doc="trailing bars of w750 velocity behind the percentile (1 day of 5 s bars)")
    ob_beta_stress_boost: float = spec(0.25, 0.0, 1.0, doc="OB-4: beta uplift under withdrawal stress")
    subday_exit_old_boost: float = spec(1.25, 0.0, 10.0, doc="§7.3 sub-day exit: old boost at least this")
    subday_exit_new_boost: float = spec(1.10, 0.0, 10.0, doc="§7.3 sub-day exit: new boost below this")


@dataclass(frozen=True, slots=True)
class SurvivalParams:
    """Bible §11 / §19.3 — posture thresholds (frozen) and hysteresis."""

    apex: float = spec(0.90, 0.0, 1.0, frozen=True)
    stalker: float = spec(0.75, 0.0, 1.0, frozen=True)
    turtle: float = spec(0.50, 0.0, 1.0, frozen=True)
    hysteresis_down: int = spec(2, 1, 1_000)
    hysteresis_up: int = spec(5, 1, 1_000)
    stalker_max_leverage: float = spec(2.0, 0.01, 50.0, doc="STALKER leverage cap (§6.5)")


@dataclass(frozen=True, slots=True)
class ExitParams:
    """Bible §7 — exit extras beyond the champion table."""

    vd_enabled: bool = spec(False, doc="vel_div adverse-turn exits (§7.1 item 4, off pending calibration)")
    vd_threshold: float = spec(0.02, 0.0, 1.0, doc="adverse vel_div level (mirrored for long)")
    vd_bars: int = spec(3, 1, 1_000, doc="consecutive adverse bars before exiting")
    tp_slippage: float = spec(0.0002, 0.0, 0.1, doc="§7.4 exit slip for FIXED_TP")
    sl_slippage: float = spec(0.0005, 0.0, 0.1, doc="§7.4 exit slip for STOP_LOSS")
    other_slippage: float = spec(0.0002, 0.0, 0.1, doc="§7.4 exit slip for every other reason")


@dataclass(frozen=True, slots=True)
class FrictionParams:
    """Bible §8 — engine-side friction; both switches off for venue-native friction."""

    use_sp_fees: bool = spec(True, doc="SmartPlacer maker/taker fee blend")
    use_sp_slippage: bool = spec(True, doc="engine exit slippage with the SP maker refund")
    ob_edge: bool = spec(True, doc="§8.3 OB fill-edge term (real OB or the Monte-Carlo fallback)")
    maker_fee: float = spec(0.0002, 0.0, 0.01)
    taker_fee: float = spec(0.0005, 0.0, 0.01)


@dataclass(frozen=True, slots=True)
class ExtrasParams:
    """Choices the bible leaves open; documented in docs/engine.md."""

    bucket_min_trades: int = spec(5, 1, 10_000, doc="closed trades in a bucket before its boost applies")
    streak_min_trades: int = spec(5, 1, 10_000, doc="closed trades before the streak multiplier applies")
    vol_window: int = spec(50, 2, 10_000, doc="returns in the rolling volatility (vol_ok)")
    vol_percentile: float = spec(60.0, 0.0, 100.0, doc="vol_ok when dvol >= this trailing percentile")
    vol_calib_bars: int = spec(720, 10, 1_000_000, doc="trailing dvol values behind the percentile")
    vol_reference: str = spec("BTCUSDT", doc="asset whose volatility gates entries (first asset if absent)")


def frozen_field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.metadata.get("frozen")]


# ---------------------------------------------------------------- the whole strategy
SECTIONS: dict[str, type] = {
    "champion": ChampionParams,
    "long": LongParams,
    "acb": AcbParams,
    "survival": SurvivalParams,
    "exits": ExitParams,
    "friction": FrictionParams,
    "extras": ExtrasParams,
}

#: Sections whose frozen fields make up the champion (bible §19.1, §19.2, §19.3).
FROZEN_SECTIONS = ("champion", "acb", "survival")


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """A fully validated strategy configuration (blue, green, or an operator's own)."""

    name: str = spec("blue")
    direction: str = spec("short", choices=("short", "long"))
    initial_capital: float = spec(25_000.0, 1.0, 1e12)
    champion: ChampionParams = field(default_factory=ChampionParams)
    long: LongParams = field(default_factory=LongParams)
    acb: AcbParams = field(default_factory=AcbParams)
    survival: SurvivalParams = field(default_factory=SurvivalParams)
    exits: ExitParams = field(default_factory=ExitParams)
    friction: FrictionParams = field(default_factory=FrictionParams)
    extras: ExtrasParams = field(default_factory=ExtrasParams)

    @property
    def direction_sign(self) -> int:
        """-1 for SHORT (champion), +1 for LONG."""
        return -1 if self.direction == "short" else 1

    @property
    def signal_threshold(self) -> float:
        return self.champion.vel_div_threshold if self.direction == "short" else self.long.long_threshold

    @property
    def signal_extreme(self) -> float:
        return self.champion.vel_div_extreme if self.direction == "short" else self.long.long_extreme

    def frozen_params(self) -> dict[str, dict[str, Any]]:
        """The champion-frozen keys, nested by section; the input of the champion hash."""
        out: dict[str, dict[str, Any]] = {}
        for section in FROZEN_SECTIONS:
            obj = getattr(self, section)
            out[section] = {f.name: getattr(obj, f.name) for f in fields(obj) if f.metadata.get("frozen")}
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_venue_friction(self) -> StrategyConfig:
        """The config a venue-filled book runs (bible §8.1–§8.3): the venue's fills are the friction.

        SmartPlacer fees, engine slippage and the OB fill-edge term are off — the matching
        engine gives the price, the commission and whatever edge there was. The champion's
        frozen parameters are untouched (its hash is unchanged).
        """
        friction = replace(self.friction, use_sp_fees=False, use_sp_slippage=False, ob_edge=False)
        return replace(self, friction=friction)
