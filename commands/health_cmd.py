"""`dolphin health`: the latest meta-health report (MHS v3)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from commands._output import console, print_json

if TYPE_CHECKING:
    from dolphin.bus import MetaHealth

STATUS_STYLE = {"GREEN": "bold green", "DEGRADED": "bold yellow", "CRITICAL": "bold red", "DEAD": "bold white on red",
                "UNKNOWN": "bold white on grey35"}


def health(json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False) -> None:
    """Print the latest MHS report: rm_meta, status, sensors M1–M5, services, data keys, MHS restarts.

    Read from the bus; when the bus is unreachable, from run_logs/meta_health.json.
    """
    import msgspec

    from dolphin.bus import BusUnavailableError, MetaHealth, schema
    from dolphin.bus.access import Bus
    from dolphin.bus.client import connect
    from dolphin.errors import DataError
    from dolphin.paths import runtime_root

    report: MetaHealth | None = None
    source = "bus"
    try:
        client = connect(cluster_connect_timeout=3.0)
        try:
            report = Bus(client, source="dolphin health").get(schema.META_HEALTH, schema.LATEST)
        finally:
            client.shutdown()
    except BusUnavailableError:
        source = "file (bus unreachable)"
    path = runtime_root() / "meta_health.json"
    if report is None and path.is_file():
        try:
            report = msgspec.json.decode(path.read_bytes(), type=MetaHealth)
            source = f"file {path}" if source == "bus" else source
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            raise DataError(f"{path}: not a valid health report ({exc})") from None
    if report is None:
        raise DataError("no health report yet: is the mhs service running? (`dolphin svc status`)")
    from dolphin.services.mhs.sensors import report_is_stale

    age = time.time() - report.timestamp_s()
    stale = report_is_stale(age, report.check_interval_s)
    status = "UNKNOWN" if stale else str(report.status)   # an old report is not the family's state
    if json_out:
        print_json({"source": source, "age_s": age, "stale": stale, "status": status,
                    "report": msgspec.to_builtins(report)})
        return
    style = STATUS_STYLE.get(status, "")
    if stale:
        console.print(f"[{style}] UNKNOWN [/]  the last report is {age:.0f} s old (it said {report.status}, "
                      f"rm_meta {report.rm_meta:.3f}): MHS is not reporting — `dolphin svc status mhs`, "
                      "`dolphin svc logs mhs`")
    else:
        console.print(f"[{style}] {status} [/]  rm_meta {report.rm_meta:.3f}   ({source}, {age:.0f} s ago)")
    for fault in report.faults:
        console.print(f"  [yellow]•[/] {fault}")
    if report.trader_lag_scans is not None or report.trader_rejected_scans:
        lag = "-" if report.trader_lag_scans is None else str(report.trader_lag_scans)
        console.print(f"  trader: {lag} scan(s) behind the bus, {report.trader_rejected_scans} bus scan(s) refused")
    sensors = Table(title="sensors")
    for col in ("sensor", "score", "weight"):
        sensors.add_column(col, justify="left" if col == "sensor" else "right")
    for name, label, weight in (("m4_control_plane", "M4 control plane (bus, supervisord)", "0.35"),
                                ("m1_data_infra", "M1 data services running", "0.35"),
                                ("m3_data_freshness", "M3 data freshness", "0.20"),
                                ("m5_coherence", "M5 coherence", "0.10"),
                                ("m2_heartbeat", "M2 heartbeats (informational)", "—"),
                                ("m1_trader", "M1 trader (informational)", "—")):
        sensors.add_row(label, f"{getattr(report, name):.2f}", weight)
    console.print(sensors)
    services = Table(title="services")
    services.add_column("service")
    services.add_column("state")
    for name, state in report.service_status.items():
        services.add_row(name, state)
    keys = Table(title="data keys")
    for col in ("key", "status", "age", "score"):
        keys.add_column(col)
    for key, ks in report.hz_key_status.items():
        keys.add_row(key, ks.status or "", "" if ks.age_s is None else f"{ks.age_s:.1f} s", f"{ks.score:.1f}")
    console.print(services)
    console.print(keys)
    if report.recoveries or report.recent_recoveries:
        console.print(_recoveries_table(report, time.time()))


def _recoveries_table(report: MetaHealth, now: float) -> Table:
    """What MHS restarted since it started: a count per service, then its latest restarts."""
    table = Table(title="MHS recoveries (since MHS started)")
    for col in ("service", "restarts", "found", "when", "outcome"):
        table.add_column(col, justify="right" if col == "restarts" else "left")
    last = {e.service: e for e in report.recent_recoveries}
    for name in sorted(set(report.recoveries) | set(last)):
        event = last.get(name)
        found, when, outcome = "", "", ""
        if event is not None:
            found, when = event.found, f"{max(0.0, now - event.at):.0f} s ago"
            outcome = event.outcome + (f": {event.error}" if event.error else "")
        table.add_row(name, str(report.recoveries.get(name, 0)), found, when, outcome)
    return table
