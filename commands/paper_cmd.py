"""`dolphin paper`: the trader in the foreground, with a live status line."""

from __future__ import annotations

from typing import Annotated

import typer

from commands._output import console


def paper(
    config: Annotated[str, typer.Option("--config", help="Strategy config (blue, green or a .yml path).")] = "blue",
    venue: Annotated[str, typer.Option("--venue", help="paper: fills at the engine's price; sim: real orders "
                                                       "on the simulator exchange.")] = "paper",
) -> None:
    """Paper-trade the scans on the bus in the foreground (the `trader` program of `dolphin up`, by hand).

    Logs go to run_logs/logs/paper.log; the status line shows the last scan, capital,
    the open position and the counters. Stop with Ctrl-C: the journal keeps the books.
    """
    import os

    from rich.live import Live
    from rich.text import Text

    from dolphin.config import load_config
    from dolphin.config.services import load_services_config
    from dolphin.errors import DolphinError, UsageError
    from dolphin.paths import runtime_root
    from dolphin.services.runtime import run_service
    from dolphin.services.trader.service import run

    if venue not in ("paper", "sim"):
        raise UsageError(f"--venue must be paper or sim, got {venue!r}")
    os.environ["DOLPHIN_TRADER_STRATEGY"] = config
    os.environ["DOLPHIN_TRADER_VENUE"] = venue
    load_config(config)          # a bad config or services file is one line here, not a crash in the log
    load_services_config()
    log_file = runtime_root() / "logs" / "paper.log"
    status = Text(f"paper {config} on {venue}: connecting to the bus… (log: {log_file})")

    def on_step(core, result) -> None:
        eng, st = core.engine, core.stats
        pos = eng.open_position
        held = f"{pos.side} {pos.asset} @ {pos.entry_price:g} x{pos.leverage:.2f}" if pos else "flat"
        status.plain = (f"scan {st.last_scan_number}  capital {eng.capital:,.2f}  dd {eng.drawdown:.2%}  {held}  "
                        f"trades {len(core.trades)}  posture {eng.posture}  stale {st.stale}  dup {st.duplicates}  "
                        f"latency {st.last_latency_ms or 0:.1f} ms")

    from dolphin.store.journal import JournalCorrupt, JournalLocked

    try:
        with Live(status, console=console, refresh_per_second=4, transient=False):
            code = run_service("trader", lambda ctx: run(ctx, on_step=on_step), log_file=log_file,
                               raise_crash=True)
    except JournalLocked as exc:
        raise DolphinError(f"{exc}: the supervised trader holds this book — `dolphin svc stop trader` first, "
                           "or paper another strategy (--config)") from None
    except JournalCorrupt as exc:
        raise DolphinError(f"the trader's journal is damaged: {exc}") from None
    except (DolphinError, OSError) as exc:
        raise DolphinError(f"the trader stopped: {exc} (traceback in {log_file})") from None
    except Exception as exc:
        raise DolphinError(f"the trader crashed: {type(exc).__name__}: {exc} (traceback in {log_file})") from None
    if code:
        raise DolphinError(f"the trader stopped with an error (exit {code}); see {log_file}")
