"""SysHealth: the MHS v3 report — M1–M5, rm_meta and its status colour (§24.5, §26.3)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from tui import format as fmt
from tui.panels.base import STATUS_STYLE, Panel, kv_table
from tui.state import LINK_CONNECTED, LINK_OFF, LINK_REPLAY, META

SENSORS = (
    ("M4 control", "m4_control_plane", 0.35),
    ("M1 data", "m1_data_infra", 0.35),
    ("M3 fresh", "m3_data_freshness", 0.20),
    ("M5 coherent", "m5_coherence", 0.10),
    ("M1 trader", "m1_trader", None),
    ("M2 beat", "m2_heartbeat", None),
)


def _gauge(value: object, width: int = 8) -> Text:
    f = fmt.finite(value)
    style = "green" if f is not None and f > 0.85 else "yellow" if f is not None and f > 0.6 else "red"
    out = Text(fmt.bar(f, width), style=style)
    out.append(f" {fmt.num(f, 2)}")
    return out


class SysHealthPanel(Panel):
    TITLE = "SysHealth (MHS)"
    TOPICS = frozenset({META})
    SOURCES = (META,)

    def body(self, now: float) -> RenderableType:
        mh = self.payload(META)
        if mh is None:
            return self.missing_text(META)
        head = Text()
        stale = self.is_stale(now)
        if stale:   # an old report is not the family's state: never show it as GREEN
            head.append(" UNKNOWN ", style="bold white on grey35")
            head.append(f"  MHS last said {fmt.text(mh.status, 10)} rm_meta {fmt.num(mh.rm_meta, 2)}", style="dim")
            link_ok = self.state.bus.state in (LINK_CONNECTED, LINK_OFF, LINK_REPLAY)
            hint = "is mhs running? `dolphin svc status mhs`" if link_ok else "the bus is lost: no newer report can arrive"
            return Group(head, Text(hint, style="dim"))
        status = fmt.text(mh.status, 10)
        head.append(f" {status} ", style=STATUS_STYLE.get(status, "bold"))
        head.append("  rm_meta ")
        head.append_text(_gauge(mh.rm_meta, 10))
        rows: list[tuple[str, RenderableType | str]] = []
        for label, name, weight in SENSORS:
            value = _gauge(getattr(mh, name, None))
            value.append(f" ×{weight:.2f}" if weight is not None else " info", style="dim")
            rows.append((label, value))
        down = sorted(k for k, v in (mh.service_status or {}).items() if str(v).upper() != "RUNNING")
        services = Text()
        total = len(mh.service_status or {})
        if total == 0:
            services.append("—", style="dim")
        elif down:
            services.append(f"{total - len(down)}/{total} running; ", style="yellow")
            services.append(", ".join(f"{k} {mh.service_status[k]}" for k in down[:3]), style="red")
        else:
            services.append(f"{total}/{total} running", style="green")
        rows.append(("services", services))
        keys = mh.hz_key_status or {}
        bad = sorted(k for k, v in keys.items() if fmt.finite(getattr(v, "score", None)) != 1.0)
        hz = Text()
        if not keys:
            hz.append("—", style="dim")
        elif bad:
            hz.append(f"{len(keys) - len(bad)}/{len(keys)} fresh; ", style="yellow")
            hz.append(", ".join(bad[:3]), style="red")
        else:
            hz.append(f"{len(keys)}/{len(keys)} fresh", style="green")
        rows.append(("bus keys", hz))
        faults = list(getattr(mh, "faults", None) or [])
        if faults:
            rows.append(("faults", Text("; ".join(faults[:3]) + (f" (+{len(faults) - 3})" if len(faults) > 3 else ""),
                                        style="yellow")))
        return Group(head, kv_table(rows, key_width=11))
