"""Entry point of the `dolphin` console script.

`main()` runs the Typer app and turns operator errors (`DolphinError`) into one
readable line on stderr with the error's exit code. The edges raise typed errors with
their own codes (a config file: 3, a data file: 6); an `OSError` or a decode error that
reaches this handler is still the environment's doing, not a bug: one line naming the
file, exit 1. Anything else is a bug: reported in one line too, with the full traceback
only when DOLPHIN_DEBUG=1.
"""

from __future__ import annotations

import os
import sys

import typer

from commands import (
    backtest_cmd,
    books_cmd,
    config_cmd,
    family_cmd,
    health_cmd,
    hz_cmd,
    kill_cmd,
    live_cmd,
    mc_cmd,
    obf_cmd,
    paper_cmd,
    parity_cmd,
    report_cmd,
    risk_cmd,
    scan_cmd,
    sim_cmd,
    svc_cmd,
    test_cmd,
    trade_cmd,
    tui_cmd,
)
from commands._output import fail_line
from dolphin.errors import DolphinError
from dolphin.paths import display_path

app = typer.Typer(
    name="dolphin",
    help="DOLPHIN: operator toolkit for a systematic crypto-perpetuals trading system.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
# the engine and its data
app.add_typer(config_cmd.app, name="config")
app.add_typer(scan_cmd.app, name="scan")
app.command("backtest")(backtest_cmd.backtest)
# the bus and the market
app.add_typer(hz_cmd.app, name="hz")
app.command("sim")(sim_cmd.sim)
# the daemon family
app.command("up")(family_cmd.up)
app.command("down")(family_cmd.down)
app.add_typer(svc_cmd.app, name="svc")
app.add_typer(health_cmd.app, name="health")
app.add_typer(obf_cmd.app, name="obf")
app.command("paper")(paper_cmd.paper)
app.add_typer(risk_cmd.app, name="risk")
app.add_typer(kill_cmd.app, name="kill")
app.add_typer(live_cmd.app, name="live")
app.command("preflight")(live_cmd.preflight)
app.add_typer(trade_cmd.app, name="trade")
app.command("trades")(books_cmd.trades)
app.command("pnl")(books_cmd.pnl)
app.add_typer(mc_cmd.app, name="mc")
app.command("parity")(parity_cmd.parity)
app.command("report")(report_cmd.report)
# the operator's screen and the test report
app.command("tui")(tui_cmd.tui)
app.command("test")(test_cmd.test)

def environment_error_line(exc: OSError | UnicodeDecodeError) -> str:
    """One line for a file the OS refused or that is not text (never a traceback)."""
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not {exc.encoding} text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    name = exc.filename if exc.filename is not None else ""
    target = f"{display_path(name)}: " if name != "" else ""
    return f"{target}{exc.strerror or exc or type(exc).__name__}"


def main() -> None:
    debug = os.environ.get("DOLPHIN_DEBUG") == "1"
    try:
        app()
    except DolphinError as exc:
        if debug:
            raise
        fail_line(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        fail_line("interrupted")
        sys.exit(130)
    except (OSError, UnicodeDecodeError) as exc:
        if debug:
            raise
        fail_line(environment_error_line(exc))
        sys.exit(DolphinError.exit_code)
    except Exception as exc:  # a bug, not an operator error
        if debug:
            raise
        fail_line(f"internal error: {type(exc).__name__}: {exc} (set DOLPHIN_DEBUG=1 for the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
