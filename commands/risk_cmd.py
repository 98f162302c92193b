"""`dolphin risk status`: posture, Rm, sensors, boost, beta, MC — why the trader is (not) entering."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from commands._output import console, print_json

app = typer.Typer(help="The risk layer: the watchdog's posture, ACB, MC-Forewarner, external factors.",
                  no_args_is_help=True)

POSTURE_STYLE = {"APEX": "bold black on green", "STALKER": "bold black on yellow", "TURTLE": "bold white on dark_orange",
                 "HIBERNATE": "bold white on red"}
SENSOR_LABELS = {"cat1_invariant": "Cat1 invariant (bus, trader heartbeat)",
                 "cat2_structural": "Cat2 structural (MC, data staleness)",
                 "cat3_microstructure": "Cat3 microstructure (OB depth, fill)",
                 "cat4_environmental": "Cat4 environmental (DVOL spike)",
                 "cat5_capital": "Cat5 capital (drawdown)"}


def _age(age: float | None) -> str:
    return "—" if age is None else f"{age:.0f} s ago" if age < 120 else f"{age / 60:.0f} min ago"


@app.command("status")
def status(json_out: Annotated[bool, typer.Option("--json", help="Print the view as JSON.")] = False) -> None:
    """What an operator asks first when the trader stops entering: posture, Rm, sensors, boost, beta, MC.

    Read from the bus (the posture CP-first, as the trader reads it); without a bus, the
    watchdog's last state from <home>/safety.json.
    """
    import msgspec

    from dolphin.bus import BusUnavailableError
    from dolphin.bus.client import connect
    from dolphin.bus.risk_view import collect_risk, from_file
    from dolphin.config import load_config
    from dolphin.config.services import load_services_config
    from dolphin.errors import DataError
    from dolphin.execution.kill_switch import KillSwitch
    from dolphin.paths import runtime_root
    from dolphin.services.watchdog.service import safety_file

    scfg = load_services_config()
    home = runtime_root()
    kill = KillSwitch.under(home, scfg.trader.kill_switch).active()
    cap = load_config(scfg.trader.strategy).survival.stalker_max_leverage
    source = "bus"
    try:
        client = connect(cluster_connect_timeout=3.0)
        try:
            view = collect_risk(client, kill_switch=kill, stalker_cap=cap)
        finally:
            client.shutdown()
    except BusUnavailableError as exc:
        found = from_file(safety_file(home), kill_switch=kill, stalker_cap=cap)
        if found is None:
            raise DataError(f"{exc}; and no watchdog state on disk ({safety_file(home)})") from None
        view, source = found, f"file {safety_file(home)} (bus unreachable)"
    if json_out:
        data = msgspec.json.decode(msgspec.json.encode(view))   # msgspec.json encodes the trader's raw engine state
        if data.get("trader"):
            data["trader"].pop("engine_state", None)              # the engine's own document: not a status
        print_json({"source": source, **data})
        return
    s = view.safety
    head = f"[{POSTURE_STYLE.get(str(view.posture), 'bold')}] {view.posture} [/]"
    if s is not None:
        head += f"  Rm {s.rm:.3f}" + (f" (target {s.r_target:.3f})" if s.r_target is not None else "")
        head += f"   ({view.posture_source}, {_age(view.safety_age_s)})"
    else:
        head += "  (no posture published: the trader's default)"
    console.print(head)
    if view.entries_allowed:
        console.print("[bold green]entries allowed[/]")
    else:
        console.print("[bold red]entries stopped:[/]")
        for b in view.blockers:
            console.print(f"  [red]•[/] {b}")
    for n in view.notes:
        console.print(f"  [yellow]•[/] {n}")
    if s is not None:
        sensors = Table(title="survival sensors (§11)")
        for col in ("sensor", "score", "reads"):
            sensors.add_column(col, justify="right" if col == "score" else "left")
        inputs = s.inputs
        reads = {"cat1_invariant": f"{inputs.get('hz_nodes', 0):.0f} member(s), trader beat "
                                   f"{inputs.get('heartbeat_age_s', 0):.0f} s",
                 "cat2_structural": f"MC {s.mc_status or '—'}, data {inputs.get('staleness_hours', 0):.2f} h stale",
                 "cat3_microstructure": ("OB stale" if inputs.get("ob_stale") else
                                         f"depth {inputs.get('depth_quality', 0):.2f}, fill "
                                         f"{inputs.get('fill_probability', 0):.2f}"),
                 "cat4_environmental": (f"DVOL {inputs['dvol']:.1f}" if "dvol" in inputs else "no DVOL")
                 + (f", spike {inputs['minutes_since_spike']:.0f} min ago" if "minutes_since_spike" in inputs else ""),
                 "cat5_capital": f"drawdown {inputs.get('drawdown', 0) * 100:.2f} %"}
        for name, label in SENSOR_LABELS.items():
            value = s.sensors.get(name)
            score = "—" if value is None else f"{value:.3f}"
            sensors.add_row(label, f"[red]{score}[/]" if value is not None and value < 0.8 else score,
                            reads.get(name, ""))
        console.print(sensors)
    acb, mc, exf = view.acb, view.mc, view.exf
    risk = Table(title="boost, beta, MC")
    risk.add_column("")
    risk.add_column("value")
    risk.add_column("age")
    if acb is not None:
        risk.add_row("ACB boost", f"{acb.boost:.3f} (signals {acb.signals or 0:.1f}, {acb.trigger or '—'})",
                     _age(view.acb_age_s))
        risk.add_row("ACB beta", f"{acb.beta:.2f}" + (" (OB stress)" if acb.ob_stress else ""), "")
    else:
        risk.add_row("ACB", "not published: boost 1.0", "")
    if mc is not None:
        risk.add_row("MC-Forewarner", f"{mc.status} (prob {mc.catastrophic_prob:.2f}, envelope {mc.envelope_score:.2f},"
                                      f" {mc.source}) → gate {view.mc_gate.status} ×{view.mc_gate.scale:g}",
                     _age(view.mc_age_s))
    else:
        risk.add_row("MC-Forewarner", "no report: gate OK", "")
    if exf is not None:
        for name in ("funding_btc", "dvol_btc", "fng", "taker"):
            v = exf.value(name)
            age = exf.age_of(name, view.read_at)
            mark = " [red]stale[/]" if name in exf.stale else ""
            risk.add_row(f"ExF {name}", ("—" if v is None else f"{v:.6g}") + mark, _age(age))
    console.print(risk)
    if view.trader is not None:
        t = view.trader
        pos = t.open_position
        console.print(f"trader: posture applied {t.posture or '—'}, capital {t.capital:,.2f}, drawdown "
                      f"{t.drawdown * 100:.2f} %, " + (f"open {pos.side} {pos.asset}" if pos else "flat"))
