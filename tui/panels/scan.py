"""Scan: lambda_max, velocity and instability per correlation window (NG8 flat or NG7 nested, §28.5)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dolphin.bus import EigenScanNG7
from dolphin.scan.definitions import DEFAULT_WINDOWS
from tui import format as fmt
from tui.panels.base import Panel
from tui.state import SCAN


class ScanPanel(Panel):
    TITLE = "Scan"
    TOPICS = frozenset({SCAN})
    SOURCES = (SCAN,)

    def hook_mark(self) -> Any:
        scan = self.payload(SCAN)
        return getattr(scan, "scan_number", None)

    def body(self, now: float) -> RenderableType:
        payload = self.payload(SCAN)
        record = self.state.scan_record() if payload is not None else None
        if record is None:
            return self.missing_text(SCAN)
        head = Text()
        head.append(f"#{fmt.integer(record.scan_number)}", style="bold")
        head.append(f"  {fmt.clock(record.timestamp_ns / 1e9)}", style="dim")
        head.append(f" · {len(record.price_map())} assets", style="dim")
        head.append(" · NG7" if isinstance(payload, EigenScanNG7) else " · NG8", style="dim")
        table = Table(box=None, padding=(0, 1), show_edge=False, header_style="dim")
        table.add_column("win", justify="right")
        table.add_column("λmax", justify="right")
        table.add_column("velocity", justify="right")
        table.add_column("instab", justify="right")
        for w in DEFAULT_WINDOWS:
            lam, vel, _acceleration, inst = record.window(w)
            v = fmt.finite(vel)
            table.add_row(str(w), fmt.num(fmt.finite(lam), 3),
                          Text(fmt.num(v, 5, signed=True), style="red" if (v or 0) < 0 else "green" if v else ""),
                          fmt.num(fmt.finite(inst), 3))
        return Group(head, table)
