"""Cat2's reading of an MC report without history (`watchdog.mc_no_history`, docs/mcfw.md)."""

from __future__ import annotations

import dataclasses

import pytest

from dolphin.bus import payloads as p
from dolphin.config import load_config
from dolphin.config.services import ServicesConfig
from dolphin.engine.survival import SurvivalStack
from dolphin.services.watchdog.service import Watchdog, mc_no_history_neutral

NOW = 1_780_000_000.0


def _cfg(source: str, mode: str) -> ServicesConfig:
    cfg = ServicesConfig()
    return dataclasses.replace(cfg, market=dataclasses.replace(cfg.market, source=source),
                               watchdog=dataclasses.replace(cfg.watchdog, mc_no_history=mode))


def _report(source: str, status: str) -> p.McForewarner:
    return p.McForewarner(status=status, catastrophic_prob=0.2, envelope_score=0.8, source=source,
                          timestamp=p.iso_utc(NOW))


@pytest.mark.parametrize(("source", "mode", "neutral"), [
    ("sim", "auto", True), ("binance", "auto", False), ("sim", "orange", False), ("binance", "neutral", True)])
def test_the_mode_follows_the_market(source: str, mode: str, neutral: bool) -> None:
    assert mc_no_history_neutral(_cfg(source, mode)) is neutral


@pytest.mark.parametrize("neutral", [True, False])
def test_only_a_no_history_fallback_is_read_as_no_report(neutral: bool) -> None:
    scfg = ServicesConfig()
    dog = Watchdog(None, scfg.watchdog, SurvivalStack(load_config("blue").survival), bar_ms=5000,  # type: ignore[arg-type]
                   assets=(), ob_sensor=False, mc_no_history_neutral=neutral)
    assert dog._mc_status(None) is None
    assert dog._mc_status(_report("FALLBACK_NO_DATA", "ORANGE")) == (None if neutral else "ORANGE")
    assert dog._mc_status(_report("FALLBACK_ERROR", "ORANGE")) == "ORANGE"       # a failure is never neutral
    assert dog._mc_status(_report("MONTE_CARLO", "RED")) == "RED"
