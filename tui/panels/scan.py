"""Scan: lambda_max, velocity and instability per correlation window (NG8 flat or NG7 nested, §28.5)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dolphin.bus import EigenScan, EigenScanNG7, scan_view
from tui import format as fmt
from tui.panels.base import Panel
from tui.state import SCAN

WINDOWS = (50, 150, 300, 750)


def window_rows(scan: Any) -> dict[int, tuple[float | None, float | None, float | None]]:
    """{window: (lambda_max, velocity, instability)} from either payload shape (bible §28.5)."""
    if isinstance(scan, EigenScanNG7):
        mwr = scan.result.multi_window_results
    elif isinstance(scan, EigenScan):
        mwr = scan.multi_window_results
    else:
        mwr = {}
    view = scan_view(scan)
    out: dict[int, tuple[float | None, float | None, float | None]] = {}
    for w in WINDOWS:
        stats = mwr.get(str(w)) if isinstance(mwr, dict) else None
        lam = getattr(stats, "lambda_max", None) if stats is not None else None
        vel = getattr(stats, "velocity", None) if stats is not None else None
        inst = getattr(stats, "instability", None) if stats is not None else None
        if vel is None:
            vel = view.velocities.get(w)
        if inst is None and isinstance(scan, EigenScan):
            inst = {50: scan.instability_50, 150: scan.instability_150}.get(w)
        out[w] = (lam, vel, inst)
    return out


class ScanPanel(Panel):
    TITLE = "Scan"
    TOPICS = frozenset({SCAN})
    SOURCES = (SCAN,)

    def hook_mark(self) -> Any:
        scan = self.payload(SCAN)
        return getattr(scan, "scan_number", None)

    def body(self, now: float) -> RenderableType:
        scan = self.payload(SCAN)
        if scan is None:
            return self.missing_text(SCAN)
        view = scan_view(scan)
        head = Text()
        head.append(f"#{fmt.integer(view.scan_number)}", style="bold")
        head.append(f"  {fmt.clock(view.timestamp_s)}", style="dim")
        head.append(f" · {len(view.asset_prices)} assets", style="dim")
        head.append(" · NG7" if isinstance(scan, EigenScanNG7) else " · NG8", style="dim")
        table = Table(box=None, padding=(0, 1), show_edge=False, header_style="dim")
        table.add_column("win", justify="right")
        table.add_column("λmax", justify="right")
        table.add_column("velocity", justify="right")
        table.add_column("instab", justify="right")
        for w, (lam, vel, inst) in window_rows(scan).items():
            v = fmt.finite(vel)
            table.add_row(str(w), fmt.num(lam, 3), Text(fmt.num(v, 5, signed=True),
                                                       style="red" if (v or 0) < 0 else "green" if v else ""),
                          fmt.num(inst, 3))
        return Group(head, table)
