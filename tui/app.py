"""`DolphinTui`: the operator terminal (bible §28) — one screen of panels fed by push.

Structure:

* state — `tui.state.TuiState`, the only thing panels read. Feeds write it from their
  threads: `tui.feeds.BusFeed` (entry listeners on the bus, reconnecting by itself),
  `tui.replay.ReplayFeed` (an archived span), `tui.services.SupervisorPoller` (the one
  polled source: supervisord's process table every 3 s).
* messages — the state calls `_wake_ui` from the feeding thread, which posts
  one `StateChanged` (thread-safe `post_message`); the handler drains the dirty topics
  and refreshes only the panels that show them. Bursts coalesce into one message.
* timers — a 1 s tick re-renders ages (local state only) and checks the test-results
  file's mtime (a local stat, no service involved).
* workers/threads — service actions and log reads run off the UI thread; a supervisord
  call never blocks the screen.
* screens — help, service action → confirmation, log panel (`tui.screens`); the
  operator's controls — kill switch, force exit, trade history (`tui.controls`) — each
  asking for a reason and a confirmation; a command palette entry for every action.

Nothing here calls a service: the only requests are the bus listener registrations, one
read of the shown keys per (re)connect or `r`, and the supervisord poll. The controls
write the same local files as `dolphin kill` and `dolphin trade exit`; the trader reads
them at its next scan and journals them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from dolphin.enums import KillLevel, ServiceAction
from tui.controls import KillSwitchScreen, ReasonScreen, TradesScreen, kill_badge
from tui.messages import ControlDone, ServiceActionDone, StateChanged
from tui.panels import (
    AcbPanel,
    AlphaPanel,
    CapitalPanel,
    ExtFPanel,
    HeaderPanel,
    McPanel,
    ObfPanel,
    Panel,
    ResultsFooter,
    ScanPanel,
    ServicesPanel,
    SysHealthPanel,
    TraderPanel,
)
from tui.panels.base import RenderHook
from tui.panels.live import LivePanel
from tui.screens import ConfirmScreen, HelpScreen, LogScreen, ServiceActionScreen
from tui.services import SupervisorPoller, in_background, process_by_name, run_action
from tui.state import StrategyView, TestsView, TuiState

if TYPE_CHECKING:
    from dolphin.execution.controls import TraderControls

TICK_S = 1.0
# Rows below which the panels share the height instead of taking their natural one (at 60 the
# family's panels fit; at 50 or 40 their natural heights would push a row off the screen).
COMPACT_BELOW = 60


def read_tests(path: Path, now: float) -> TestsView:
    """The footer's view of the results file (missing / unreadable / results) — never raises."""
    from dolphin.test_report import TestResultsError, TestResultsMissing, read_test_results

    try:
        return TestsView(results=read_test_results(path), path=str(path), read_at=now)
    except TestResultsMissing:
        return TestsView(missing=True, path=str(path), read_at=now)
    except TestResultsError as exc:  # the footer names the file, not its directory
        return TestsView(error=str(exc).replace(str(path), path.name), path=str(path), read_at=now)
    except Exception as exc:  # anything else is still not a crash
        return TestsView(error=f"{type(exc).__name__}: {exc}", path=str(path), read_at=now)


