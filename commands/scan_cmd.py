"""`dolphin scan build`: OHLCV klines → scan table (the replay input)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from commands._output import console, err_console, print_json

app = typer.Typer(help="Eigen-scan tables from klines.", no_args_is_help=True)

KlinesOpt = Annotated[Path, typer.Option(
    "--klines", help="OHLCV klines, long format (ts, symbol, open, high, low, close, volume); .parquet or .csv.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Scan table to write (.parquet).")]
BarOpt = Annotated[str | None, typer.Option(
    "--bar", help="Bar size (5s, 1m, 5m, 1h …), a multiple of the klines' interval. Default: the klines' interval.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

#: Show a progress bar only once the scan has run this long (short builds stay quiet).
_PROGRESS_AFTER_S = 2.0


class _LazyProgress:
    """A progress callback that only draws a bar (on stderr) once the build is slow enough to need one."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._progress is None:
            if time.perf_counter() - self._start < _PROGRESS_AFTER_S or done >= total:
                return
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("scanning"), BarColumn(),
                                      TextColumn("{task.completed}/{task.total} bars"),
                                      TimeRemainingColumn(), console=err_console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("scan", total=total)
        self._progress.update(self._task, completed=done)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _utc(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("build")
def build(klines: KlinesOpt, out: OutOpt, bar: BarOpt = None, json_out: JsonOpt = False) -> None:
    """Build a scan table: per bar vel_div, the window velocities, instability and every asset's close."""
    import numpy as np

    from dolphin.engine.params import ChampionParams
    from dolphin.errors import UsageError
    from dolphin.scan.definitions import DEFAULT_WINDOWS
    from dolphin.scan.table import build_scan_table
    from dolphin.store.klines import format_ms, load_close_matrix, parse_bar
    from dolphin.store.scan_table import write_scan_table

    started = time.perf_counter()
    bar_ms = parse_bar(bar) if bar is not None else None
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise UsageError(f"--out {out}: the scan table is Parquet; give a .parquet path")
    if out.exists() and klines.exists() and out.resolve() == klines.resolve():
        raise UsageError("--out must not be the --klines file")
    cm = load_close_matrix(klines, bar_ms)
    progress = _LazyProgress()
    try:
        table = build_scan_table(cm.ts, cm.symbols, cm.close, progress=progress)
    finally:
        progress.close()
    write_scan_table(out, table, metadata={
        "dolphin.kind": "scan_table", "dolphin.bar_ms": str(cm.interval_ms),
        "dolphin.windows": ",".join(str(w) for w in DEFAULT_WINDOWS), "dolphin.source": str(klines)})
    threshold = ChampionParams().vel_div_threshold
    below = int(np.count_nonzero(table.vel_div < threshold))
    seconds = time.perf_counter() - started
    summary = {
        "out": str(out), "klines": str(klines), "bars": table.rows, "assets": len(table.assets),
        "bar": format_ms(cm.interval_ms), "from": _utc(int(table.ts[0])), "to": _utc(int(table.ts[-1])),
        "vel_div_threshold": threshold, "bars_below_threshold": below,
        "bars_with_vel_div": int(np.count_nonzero(np.isfinite(table.vel_div))), "seconds": round(seconds, 3),
    }
    if json_out:
        print_json(summary)
        return
    console.print(f"[green]wrote[/] {out}")
    console.print(f"  {summary['bars']} bars × {summary['assets']} assets, bar {summary['bar']}, "
                  f"{summary['from']} → {summary['to']} UTC")
    console.print(f"  vel_div defined on {summary['bars_with_vel_div']} bars; "
                  f"{below} bars with vel_div < {threshold}")
    console.print(f"  {seconds:.1f} s")
