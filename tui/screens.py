"""Modal screens: help, service action chooser, confirmation, and the log panel."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Log, Static

from dolphin.enums import ServiceAction
from tui.services import LogFollower

HELP = """\
[b]DOLPHIN operator terminal[/b] — keys

  [b]q[/b]        quit (the family keeps running)
  [b]r[/b]        force refresh: re-read the bus keys once, poll supervisord, re-read test results
  [b]l[/b]        log panel: tail of the selected service's log (through supervisord)
  [b]t[/b]        toggle the test footer (re-reads run_logs/test_results_latest.json)
  [b]s[/b]        focus the services table; [b]enter[/b] on a row: start / stop / restart (confirmed)
  [b]k[/b]        kill switch: pause (no entries) · reduce (exits only) · halt (no orders) · clear
  [b]x[/b]        force exit of the open position at the next scan (exit reason MANUAL)
  [b]h[/b]        trade history from the journal ([b]/[/b] filters by asset or exit reason)
  [b]?[/b]        this help
  [b]ctrl+p[/b]   command palette (every action above)
  replay:  [b]space[/b] pause · [b]+[/b]/[b]-[/b] speed

Borders show each panel's data age; a [red]red[/red] border is stale data (a frozen
feed), a dim one a source that never published (the text says who publishes it and
whether that service runs). The header shows the bus link, rejected bus values and
the kill switch when it is not clear. Every control asks for a reason and a
confirmation; the trader journals who, why and when.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="modal-box"):
            yield Static(HELP, id="help-text")
            yield Static("[dim]esc to close[/dim]")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class ServiceActionScreen(ModalScreen[ServiceAction | None]):
    """Start / stop / restart one service; dismisses with the action or None."""

    BINDINGS = [
        Binding("escape", "choose('')", "Cancel"),
        Binding("s", "choose('start')", "Start"),
        Binding("p", "choose('stop')", "Stop"),
        Binding("r", "choose('restart')", "Restart"),
    ]

    def __init__(self, fullname: str, description: str) -> None:
        super().__init__()
        self.fullname = fullname
        self.description = description

    def compose(self) -> ComposeResult:
        with Vertical(id="action-box", classes="modal-box"):
            yield Static(Text.assemble(("service ", "dim"), (self.fullname, "bold"), "  ", (self.description, "")))
            with Horizontal(classes="buttons"):
                yield Button("Start (s)", id="start", variant="success")
                yield Button("Stop (p)", id="stop", variant="warning")
                yield Button("Restart (r)", id="restart", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose(event.button.id or "")

    def action_choose(self, action: str) -> None:
        self.dismiss(ServiceAction(action) if action in ServiceAction._value2member_map_ else None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="modal-box"):
            yield Static(Text(self.question, style="bold"))
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class LogScreen(ModalScreen[None]):
    """The tail of one service's log, following new lines every second while open."""

    BINDINGS = [Binding("escape,q,l", "close", "Close")]
    FOLLOW_S = 1.0

    def __init__(self, socket_path: str | Path, fullname: str) -> None:
        super().__init__()
        self.fullname = fullname
        self.follower = LogFollower(socket_path, fullname)
        self.log_widget = Log(id="log-view", max_lines=2000, auto_scroll=True)
        self.status = Static("", id="log-status")

    def compose(self) -> ComposeResult:
        with Vertical(id="log-box", classes="modal-box"):
            yield Static(Text.assemble(("log ", "dim"), (self.fullname, "bold"),
                                       ("   esc to close · follows new lines", "dim")))
            yield self.log_widget
            yield self.status

    def on_mount(self) -> None:
        self.fetch()
        self.set_interval(self.FOLLOW_S, self.fetch)

    @work(thread=True, exclusive=True, group="log-follow", exit_on_error=False)
    def fetch(self) -> None:
        try:
            text = self.follower.more()
            error = ""
        except Exception as exc:
            text, error = "", f"cannot read the log: {exc}"
        self.app.call_from_thread(self._show, text, error)

    def _show(self, text: str, error: str) -> None:
        if text:
            self.log_widget.write(text)
        self.status.update(Text(error, style="red") if error else "")

    def action_close(self) -> None:
        self.dismiss(None)
