"""Short-name resolution: the operator's names map to programs, and a wrong name says why."""

from __future__ import annotations

import dataclasses

import pytest

from dolphin.config.services import ServicesConfig
from dolphin.supervision.errors import UnknownService
from dolphin.supervision.programs import resolve

pytestmark = [pytest.mark.degradation]


def test_short_and_group_names_resolve() -> None:
    cfg = ServicesConfig()
    assert resolve("scanner", cfg).name == "scanner"
    assert resolve("dolphin_data:scanner", cfg).name == "scanner"
    with pytest.raises(UnknownService, match="valid: hz, sim, scanner"):
        resolve("dolphin:scanner", cfg)  # right name, wrong group


@pytest.mark.parametrize(("name", "reason"), [
    ("nosuch", "unknown service 'nosuch'; valid:"),
    ("exf", "a data service this family does not have yet"),
    ("watchdog", "a data service this family does not have yet"),
])
def test_unknown_names_say_why(name: str, reason: str) -> None:
    with pytest.raises(UnknownService, match=reason):
        resolve(name, ServicesConfig())


def test_a_program_configured_off_is_named_as_such() -> None:
    cfg = ServicesConfig()
    cfg = dataclasses.replace(cfg, market=dataclasses.replace(cfg.market, source="binance"))
    with pytest.raises(UnknownService, match="configured off in this family"):
        resolve("sim", cfg)
