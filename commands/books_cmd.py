"""`dolphin trades` and `dolphin pnl`: the trader's books from its journal (what Freqtrade's /profit,
/daily and /performance answer). The journal is the books; nothing here needs the bus."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from commands._output import console, print_json

SinceOpt = Annotated[str | None, typer.Option("--since", help="Only trades closed on or after this day (YYYY-MM-DD).")]
AssetOpt = Annotated[str | None, typer.Option("--asset", help="Only this symbol (e.g. BTCUSDT).")]
JournalOpt = Annotated[Path | None, typer.Option("--journal", help="A journal file (default: the trader's).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _books(journal: Path | None, since: str | None, asset: str | None):  # noqa: ANN202 - a local helper
    import msgspec

    from dolphin.config.loader import load_config
    from dolphin.config.services import load_services_config
    from dolphin.errors import DataError
    from dolphin.execution.controls import journal_path
    from dolphin.paths import runtime_root
    from dolphin.store.journal import JournalCorrupt, read_books
    from dolphin.store.scan_table import parse_day_ms

    strategy = load_config(load_services_config().trader.strategy)
    path = journal or journal_path(runtime_root(), strategy.name)
    if not path.is_file():
        raise DataError(f"no trader journal at {path} (has the trader run? `dolphin svc status trader`)")
    try:
        books = read_books(path)
    except JournalCorrupt as exc:
        raise DataError(str(exc)) from None
    since_ms = parse_day_ms(since) if since else None
    trades = [t for t in books.trades if (since_ms is None or t.exit_ts >= since_ms)
              and (asset is None or t.asset == asset.upper())]
    return strategy, path, books, trades, msgspec


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def trades(since: SinceOpt = None, asset: AssetOpt = None, journal: JournalOpt = None, json_out: JsonOpt = False,
           limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1_000_000,
                                              help="The most recent N trades.")] = 50) -> None:
    """The closed trades, newest last: side, asset, entry/exit, PnL, fees, exit reason, time held."""
    _, path, _, chosen, msgspec = _books(journal, since, asset)
    shown = chosen[-limit:]
    if json_out:
        print_json({"journal": str(path), "total": len(chosen), "trades": [msgspec.to_builtins(t) for t in shown]})
        return
    table = Table(title=f"trades ({len(shown)} of {len(chosen)})  {path}")
    for col in ("#", "closed (UTC)", "side", "asset", "entry", "exit", "pnl", "pnl %", "fees", "reason", "bars"):
        table.add_column(col, justify="right" if col in ("#", "entry", "exit", "pnl", "pnl %", "fees", "bars")
                         else "left")
    for t in shown:
        style = "green" if t.pnl > 0 else "red"
        table.add_row(str(t.trade_id), _day(t.exit_ts), str(t.side), t.asset, f"{t.entry_price:.6g}",
                      f"{t.exit_price:.6g}", f"[{style}]{t.pnl:+.2f}[/]", f"{t.pnl_pct * 100:+.3f}",
                      f"{t.entry_fee + t.exit_fee:.2f}", t.exit_reason, str(t.bars_held))
    console.print(table)


def pnl(since: SinceOpt = None, asset: AssetOpt = None, journal: JournalOpt = None, json_out: JsonOpt = False,
        daily: Annotated[bool, typer.Option("--daily", help="PnL per day.")] = False,
        per_asset: Annotated[bool, typer.Option("--per-asset", help="PnL per pair.")] = False,
        per_exit_reason: Annotated[bool, typer.Option("--per-exit-reason", help="PnL per exit reason.")] = False,
        ) -> None:
    """Profit summary (ROI, profit factor, win rate, drawdown), or PnL per day, pair or exit reason."""
    from dolphin.backtest.metrics import compute_metrics, pnl_groups
    from dolphin.errors import UsageError

    strategy, path, books, chosen, msgspec = _books(journal, since, asset)
    views = [name for name, on in (("day", daily), ("asset", per_asset), ("exit_reason", per_exit_reason)) if on]
    if len(views) > 1:
        raise UsageError("choose one of --daily, --per-asset, --per-exit-reason")
    if views:
        groups = pnl_groups(chosen, views[0])
        if json_out:
            print_json({"journal": str(path), "by": views[0], "groups": [msgspec.to_builtins(g) for g in groups]})
            return
        table = Table(title=f"PnL per {views[0].replace('_', ' ')}  ({len(chosen)} trades)")
        for col in (views[0].replace("_", " "), "trades", "win %", "pnl", "avg", "avg %", "best", "worst", "fees"):
            table.add_column(col, justify="left" if col == views[0].replace("_", " ") else "right")
        for g in groups:
            style = "green" if g.pnl > 0 else "red"
            table.add_row(g.key, str(g.trades), f"{g.win_rate * 100:.1f}", f"[{style}]{g.pnl:+.2f}[/]",
                          f"{g.avg_pnl:+.2f}", f"{g.avg_pnl_pct * 100:+.3f}", f"{g.best:+.2f}", f"{g.worst:+.2f}",
                          f"{g.fees:.2f}")
        console.print(table)
        return
    initial = strategy.initial_capital
    final = books.capital if books.capital is not None else initial
    m = compute_metrics(initial, final, chosen, [])
    summary = {"journal": str(path), "venue": books.venue, "initial_capital": initial, "capital": final,
               "roi": m.roi, "trades": m.trades, "wins": m.wins, "losses": m.losses, "win_rate": m.win_rate,
               "profit_factor": m.profit_factor, "max_drawdown": m.max_drawdown, "fees": m.fees,
               "avg_pnl": m.avg_pnl, "exit_reasons": m.exit_reasons}
    if json_out:
        print_json(summary)
        return
    style = "green" if m.roi >= 0 else "red"
    console.print(f"capital [bold]{final:,.2f}[/] from {initial:,.2f}  ROI [{style}]{m.roi * 100:+.2f} %[/]  "
                  f"({books.venue or 'paper'}, {path})")
    pf = "—" if m.profit_factor is None else f"{m.profit_factor:.2f}"
    wr = "—" if m.win_rate is None else f"{m.win_rate * 100:.1f} %"
    console.print(f"{m.trades} trades ({m.wins} won, {m.losses} lost), win rate {wr}, profit factor {pf}, "
                  f"max drawdown {m.max_drawdown * 100:.2f} %, fees {m.fees:,.2f}")
    if m.exit_reasons:
        console.print("exits: " + ", ".join(f"{k} {v}" for k, v in m.exit_reasons.items()), style="dim")