class DolphinTui(App[None]):
    """The live observability terminal."""

    TITLE = "DOLPHIN"
    CSS_PATH = "styles/dolphin.tcss"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh_all", "Refresh"),
        Binding("l", "log_panel", "Log"),
        Binding("t", "toggle_tests", "Tests"),
        Binding("s", "focus_services", "Services"),
        Binding("k", "kill_switch", "Kill switch"),
        Binding("x", "force_exit", "Force exit"),
        Binding("h", "trade_history", "Trades"),
        Binding("c", "charts", "Charts", show=False),   # in the help and the palette; the footer is full at 120 columns
        Binding("question_mark", "help", "Help"),
        Binding("p", "parity", "Parity", show=False),
        Binding("space", "replay_pause", "Pause", show=False),
        Binding("plus,equals_sign", "replay_speed(2.0)", "Faster", show=False),
        Binding("minus", "replay_speed(0.5)", "Slower", show=False),
    ]

    def __init__(self, *, state: TuiState | None = None, feeds: Iterable[Any] = (),
                 supervisor: SupervisorPoller | None = None, supervisor_socket: str | Path | None = None,
                 results_path: str | Path | None = None, strategy: StrategyView | None = None,
                 render_hook: RenderHook | None = None, tick_s: float = TICK_S, show_tests: bool = True,
                 controls: TraderControls | None = None, journal: str | Path | None = None) -> None:
        super().__init__()
        self.state = state if state is not None else TuiState()
        self.feeds = list(feeds)
        self.supervisor = supervisor
        self.supervisor_socket = str(supervisor_socket or (supervisor.socket_path if supervisor else ""))
        if results_path is None:
            from dolphin.test_report import results_path as default_results

            results_path = default_results()
        self.results_path = Path(results_path)
        self._results_stamp: tuple[int, int] | None = None
        self.strategy = strategy or StrategyView.load()
        self.render_hook = render_hook
        self.tick_s = tick_s
        self.show_tests = show_tests
        self.panels: list[Panel] = []
        self.refreshes = 0
        self.last_action: ServiceActionDone | None = None
        self.last_control: ControlDone | None = None
        self.controls = controls        # the family's trader files; None in a replay (controls off)
        self.journal_path = Path(journal) if journal is not None else (controls.journal if controls else None)

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        s = self.state
        header = HeaderPanel(s, id="header")
        self.services_panel = ServicesPanel(s, id="services")
        self.footer_panel = ResultsFooter(s, id="tests")
        grid = [TraderPanel(s, id="trader", strategy=self.strategy), SysHealthPanel(s, id="syshealth"), CapitalPanel(s, id="capital"),
                AlphaPanel(s, id="alpha", strategy=self.strategy), ScanPanel(s, id="scan"), AcbPanel(s, id="acb"),
                ExtFPanel(s, id="extf"), ObfPanel(s, id="obf"), McPanel(s, id="mc"), LivePanel(s, id="live")]
        self.panels = [header, *grid, self.services_panel, self.footer_panel]
        yield header
        with Grid(id="grid"):
            yield from grid
            yield self.services_panel
        yield self.footer_panel
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        """Compact rows on a short terminal (see COMPACT_BELOW)."""
        self.screen.set_class(event.size.height < COMPACT_BELOW, "-compact")

    def on_mount(self) -> None:
        self.screen.set_class(self.size.height < COMPACT_BELOW, "-compact")
        self.footer_panel.display = self.show_tests
        if self.render_hook is not None:
            for panel in self.panels:
                panel.set_render_hook(self.render_hook)
        self._load_tests()
        self._read_kill()
        self.state.set_notifier(self._wake_ui)
        for feed in self.feeds:
            feed.start()
        if self.supervisor is not None:
            self.supervisor.start()
        self.set_interval(self.tick_s, self._tick)
        self._drain()

    def on_unmount(self) -> None:
        self.state.set_notifier(None)
        for feed in self.feeds:
            try:
                feed.stop()
            except Exception:
                pass
        if self.supervisor is not None:
            self.supervisor.stop()

    # ------------------------------------------------------------ state → panels
    def _wake_ui(self) -> None:
        """Called by the state from any thread (bus reactor, pollers, replay)."""
        self.post_message(StateChanged())

    def on_state_changed(self, message: StateChanged) -> None:
        self._drain()

    def _drain(self) -> None:
        dirty = self.state.take_dirty()
        if not dirty:
            return
        self.refreshes += 1
        for panel in self.panels:
            if panel.all_topics & dirty:
                panel.refresh_view()

    def _tick(self) -> None:
        now = self.state.clock()
        for panel in self.panels:
            if panel.display:
                panel.tick(now)
        self._check_results_file()
        self._read_kill()

    def _read_kill(self) -> None:
        """The kill switch as set (one small local file); the header shows it on every screen."""
        if self.controls is not None:
            try:
                self.state.set_kill(self.controls.kill.state())
            except Exception as exc:     # never a crash of the operator's screen
                self.state.set_kill(None)
                self.log.warning(f"kill switch unreadable: {exc}")

    # ------------------------------------------------------------ the test footer file
    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.results_path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _load_tests(self) -> None:
        self._results_stamp = self._stamp()
        self.state.set_tests(read_tests(self.results_path, self.state.clock()))

    def _check_results_file(self) -> None:
        if self._stamp() != self._results_stamp:
            self._load_tests()

    # ------------------------------------------------------------ actions
    def action_refresh_all(self) -> None:
        for feed in self.feeds:
            feed.refresh()
        if self.supervisor is not None:
            self.supervisor.poke()
        self._load_tests()
        self.state.touch(*{t for p in self.panels for t in p.all_topics})
        self.notify("refreshing: bus keys re-read, supervisord polled, test results re-read", timeout=2)

    def action_toggle_tests(self) -> None:
        self.footer_panel.display = not self.footer_panel.display
        if self.footer_panel.display:
            self._load_tests()

    def action_focus_services(self) -> None:
        self.services_panel.table.focus()

    def action_parity(self) -> None:
        from tui.parity_screen import ParityScreen

        if not isinstance(self.screen, ParityScreen):
            self.push_screen(ParityScreen(self.state))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def _selected_service(self) -> str | None:
        selected = self.services_panel.selected()
        if selected is None and self.state.services.infos:
            selected = self.state.services.infos[0].fullname
        return selected

    def action_log_panel(self) -> None:
        if not self.supervisor_socket:
            self.notify("no supervisord in this session: no logs to show", severity="warning")
            return
        name = self._selected_service()
        if name is None:
            self.notify("no service to show (supervisord lists none)", severity="warning")
            return
        self.push_screen(LogScreen(self.supervisor_socket, name))

    def action_replay_pause(self) -> None:
        for feed in self.feeds:
            if hasattr(feed, "toggle_pause"):
                feed.toggle_pause()

    def action_replay_speed(self, factor: float) -> None:
        for feed in self.feeds:
            if hasattr(feed, "set_speed"):
                feed.set_speed(feed.clock.speed * factor)

    # ------------------------------------------------------------ service control
    @on(DataTable.RowSelected, "#services-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.offer_actions(str(event.row_key.value))

    def offer_actions(self, fullname: str | None = None, action: ServiceAction | None = None) -> None:
        """Choose an action for a service (unless given), confirm it, run it off the UI thread."""
        fullname = fullname or self._selected_service()
        if fullname is None or not self.supervisor_socket:
            self.notify("no service selected (is supervisord running?)", severity="warning")
            return
        info = process_by_name(self.state.services.infos, fullname)
        description = f"{info.state} pid {info.pid or '-'}" if info is not None else ""

        def confirm(chosen: ServiceAction | None) -> None:
            if not chosen:
                return

            def go(yes: bool | None) -> None:
                if yes:
                    self.run_service_action(fullname, chosen)

            self.push_screen(ConfirmScreen(f"{chosen.capitalize()} {fullname}?"), go)

        if action is not None:
            confirm(action)
        else:
            self.push_screen(ServiceActionScreen(fullname, description), confirm)

    def run_service_action(self, fullname: str, action: ServiceAction) -> None:
        socket = self.supervisor_socket
        self.notify(f"{action} {fullname} …", timeout=3)

        def work() -> None:
            try:
                detail = run_action(socket, fullname, action).summary()
                ok = True
            except Exception as exc:
                detail, ok = f"{action} {fullname} failed: {exc}", False
            self.post_message(ServiceActionDone(fullname, action, ok, detail))

        in_background(work, f"tui-{action}")

    def on_service_action_done(self, message: ServiceActionDone) -> None:
        self.last_action = message
        self.notify(message.detail, severity="information" if message.ok else "error",
                    timeout=5 if message.ok else 15)
        if self.supervisor is not None:
            self.supervisor.poke()

    # ------------------------------------------------------------ operator controls
    def _trader_state(self) -> Any:
        from dolphin.bus import schema

        entry = self.state.entry(schema.STATE_BLUE, schema.LATEST)
        return entry.payload if entry is not None else None

    def _no_controls(self) -> None:
        self.notify("the controls act on a live family's trader (not in a replay)", severity="warning")

    def action_kill_switch(self) -> None:
        """Choose a level, give a reason, confirm; the trader applies it at its next scan (journaled)."""
        if self.controls is None:
            self._no_controls()
            return
        current = self.controls.kill.state()
        trader = self._trader_state()
        applied = getattr(trader, "kill_level", None) if trader is not None else None

        def chosen(level: KillLevel | None) -> None:
            if level is None:
                return
            question = Text.assemble("Set the kill switch to ", kill_badge(level), "?")

            def go(reason: str | None) -> None:
                if reason is not None:
                    self._engage(level, reason)

            self.push_screen(ReasonScreen(question, detail=level.meaning, confirm_label=level.capitalize()), go)

        self.push_screen(KillSwitchScreen(current, applied), chosen)

    def _engage(self, level: KillLevel, reason: str) -> None:
        controls = self.controls
        assert controls is not None

        def work() -> None:
            try:
                state = controls.kill.engage(level, reason=reason, by=_operator("tui"))
                effective = controls.kill.state()
                detail = f"kill switch {state.level.upper()}: {state.level.meaning}"
                if effective.level is not state.level:
                    detail += f" — but {controls.kill.path} still holds it at halt"
                self.post_message(ControlDone("kill", True, detail))
            except Exception as exc:
                self.post_message(ControlDone("kill", False, f"kill switch not set: {exc}"))

        in_background(work, "tui-kill")

    def action_force_exit(self) -> None:
        """Close the open position at the trader's next scan, through the engine's exit path (MANUAL)."""
        if self.controls is None:
            self._no_controls()
            return
        trader = self._trader_state()
        position = getattr(trader, "open_position", None) if trader is not None else None
        if position is None:
            self.notify("no open position to close (per the trader's last state on the bus)", severity="warning")
            return
        question = Text.assemble("Force exit ", (f"{position.side} {position.asset}", "bold"),
                                 f" (entered @ {position.entry_price:.6g}, notional {position.notional:,.2f})?")

        def go(reason: str | None) -> None:
            if reason is not None:
                self._request_exit(position.asset, reason)

        self.push_screen(ReasonScreen(question, detail="the trader closes it at its next scan, exit reason MANUAL",
                                      confirm_label="Close it"), go)

    def _request_exit(self, asset: str, reason: str) -> None:
        controls = self.controls
        assert controls is not None

        def work() -> None:
            try:
                request = controls.exits.submit(asset, reason=reason, by=_operator("tui"))
                self.post_message(ControlDone("exit", True, f"force exit of {asset} requested ({request.id}); "
                                                            "the trader takes it at its next scan"))
            except Exception as exc:
                self.post_message(ControlDone("exit", False, f"force exit not requested: {exc}"))

        in_background(work, "tui-exit")

    def on_control_done(self, message: ControlDone) -> None:
        self.last_control = message
        self.notify(message.detail, severity="information" if message.ok else "error",
                    timeout=6 if message.ok else 15)
        self._read_kill()

    def action_charts(self) -> None:
        from tui.charts_screen import ChartsScreen

        if not isinstance(self.screen, ChartsScreen):
            self.push_screen(ChartsScreen(self.state, self.strategy))

    def action_trade_history(self) -> None:
        if not isinstance(self.screen, TradesScreen):
            self.push_screen(TradesScreen(self.journal_path))

    # ------------------------------------------------------------ command palette
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Refresh", "Re-read the bus keys, poll supervisord, re-read test results",
                            self.action_refresh_all)
        yield SystemCommand("Log panel", "Tail the selected service's log (supervisord)", self.action_log_panel)
        yield SystemCommand("Toggle test footer", "Show/hide the latest `dolphin test --report`",
                            self.action_toggle_tests)
        yield SystemCommand("Focus services", "Move to the services table", self.action_focus_services)
        for action in ServiceAction:
            yield SystemCommand(f"{action.capitalize()} service", f"{action.capitalize()} the selected service "
                                "(asks for confirmation)", _bind(self.offer_actions, None, action))
        yield SystemCommand("Kill switch", "Pause / reduce / halt / clear the trader (reason + confirmation)",
                            self.action_kill_switch)
        yield SystemCommand("Force exit", "Close the open position at the next scan (reason + confirmation)",
                            self.action_force_exit)
        yield SystemCommand("Trade history", "The closed trades from the journal, filterable", self.action_trade_history)
        yield SystemCommand("Parity and strategy health", "Live vs replay (coverage, missed/extra trades by cause) "
                            "and the strategy's decay gauges", self.action_parity)
        yield SystemCommand("Charts", "Equity and drawdown, vel_div against the entry gate", self.action_charts)
        yield SystemCommand("Help", "Keys and what the colours mean", self.action_help)


