"""What `dolphin risk status` shows: the risk layer's state in one read, and why entries stop.

The posture (CP first, as the trader reads it), the ACB verdict, the MC report and the
gate the engine makes of it (`dolphin.engine.mc_gate`, the trader's own rule), the
external factors and the trader's state, each with its age. `blockers` lists everything
that stops new entries right now, in words an operator can act on; `notes` what limits
them without stopping them (a STALKER cap, a halved MC size, a boost).

Without a bus, the watchdog's file (``<home>/safety.json``) still tells the posture.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from dolphin.bus import schema
from dolphin.bus.codec import BusCodec, default_codec
from dolphin.bus.payloads import AcbBoost, ExfLatest, McForewarner, SafetyState, StrategyState
from dolphin.engine.mc_gate import MCReport, mc_verdict
from dolphin.enums import Posture

POSTURE_STALE_S = 60.0        # the watchdog writes every bar and at least every 10 s
ACB_STALE_S = 60.0            # the ACB rewrites its verdict every 10 s
EXF_STALE_S = 60.0            # ExF writes at least every 10 s
MC_STALE_S = 6 * 3600.0       # a 4-hourly report is late after 6 h (Cat2 starts decaying)


class McGate(msgspec.Struct, frozen=True):
    """What the engine makes of the MC report (§12): the trader applies these numbers."""

    status: str               # OK | ORANGE | RED
    scale: float
    halt: bool


class RiskView(msgspec.Struct, frozen=True):
    posture: Posture
    posture_source: str                      # cp | imap | default | file
    safety: SafetyState | None
    safety_age_s: float | None
    acb: AcbBoost | None
    acb_age_s: float | None
    mc: McForewarner | None
    mc_age_s: float | None
    mc_gate: McGate
    exf: ExfLatest | None
    exf_age_s: float | None
    trader: StrategyState | None
    trader_age_s: float | None
    kill_switch: bool
    entries_allowed: bool
    blockers: list[str]
    notes: list[str]
    read_at: float


def _age(payload: Any, now: float) -> float | None:
    if payload is None:
        return None
    ts = payload.published_s()
    return None if ts is None else max(0.0, now - ts)


def assess(safety: SafetyState | None, posture_source: str, acb: AcbBoost | None, mc: McForewarner | None,
           exf: ExfLatest | None, trader: StrategyState | None, *, kill_switch: bool = False,
           stalker_cap: float = 2.0, now: float | None = None) -> RiskView:
    """The view and its verdict from what was read (pure: the reading is done by `collect_risk`)."""
    now = time.time() if now is None else now
    posture = Posture(safety.posture) if safety is not None else Posture.APEX
    ages = {name: _age(p, now) for name, p in (("safety", safety), ("acb", acb), ("mc", mc), ("exf", exf),
                                                ("trader", trader))}
    verdict = mc_verdict(None if mc is None else MCReport(mc.catastrophic_prob, mc.envelope_score))
    gate = McGate(verdict.status, verdict.scale, verdict.halt)
    blockers: list[str] = []
    notes: list[str] = []
    if safety is None:
        notes.append("no posture published: the trader runs at APEX (the bible's default) — is `watchdog` running?")
    else:
        why = f" — {safety.reason}" if safety.reason else ""
        if not posture.allows_entries:
            blockers.append(f"posture {posture} (Rm {safety.rm:.3f}){why}")
        elif posture is Posture.STALKER:
            notes.append(f"posture STALKER (Rm {safety.rm:.3f}): leverage capped at {stalker_cap:g}x{why}")
        age = ages["safety"]
        if age is not None and age > POSTURE_STALE_S:
            notes.append(f"the posture is {age:.0f} s old: the watchdog is not writing (`dolphin svc status watchdog`)")
    if gate.halt:
        blockers.append(f"MC-Forewarner gate RED (catastrophic_prob {mc.catastrophic_prob:.2f}, envelope "
                        f"{mc.envelope_score:.2f}): no new entries until a better report" if mc else "MC gate RED")
    elif gate.status == "ORANGE" and mc is not None:
        notes.append(f"MC-Forewarner gate ORANGE (catastrophic_prob {mc.catastrophic_prob:.2f}): size × {gate.scale:g}")
    if kill_switch:
        blockers.append("the kill switch file is present: no new entries")
    if trader is None:
        blockers.append("no trader state on the bus: is the trader running? (`dolphin svc status trader`)")
    else:
        if trader.halted:
            blockers.append(f"the trader is halted: {trader.halted}")
        if trader.posture is not None and safety is not None and trader.posture != posture:
            notes.append(f"the trader still applies {trader.posture} (it takes a new posture at its next scan)")
        t_age = ages["trader"]
        if t_age is not None and t_age > 120.0:
            notes.append(f"the trader's state is {t_age:.0f} s old: is it stepping scans?")
    if acb is not None:
        if acb.boost != 1.0:
            notes.append(f"ACB boost {acb.boost:.3f} (signals {acb.signals or 0:.1f}), beta {acb.beta:.2f}")
        a_age = ages["acb"]
        if a_age is not None and a_age > ACB_STALE_S:
            notes.append(f"acb_boost is {a_age:.0f} s old: the ACB processor is not writing")
    if exf is not None and exf.stale:
        notes.append(f"stale external factors: {', '.join(exf.stale)} (their last values stand, with their age)")
    return RiskView(posture=posture, posture_source=posture_source, safety=safety, safety_age_s=ages["safety"],
                    acb=acb, acb_age_s=ages["acb"], mc=mc, mc_age_s=ages["mc"], mc_gate=gate, exf=exf,
                    exf_age_s=ages["exf"], trader=trader, trader_age_s=ages["trader"], kill_switch=kill_switch,
                    entries_allowed=not blockers, blockers=blockers, notes=notes, read_at=now)


def collect_risk(client: Any, *, kill_switch: bool = False, stalker_cap: float = 2.0,
                 codec: BusCodec | None = None, clock: Callable[[], float] = time.time) -> RiskView:
    """Read the risk keys through a threaded client (read-only)."""
    from dolphin.bus.access import Bus
    from dolphin.bus.posture import PostureStore

    use = codec if codec is not None else default_codec
    bus = Bus(client, codec=use, source="dolphin risk")
    reading = PostureStore(client, codec=use, source="dolphin risk").read()
    return assess(reading.state, reading.source, bus.get(schema.FEATURES, schema.ACB_BOOST),
                  bus.get(schema.FEATURES, schema.MC_FOREWARNER_LATEST), bus.get(schema.FEATURES, schema.EXF_LATEST),
                  bus.get(schema.STATE_BLUE, schema.LATEST), kill_switch=kill_switch, stalker_cap=stalker_cap,
                  now=clock())


def from_file(path: Path, *, kill_switch: bool = False, stalker_cap: float = 2.0,
              clock: Callable[[], float] = time.time) -> RiskView | None:
    """The watchdog's last state on disk when the bus cannot be read (None: no file)."""
    if not path.is_file():
        return None
    try:
        state = msgspec.json.decode(path.read_bytes(), type=SafetyState)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        return None
    return assess(state, "file", None, None, None, None, kill_switch=kill_switch, stalker_cap=stalker_cap,
                  now=clock())
