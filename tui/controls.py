"""The operator's controls in the terminal: kill switch, force exit, trade history.

Each one goes through the same files the CLI writes (`dolphin.execution.controls`): the
kill switch's state file, an exit request the trader takes at its next scan, the journal
as the books. Every action that changes what the trader may do asks for a reason and a
confirmation first; the reason is journaled with who and when. Nothing here decides
anything: the engine applies the level and closes the position through its own exit path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Static

from dolphin.enums import KillLevel

KILL_STYLE = {"clear": "bold green", "pause": "bold black on yellow", "reduce": "bold black on dark_orange",
              "halt": "bold white on red"}
KILL_KEYS = {"c": KillLevel.CLEAR, "p": KillLevel.PAUSE, "r": KillLevel.REDUCE, "h": KillLevel.HALT}


def kill_badge(level: KillLevel | str) -> Text:
    name = str(level)
    return Text(f" {name.upper()} ", style=KILL_STYLE.get(name, "bold"))


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at > 0 else "—"


class KillSwitchScreen(ModalScreen[KillLevel | None]):
    """Choose a kill-switch level (c / p / r / h); dismisses with it, or None on escape."""

    BINDINGS = [Binding("escape,q", "choose('')", "Cancel"),
                *(Binding(key, f"choose('{level}')", level.capitalize()) for key, level in KILL_KEYS.items())]

    def __init__(self, current: Any, applied: str | None) -> None:
        super().__init__()
        self.current = current          # dolphin.execution.kill_switch.KillState
        self.applied = applied          # what the trader's last state on the bus says it applies

    def compose(self) -> ComposeResult:
        level = KillLevel(self.current.level)
        now = Text.assemble(("kill switch  ", "dim"), kill_badge(level), "  ", level.meaning)
        detail = Text(f"set by {self.current.by or '—'} at {_when(self.current.at)}"
                      + (f" — {self.current.reason}" if self.current.reason else ""), style="dim")
        with Vertical(id="kill-box", classes="modal-box"):
            yield Static(now)
            yield Static(detail)
            if self.applied is not None and self.applied != str(level):
                yield Static(Text(f"the trader still applies {self.applied}: it changes at its next scan",
                                  style="yellow"))
            for key, choice in KILL_KEYS.items():
                yield Static(Text.assemble((f"  {key}  ", "bold"), kill_badge(choice), "  ", choice.meaning))
            with Horizontal(classes="buttons"):
                for key, choice in KILL_KEYS.items():
                    yield Button(f"{choice.capitalize()} ({key})", id=f"kill-{choice}",
                                 variant="error" if choice is KillLevel.HALT else "default")
                yield Button("Cancel (esc)", id="kill-cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose((event.button.id or "").removeprefix("kill-"))

    def action_choose(self, level: str) -> None:
        self.dismiss(KillLevel(level) if level in KillLevel._value2member_map_ else None)


class ReasonScreen(ModalScreen[str | None]):
    """A confirmation that takes a reason: enter confirms (the reason may be empty), escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: Text | str, *, detail: str = "", confirm_label: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="reason-box", classes="modal-box"):
            yield Static(self.question if isinstance(self.question, Text) else Text(self.question, style="bold"))
            if self.detail:
                yield Static(Text(self.detail, style="dim"))
            yield Input(placeholder="reason (journaled with your name and the time)", id="reason-input")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.confirm_label} (enter)", id="reason-yes", variant="error")
                yield Button("Cancel (esc)", id="reason-no")

    def on_mount(self) -> None:
        self.query_one("#reason-input", Input).focus()

    @on(Input.Submitted, "#reason-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "reason-yes":
            self.dismiss(self.query_one("#reason-input", Input).value.strip())
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


TRADE_COLUMNS = ("#", "closed (UTC)", "side", "asset", "entry", "exit", "pnl", "pnl %", "fees", "reason", "bars")


class TradesScreen(ModalScreen[None]):
    """The closed trades from the journal, newest first, filtered by asset or exit reason as you type."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("slash", "focus_filter", "Filter", show=False)]

    def __init__(self, journal: Any) -> None:
        super().__init__()
        self.journal = journal          # a Path, or None when this session has no journal
        self.trades: list[Any] = []
        self.error = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="trades-box", classes="modal-box"):
            yield Static(Text.assemble(("trade history  ", "bold"), (str(self.journal or "no journal"), "dim"),
                                       ("   / filter · esc close", "dim")))
            yield Input(placeholder="filter: asset or exit reason (e.g. BTC, MANUAL)", id="trades-filter")
            yield DataTable(id="trades-table", zebra_stripes=True, cursor_type="row")
            yield Static("", id="trades-summary")

    def on_mount(self) -> None:
        table = self.query_one("#trades-table", DataTable)
        for column in TRADE_COLUMNS:
            table.add_column(column, key=column)
        self.query_one("#trades-summary", Static).update(Text("reading the journal …", style="dim"))
        table.focus()                   # `/` then moves to the filter
        self.load()

    @work(thread=True, exclusive=True, group="trades-load", exit_on_error=False)
    def load(self) -> None:
        from dolphin.store.journal import read_books

        trades: list[Any] = []
        error = ""
        if self.journal is None:
            error = "this session has no trader journal"
        elif not self.journal.is_file():
            error = f"no journal at {self.journal} (has the trader run?)"
        else:
            try:
                trades = read_books(self.journal).trades
            except Exception as exc:     # a corrupt journal is reported, never a crash of the terminal
                error = f"cannot read {self.journal}: {exc}"
        self.app.call_from_thread(self._loaded, trades, error)

    def _loaded(self, trades: list[Any], error: str) -> None:
        self.trades, self.error = trades, error
        self._show(self.query_one("#trades-filter", Input).value)

    @on(Input.Changed, "#trades-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._show(event.value)

    def _show(self, text: str) -> None:
        table = self.query_one("#trades-table", DataTable)
        table.clear()
        needle = text.strip().upper()
        shown = [t for t in reversed(self.trades)
                 if not needle or needle in t.asset.upper() or needle in str(t.exit_reason).upper()]
        for t in shown:
            style = "green" if t.pnl > 0 else "red" if t.pnl < 0 else ""
            table.add_row(str(t.trade_id), _when(t.exit_ts / 1000)[:-4], str(t.side), t.asset, f"{t.entry_price:.6g}",
                          f"{t.exit_price:.6g}", Text(f"{t.pnl:+.2f}", style=style), f"{t.pnl_pct * 100:+.3f}",
                          f"{t.entry_fee + t.exit_fee:.2f}", str(t.exit_reason), str(t.bars_held),
                          key=str(t.trade_id))
        summary = self.query_one("#trades-summary", Static)
        if self.error:
            summary.update(Text(self.error, style="yellow"))
            return
        total = sum(t.pnl for t in shown)
        wins = sum(1 for t in shown if t.pnl > 0)
        rate = f"{wins / len(shown) * 100:.1f}%" if shown else "—"
        summary.update(Text.assemble(f"{len(shown)} of {len(self.trades)} trades · pnl ",
                                     (f"{total:+,.2f}", "green" if total > 0 else "red" if total < 0 else ""),
                                     f" · win rate {rate}"))

    def action_focus_filter(self) -> None:
        self.query_one("#trades-filter", Input).focus()

    def action_close(self) -> None:
        self.dismiss(None)


__all__ = ["KILL_KEYS", "KILL_STYLE", "KillSwitchScreen", "ReasonScreen", "TradesScreen", "kill_badge"]