def _bind(fn: Callable[..., None], *args: Any) -> Callable[[], None]:
    return lambda: fn(*args)


def _operator(via: str) -> str:
    """Who set it, for the journal: the login name and where from."""
    from dolphin.execution.kill_switch import _who

    return f"{_who()} (tui)" if via == "tui" else _who()


def build_live_app(*, socket_path: str | Path | None = None, results_path: str | Path | None = None,
                   settings: Any = None, clock: Callable[[], float] = time.time, poll_s: float | None = None,
                   feed_options: dict[str, Any] | None = None, **app_options: Any) -> DolphinTui:
    """The app wired to the live bus and the family's supervisord (what `dolphin tui` runs)."""
    from tui.feeds import BusFeed
    from tui.services import POLL_INTERVAL_S, default_socket

    state = TuiState(clock=clock)
    feed = BusFeed(state, settings, **(feed_options or {}))
    socket = Path(socket_path) if socket_path is not None else default_socket()
    poller = SupervisorPoller(state, socket, interval_s=poll_s or POLL_INTERVAL_S)
    if "controls" not in app_options:
        app_options["controls"] = _configured_controls()
    state.set_bar_interval(_configured_bar_s())
    return DolphinTui(state=state, feeds=[feed], supervisor=poller, results_path=results_path,
                      strategy=app_options.pop("strategy", None) or StrategyView.load(), **app_options)


