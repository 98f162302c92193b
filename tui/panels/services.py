"""Services: supervisord's process table (name, state, pid, uptime) plus each service's bus heartbeat.

Replaces the bible's Prefect panel. The table comes from the TUI's only poll (one
``getAllProcessInfo`` every few seconds); uptimes advance locally between polls, and the
"beat" column is the age of ``DOLPHIN_HEARTBEAT["<service>_heartbeat"]`` (bus listener).
Select a row and press enter to start/stop/restart it (with a confirmation).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable

from tui import format as fmt
from tui.panels.base import Panel
from tui.services import uptime_now
from tui.state import HEARTBEAT, SERVICES, STALE_AFTER_S

BEAT_LIVE_S = 10.0  # two missed 5 s beats before the age shows
COLUMNS = ("service", "group", "state", "pid", "uptime", "beat", "role")
STATE_STYLE = {"RUNNING": "green", "STARTING": "yellow", "BACKOFF": "yellow", "STOPPING": "yellow",
               "STOPPED": "dim", "EXITED": "red", "FATAL": "bold red", "UNKNOWN": "red"}


class ServicesTable(DataTable):
    """The process table (focus with `s`; enter on a row offers start/stop/restart)."""

    BINDINGS = [("l", "app.log_panel", "Log")]


class ServicesPanel(Panel):
    TITLE = "Services (supervisord)"
    TOPICS = frozenset({SERVICES, HEARTBEAT})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.table = ServicesTable(id="services-table", cursor_type="row", zebra_stripes=False)
        self._keys: tuple[str, ...] = ()

    def extras(self) -> ComposeResult:
        yield self.table

    def on_mount(self) -> None:
        for col in COLUMNS:
            self.table.add_column(col, key=col)
        super().on_mount()

    def selected(self) -> str | None:
        """``group:name`` of the row under the cursor."""
        if not self._keys or self.table.row_count == 0:
            return None
        row = self.table.cursor_row
        if 0 <= row < len(self._keys):
            return self._keys[row]
        return None

    def body(self, now: float) -> Text:
        view = self.state.services
        out = Text(no_wrap=True, overflow="ellipsis")
        if not view.enabled:
            out.append("supervisord is not watched in this session", style="dim")
        elif view.polled_at is None:
            out.append(f"asking supervisord on {view.socket} …", style="dim")
        elif view.error:
            out.append(view.error, style="bold red")
        else:
            running = sum(1 for i in view.infos if i.state == "RUNNING")
            out.append(f"{running}/{len(view.infos)} running", style="green" if running == len(view.infos) else
                       "yellow")
            out.append("   s: focus · enter: start/stop/restart · l: log", style="dim")
        return out

    def refresh_extras(self, now: float) -> None:
        view = self.state.services
        beats = self.state.heartbeats()
        rows: list[tuple[str, list[Any]]] = []
        for info in view.infos:
            beat = beats.get(info.name)
            if beat is None:
                beat_cell = Text("—", style="dim")
            else:  # "live" while beats keep coming (every 5 s); the age once they stop
                age = now - beat.basis
                beat_cell = (Text("live", style="green") if age <= BEAT_LIVE_S else
                             Text(fmt.age(age), style="red" if age > STALE_AFTER_S[HEARTBEAT] else "yellow"))
            role = self.state.catalog.programs.get(info.name, "—")
            state_cell = Text(info.state, style=STATE_STYLE.get(info.state, ""))
            up = uptime_now(info, view.polled_at, now)
            rows.append((info.fullname, [info.name, info.group, state_cell, str(info.pid or ""), fmt.duration(up),
                                         beat_cell, Text(fmt.text(role, 64), style="dim")]))
        keys = tuple(k for k, _ in rows)
        if keys != self._keys:
            selected = self.selected()
            self.table.clear()
            for key, cells in rows:
                self.table.add_row(*cells, key=key)
            self._keys = keys
            if selected in keys:
                self.table.move_cursor(row=keys.index(selected))
        else:
            for key, cells in rows:
                for col, cell in zip(COLUMNS, cells):
                    current = self.table.get_cell(key, col)
                    if str(current) != str(cell) or getattr(current, "style", None) != getattr(cell, "style", None):
                        self.table.update_cell(key, col, cell)

    def tick(self, now: float) -> None:
        """Uptime and beat columns tick (changed cells only); the body line changes with the data."""
        self.refresh_extras(now)
        self._set_age(now)

    def age_status(self, now: float) -> tuple[str, bool, bool]:
        view = self.state.services
        if not view.enabled:
            return "not watched", False, True
        if view.polled_at is None:
            return "waiting", False, True
        age = now - view.polled_at
        stale = view.error is not None or age > STALE_AFTER_S[SERVICES]
        prefix = "supervisord unreachable · " if view.error else ""
        return f"{prefix}polled {fmt.age(age)} ago", stale, False
