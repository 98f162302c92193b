"""`dolphin tui [--replay PATH [--speed X] [--journal FILE]]`: the live observability terminal (bible §28)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def run_tui(*, socket: Path | None = None, replay: Path | None = None, speed: float = 1.0,
            journal: Path | None = None, no_tests: bool = False) -> None:
    """Build and run the app (also what a plain `dolphin up` opens once the family runs)."""
    from dolphin.errors import UsageError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("dolphin tui needs a terminal (stdin and stdout must be a TTY)")
    _log_to_file()
    if replay is not None:
        from tui.app import build_replay_app

        app = build_replay_app(replay, speed=speed, journal=journal, show_tests=not no_tests)
    else:
        from tui.app import build_live_app

        app = build_live_app(socket_path=socket, show_tests=not no_tests)
    app.run()


def _log_to_file() -> None:
    """Warnings (a lost bus, rejected values) go to <runtime root>/logs/tui.log, never onto the screen."""
    import logging
    from logging.handlers import RotatingFileHandler

    from dolphin.paths import runtime_root

    logs = runtime_root() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(logs / "tui.log", maxBytes=1_000_000, backupCount=2)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def tui(
    replay: Annotated[Path | None, typer.Option("--replay", help="Replay an archived span: a directory of Arrow "
                                                  "scan files or a scan table (.parquet).")] = None,
    speed: Annotated[float, typer.Option("--speed", min=0.01, max=100_000.0,
                                         help="Replay speed: market seconds per wall second.")] = 1.0,
    journal: Annotated[Path | None, typer.Option("--journal", help="Trade journal to replay with the scans.")]
    = None,
    socket: Annotated[Path | None, typer.Option("--socket", help="supervisord socket (default: the family's).")]
    = None,
    no_tests: Annotated[bool, typer.Option("--no-tests", help="Start with the test footer hidden.")] = False,
) -> None:
    """The operator terminal: every panel live from the bus, services from supervisord, tests in the footer.

    Keys: q quit · r refresh · l log · t tests · s services (enter: start/stop/restart) · ? help.
    """
    from dolphin.errors import UsageError

    if replay is None and journal is not None:
        raise UsageError("--journal goes with --replay")
    run_tui(socket=socket, replay=replay, speed=speed, journal=journal, no_tests=no_tests)
