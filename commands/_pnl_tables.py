"""The PnL-per-group table (per day, pair or exit reason) as the terminal shows it: `dolphin pnl` and the
backtest summary print the same `pnl_groups` rows the same way."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table

from dolphin.backtest.metrics import PnlGroup

COLUMNS = ("trades", "win %", "pnl", "avg", "avg %", "best", "worst", "fees")


def pnl_group_table(groups: Sequence[PnlGroup], by: str, title: str) -> Table:
    """One row per group: trades, win %, net PnL (coloured), average, average %, best, worst, fees.

    Numbers are never cut: on a narrow terminal only the group name is shortened.
    """
    rows = [(g.key, [str(g.trades), f"{g.win_rate * 100:.1f}", f"{g.pnl:+.2f}", f"{g.avg_pnl:+.2f}",
                     f"{g.avg_pnl_pct * 100:+.3f}", f"{g.best:+.2f}", f"{g.worst:+.2f}", f"{g.fees:.2f}"], g.pnl)
            for g in groups]
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column(by.replace("_", " "), justify="left", no_wrap=True, overflow="ellipsis", min_width=6)
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="right", no_wrap=True,
                         min_width=max([len(col), *(len(cells[i]) for _, cells, _ in rows)]))
    for key, cells, pnl in rows:
        style = "green" if pnl > 0 else "red"
        table.add_row(key, *cells[:2], f"[{style}]{cells[2]}[/]", *cells[3:])
    return table