def _configured_bar_s() -> float | None:
    """The scanner's bar interval from services.yml (None when it does not load: default thresholds)."""
    from dolphin.config.services import load_services_config
    from dolphin.errors import DolphinError

    try:
        return float(load_services_config().scanner.bar_seconds)
    except (DolphinError, OSError):
        return None


def _configured_controls() -> TraderControls | None:
    """The family's trader files; None (controls off, said on use) when the configs do not load."""
    from dolphin.errors import DolphinError
    from dolphin.execution.controls import TraderControls

    try:
        return TraderControls.configured()
    except (DolphinError, OSError):
        return None


def build_replay_app(path: str | Path, *, speed: float = 1.0, journal: str | Path | None = None,
                     results_path: str | Path | None = None, **app_options: Any) -> DolphinTui:
    """The app driven by an archived span (`dolphin tui --replay PATH`)."""
    from tui.replay import ReplayClock, ReplayFeed, TraderJournalReader, open_archive

    archive = open_archive(path)
    clock = ReplayClock(speed=speed)
    state = TuiState(clock=clock.now)
    reader = TraderJournalReader(journal) if journal is not None else None
    feed = ReplayFeed(state, archive, clock, journal=reader)
    return DolphinTui(state=state, feeds=[feed], results_path=results_path, journal=journal,
                      strategy=app_options.pop("strategy", None) or StrategyView.load(), **app_options)


__all__ = ["DolphinTui", "build_live_app", "build_replay_app", "read_tests"]
