"""`dolphin trade exit SYMBOL|all [--reason]`: an operator's force exit, through the engine's exit path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from commands._output import console, print_json

app = typer.Typer(help="Act on the trader's positions (through the engine, journaled).", no_args_is_help=True)


@app.command("exit")
def exit_position(
    symbol: Annotated[str, typer.Argument(help="The position's symbol (e.g. BTCUSDT), or `all`.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (journaled with who and when).")] = "",
    wait: Annotated[float, typer.Option("--wait", min=0.0, max=3600.0,
                                        help="Seconds to wait for the trader to close it (0: return at once).")] = 60.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Close a position at the trader's next scan with exit reason MANUAL (the engine's own exit path)."""
    from dolphin.errors import UsageError
    from dolphin.execution.manual import ExitRequests
    from dolphin.paths import runtime_root

    if not symbol.strip() or (symbol.lower() != "all" and not symbol.isalnum()):
        raise UsageError(f"not a symbol: {symbol!r} (e.g. BTCUSDT, or all)")
    home = runtime_root()
    request = ExitRequests.under(home).submit(symbol, reason=reason)
    outcome = _wait_for(home, request.id, wait) if wait > 0 else None
    if json_out:
        print_json({"request": request.id, "asset": request.asset, "reason": request.reason, "by": request.by,
                    "outcome": outcome})
        return
    target = "whatever position is open" if request.asset == "*" else request.asset
    if outcome is None:
        console.print(f"force exit of {target} requested ({request.id}); the trader takes it at its next scan")
    elif not outcome["applied"]:
        console.print(f"[yellow]the trader took the request but had nothing to close[/] (asked: {target})")
    elif outcome.get("trade") is None:
        console.print(f"the trader will close {outcome['asset']} at its next traded bar (MANUAL)")
    else:
        t = outcome["trade"]
        console.print(f"[green]closed[/] #{t['trade_id']} {t['side']} {t['asset']} @ {t['exit_price']:.6g}: "
                      f"pnl {t['pnl']:+.2f} (MANUAL)")


def _wait_for(home: Path, request_id: str, seconds: float) -> dict[str, Any] | None:
    """Follow the journal until the request is taken (and its trade closed), or the time is up."""
    from dolphin.execution.controls import TraderControls
    from dolphin.store.journal import Journal, ManualExitRecord, TradeRecord

    path = TraderControls.configured(home).journal
    deadline = time.monotonic() + seconds
    taken: ManualExitRecord | None = None
    while time.monotonic() < deadline:
        if path.is_file():
            for r in Journal(path).iter_records():
                if isinstance(r, ManualExitRecord) and r.request_id == request_id:
                    taken = r
                elif taken is not None and taken.applied and isinstance(r, TradeRecord) \
                        and r.trade.get("exit_reason") == "MANUAL" and r.scan_number >= taken.scan_number:
                    return {"applied": True, "asset": taken.asset, "trade": r.trade}
        if taken is not None and not taken.applied:
            return {"applied": False, "asset": taken.asset, "trade": None}
        time.sleep(0.5)
    return None if taken is None else {"applied": taken.applied, "asset": taken.asset, "trade": None}
