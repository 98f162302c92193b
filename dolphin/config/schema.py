"""The strategy configuration: the YAML sections and the dataclass that holds each.

A config file maps section names to the parameter dataclasses of `dolphin.engine.params`;
top-level scalars (name, direction, initial_capital) live on `StrategyConfig` itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from dolphin.engine.params import (
    AcbParams,
    ChampionParams,
    ExitParams,
    ExtrasParams,
    FrictionParams,
    LongParams,
    SurvivalParams,
    spec,
)

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
