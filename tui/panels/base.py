"""What every data panel shares: sources, an age line, staleness, "never published" text.

A panel is a bordered container with a body (`Static`), optional extra widgets
(sparklines, tables) and a one-line age at the bottom. It declares:

* ``TOPICS`` — the state topics that make it refresh (bus keys, ``bus``, ``services``…);
* ``SOURCES`` — the bus sources whose age its age line shows and whose staleness turns
  its border red with ``STALE`` (thresholds in `tui.state.STALE_AFTER_S`);
* `body(now)` — a Rich renderable built from `TuiState` only (never any I/O).

The 1 s UI tick calls `tick(now)`, which rewrites the age line and the stale/missing
classes (and the body only when ``AGE_IN_BODY`` and its clock-dependent text changed),
so a frozen feed turns the panel red while a quiet but live one stays as it is, and a
tick repaints a line per panel, not the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.color import Color as RichColor
from rich.console import RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical
from textual.filter import LineFilter, monochrome_style
from textual.strip import Strip
from textual.widgets import Static

from dolphin.bus.payloads import Heartbeat
from tui import format as fmt
from tui.services import process_by_name
from tui.state import (
    BUS,
    LINK_CONNECTED,
    LINK_OFF,
    LINK_REPLAY,
    SERVICES,
    SOURCES,
    Entry,
    Source,
    TuiState,
)

RenderHook = Callable[[str, Any], None]


class Greyed(LineFilter):
    """Every glyph in one mid grey, backgrounds in their own greys, no bold.

    Textual's `Monochrome` keeps each colour's luminance, so a stale red or green value
    turns almost black on a dark background: unreadable exactly when the operator wants
    to read the last known value. One grey reads as "old" and stays legible.
    """

    def __init__(self, grey: str = "#8a8a8a") -> None:
        super().__init__()
        self.grey = RichColor.parse(grey)

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        grey = self.grey
        out: list[Segment] = []
        for text, style, _ in segments:
            if style is None:
                out.append(Segment(text, Style(color=grey)))
                continue
            mono = monochrome_style(style)  # backgrounds (selection, bars) keep their shape in greys
            out.append(Segment(text, mono + Style(color=grey, bold=False)))
        return out


_GREY = Greyed()


class Body(Static):
    """A panel's body. With a render hook set (benchmarks, tests), reports when a new value is rendered.

    While its data is stale the body is drawn in one grey (`Greyed`): a green "GREEN"
    from a dead feed must not read as health.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hook: RenderHook | None = None
        self.hook_name = ""
        self.mark: Any = None
        self.stale = False

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        return strip.apply_filter(_GREY, self.background_colors[1]) if self.stale else strip

    def show(self, content: Any) -> None:
        """Update the content; ask for a layout pass only if the height changed.

        A layout pass repaints the whole screen; most updates (a new scan, a new health
        report) keep a panel's height, and then only this widget is repainted.
        """
        before = self.size.height
        self.update(content, layout=False)
        width = self.size.width
        if not self.is_mounted or not width:
            self.refresh(layout=True)
            return
        try:
            after = self.visual.get_height(self.styles, width)  # type: ignore[arg-type]  # Textual's stubs lag
        except Exception:
            after = -1
        if after != before:
            self.refresh(layout=True)

    def render(self) -> Any:
        visual = super().render()
        if self.hook is not None and self.mark is not None:
            mark, self.mark = self.mark, None
            self.hook(self.hook_name, mark)
        return visual


class Panel(Vertical):
    """Base of the bus-fed panels."""

    TITLE: ClassVar[str] = ""
    TOPICS: ClassVar[frozenset[str]] = frozenset()
    SOURCES: ClassVar[tuple[str, ...]] = ()
    AGE_IN_BODY: ClassVar[bool] = False
    SHOW_AGE: ClassVar[bool] = True
    DEFAULT_CLASSES = "panel"

    def __init__(self, state: TuiState, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.state = state
        self.border_title = self.TITLE
        self._subtitle: str | None = None
        self._tick_key: Any = None
        self.body_widget = Body("", classes="body")
        # The age ticks every second in its own one-line widget: only that line is repainted
        # (a border subtitle would repaint the whole panel, every panel, every second).
        self.age_widget = Static("", classes="age")
        self._status: str | None = None
        self._body_stale = False   # whether the body on screen was rendered from stale data
        self.render_errors = 0

    @property
    def all_topics(self) -> frozenset[str]:
        # bus and services: a "never published" text names the bus state and the publisher's state
        return self.TOPICS | {BUS, SERVICES}

    def compose(self) -> ComposeResult:
        yield self.body_widget
        yield from self.extras()
        if self.SHOW_AGE:
            yield self.age_widget

    def extras(self) -> ComposeResult:
        return
        yield

    def on_mount(self) -> None:
        self.refresh_view()

    # ------------------------------------------------------------ rendering
    def body(self, now: float) -> RenderableType:
        """The panel's content at ``now`` from the shared state; every panel class defines it."""
        raise TypeError(f"{type(self).__name__} does not render a body")

    def refresh_view(self, *, layout: bool = True) -> None:
        """Re-render from the state. ``layout=False`` (age ticks) repaints without a layout pass:
        only the data can change a panel's height, never an age string."""
        now = self.state.clock()
        self._tick_key = self.tick_key(now)
        self._body_stale = self.age_status(now)[1]
        self.body_widget.stale = self._body_stale
        try:
            body = self.body(now)
        except Exception as exc:  # a panel never takes the screen down
            self.render_errors += 1
            body = Text(f"cannot render: {type(exc).__name__}: {exc}", style="red")
        if self.body_widget.hook is not None:
            self.body_widget.mark = self.hook_mark()
        if layout:
            self.body_widget.show(body)
        else:
            self.body_widget.update(body, layout=False)
        self.refresh_extras(now)
        self._set_age(now)

    def set_render_hook(self, hook: RenderHook | None) -> None:
        self.body_widget.hook = hook
        self.body_widget.hook_name = self.id or type(self).__name__

    def hook_mark(self) -> Any:
        """What the render hook reports for the value now shown (default: the first source's publish time)."""
        if not self.SOURCES:
            return None
        e = self.entry(self.SOURCES[0])
        return e.basis if e is not None else None

    def refresh_extras(self, now: float) -> None:
        """Update extra widgets (sparklines); default none."""

    def tick_key(self, now: float) -> Any:
        """What the body shows that depends on the clock (age strings); the tick re-renders only
        when it changed. None: re-render every tick."""
        return None

    def is_stale(self, now: float) -> bool:
        """Whether any source of this panel is older than its staleness threshold (or the bus is lost)."""
        return self.age_status(now)[1]

    def tick(self, now: float) -> None:
        if self.age_status(now)[1] != self._body_stale:   # a body greys (or un-greys) its values
            self.refresh_view(layout=False)
            return
        if self.AGE_IN_BODY:
            key = self.tick_key(now)
            if key is None or key != self._tick_key:
                self.refresh_view(layout=False)
                return
        self._set_age(now)

    # ------------------------------------------------------------ ages and staleness
    def _set_age(self, now: float) -> None:
        text, stale, missing = self.age_status(now)
        if text != self._subtitle:
            self._subtitle = text
            if self.SHOW_AGE:
                self.age_widget.update(text, layout=False)
        status = "STALE" if stale else "no data" if missing else ""
        if status != self._status:  # the border changes only when the state does
            self._status = status
            self.border_subtitle = status or None
        self.set_class(stale, "-stale")
        self.set_class(missing, "-missing")

    @property
    def age_text(self) -> str:
        """The age line as shown (tests)."""
        return self._subtitle or ""

    def age_status(self, now: float) -> tuple[str, bool, bool]:
        """(subtitle, stale?, every source missing?)."""
        if not self.SOURCES:
            return "", False, False
        parts: list[str] = []
        stale = False
        present = 0
        for topic in self.SOURCES:
            source = SOURCES[topic]
            entry = self.state.source_entry(source)
            label = f"{source.label} " if len(self.SOURCES) > 1 else ""
            if entry is None:
                parts.append(f"{label}never published" if len(self.SOURCES) == 1 else f"{label}—")
                continue
            present += 1
            age = now - entry.basis
            if age > self.state.stale_after(source):
                stale = True
                parts.append(f"{label}STALE {fmt.age(age)}")
            else:
                parts.append(f"{label}{fmt.age(age)} ago" if len(self.SOURCES) == 1 else f"{label}{fmt.age(age)}")
        parts += self.extra_age_parts(now)
        link = self.state.bus
        if present and link.state not in (LINK_CONNECTED, LINK_OFF, LINK_REPLAY):
            parts.append("bus lost")
            stale = True
        return " · ".join(parts), stale, present == 0

    def extra_age_parts(self, now: float) -> list[str]:
        """More ages for the age line that do not colour the panel (e.g. the trader's last scan)."""
        return []

    def entry(self, topic: str) -> Entry | None:
        return self.state.source_entry(SOURCES[topic])

    def payload(self, topic: str) -> Any | None:
        e = self.entry(topic)
        return e.payload if e is not None else None

    # ------------------------------------------------------------ "never published"
    def missing_text(self, topic: str) -> Text:
        """Why a source has no value: bus state, publisher, and whether that service runs."""
        return missing_reason(self.state, SOURCES[topic])


def missing_reason(state: TuiState, source: Source) -> Text:
    out = Text()
    link = state.bus
    if link.state == LINK_REPLAY:
        out.append(f"{source.wire_name} is not in this replay", style="yellow")
        return out
    if link.state != LINK_CONNECTED and not link.connected_once and link.state != LINK_OFF:
        out.append("no bus connection yet", style="bold red")
        out.append(f" — cannot read {source.wire_name}")
        return out
    out.append(f"{source.wire_name} never published.\n", style="yellow")
    publisher = state.catalog.publisher_of(source.map_name, source.key)
    if publisher is None:
        out.append("No DOLPHIN service publishes it.", style="dim")
        return out
    out.append("publisher: ")
    out.append(publisher, style="bold")
    services = state.services
    if not services.enabled:
        out.append(" (supervisord not watched here)", style="dim")
        return out
    info = process_by_name(services.infos, publisher)
    if info is None and services.error and not services.infos:
        out.append(" — supervisord not reachable", style="red")
        return out
    if info is None and services.polled_at is None:
        out.append(" — waiting for supervisord", style="dim")
        return out
    if info is None:
        if publisher in state.catalog.programs:
            out.append(" — not a program of this supervisord (configured off?)", style="yellow")
        else:
            out.append(" — not part of the family yet", style="yellow")
        return out
    style = "green" if info.state == "RUNNING" else "red"
    out.append(" is ")
    out.append(info.state, style=style)
    beat = state.heartbeats().get(publisher)
    beat_payload = beat.payload if beat is not None else None
    warmup = beat_payload.warmup if isinstance(beat_payload, Heartbeat) else None
    if info.state == "RUNNING" and isinstance(beat_payload, Heartbeat) and warmup is not None:
        out.append(f" (pid {info.pid}), warming up: ", style="dim")
        out.append(beat_payload.warmup_text() or "", style="bold yellow")
        out.append(f" ({warmup.done / warmup.total:.0%})", style="dim")
    elif info.state == "RUNNING":
        out.append(f" (pid {info.pid}) but has not written it yet", style="dim")
    else:
        out.append(" — press s, select it, enter to start", style="dim")
    return out


def kv_table(rows: list[tuple[str, RenderableType | str]], *, key_width: int | None = None) -> Table:
    """Two-column key/value grid (no borders), the panels' common layout."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True, min_width=key_width)
    table.add_column(no_wrap=True, overflow="ellipsis")
    for key, value in rows:
        table.add_row(key, value)
    return table


STATUS_STYLE = {
    "GREEN": "bold green", "WARMING": "bold cyan", "DEGRADED": "bold yellow", "ORANGE": "bold dark_orange", "CRITICAL": "bold red",
    "RED": "bold red", "DEAD": "bold white on red",
    "APEX": "bold green", "STALKER": "bold yellow", "TURTLE": "bold dark_orange", "HIBERNATE": "bold white on red",
    "PASS": "bold green", "FAIL": "bold red", "N/A": "dim",
}


def styled(value: Any) -> Text:
    s = fmt.text(value, 20)
    return Text(s, style=STATUS_STYLE.get(s, ""))
