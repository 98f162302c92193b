"""Charts: the trader's equity over its drawdown, and vel_div against the strategy's entry gate.

Drawn with textual-plotext (`PlotextPlot`, Textualize's widget over plotext), not by
hand. Both are ordinary panels — border, age line, STALE, "never published" — fed by the
same state topics as the grid, so they refresh on push, like every panel.

* Equity: the trader's published state (``DOLPHIN_STATE_BLUE``: its capital and
  ``recent_trades``) gives the curve back to its last closes (`equity_from_recent`); the
  capital changes the screen has seen since (`TuiState.equity_history`, which in a replay
  are the journal's commits) extend it. Drawdown is from the curve's running peak
  (`dolphin.backtest.report_data`); the state's own peak/drawdown is in the caption.
* vel_div: the last scans (`TuiState.vel_div_points`) with the threshold and extreme
  lines of the loaded strategy (`StrategyView`), classified by the engine's own rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual_plotext import PlotextPlot

from dolphin.backtest.report_data import EquityCurve, curve, equity_from_recent, merge_points
from dolphin.enums import PositionSide
from tui import format as fmt
from tui.panels.alpha import signal_state
from tui.panels.base import Panel, kv_table
from tui.state import JOURNAL, SCAN, STRATEGY, StrategyView

TICKS = 5


def time_ticks(first_ms: int, last_ms: int, n: int = TICKS) -> tuple[list[float], list[str]]:
    """``n`` evenly spaced ticks (seconds) labelled HH:MM, or MM-DD HH:MM over more than a day (UTC)."""
    if last_ms <= first_ms:
        return [first_ms / 1000], [datetime.fromtimestamp(first_ms / 1000, UTC).strftime("%H:%M")]
    form = "%m-%d %H:%M" if last_ms - first_ms > 86_400_000 else "%H:%M"
    ticks = [(first_ms + (last_ms - first_ms) * i / (n - 1)) / 1000 for i in range(n)]
    return ticks, [datetime.fromtimestamp(t, UTC).strftime(form) for t in ticks]


def steps(ts_ms: list[int], values: list[float], end_ms: int | None) -> tuple[list[float], list[float]]:
    """A step line (each level held until the next point, the last until ``end_ms``) as x (s), y lists."""
    xs: list[float] = []
    ys: list[float] = []
    for i, (t, v) in enumerate(zip(ts_ms, values)):
        if i:
            xs.append(t / 1000)
            ys.append(values[i - 1])
        xs.append(t / 1000)
        ys.append(v)
    if end_ms is not None and ts_ms and end_ms > ts_ms[-1]:
        xs.append(end_ms / 1000)
        ys.append(values[-1])
    return xs, ys


class ChartPanel(Panel):
    """A panel whose extras are plots: they show only when there is something to draw."""

    DEFAULT_CLASSES = "panel chart-panel"

    def plots(self) -> list[PlotextPlot]:
        return []

    def show_plots(self, show: bool) -> None:
        for plot in self.plots():
            if plot.display != show:
                plot.display = show


class EquityChartPanel(ChartPanel):
    TITLE = "Equity & drawdown"
    TOPICS = frozenset({STRATEGY, JOURNAL})
    SOURCES = (STRATEGY,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.equity_plot = PlotextPlot(id="equity-plot", classes="chart")
        self.drawdown_plot = PlotextPlot(id="drawdown-plot", classes="chart")

    def extras(self) -> ComposeResult:
        yield self.equity_plot
        yield self.drawdown_plot

    def plots(self) -> list[PlotextPlot]:
        return [self.equity_plot, self.drawdown_plot]

    def series(self) -> tuple[EquityCurve, int | None] | None:
        """The curve and the market time it runs to (the trader's last scan), or None with nothing to draw."""
        state = self.payload(STRATEGY)
        history = self.state.equity_history()
        if state is None:
            return (curve(history), None) if history else None
        capital = fmt.finite(getattr(state, "capital", None))
        if capital is None:
            return None
        points = merge_points(equity_from_recent(capital, list(getattr(state, "recent_trades", None) or [])), history)
        end = getattr(state, "last_scan_ts", None)
        if not points:
            entry = self.entry(STRATEGY)
            points = [(int(end or (entry.basis * 1000 if entry else 0)), capital)]
        return curve(points), end

    def age_status(self, now: float) -> tuple[str, bool, bool]:
        if self.payload(STRATEGY) is None and self.state.equity_history():
            return "replay journal", False, False
        return super().age_status(now)

    def body(self, now: float) -> RenderableType:
        found = self.series()
        state = self.payload(STRATEGY)
        if found is None:
            return self.missing_text(STRATEGY)
        c, _ = found
        rows: list[tuple[str, RenderableType | str]] = []
        if state is not None:
            dd = fmt.finite(getattr(state, "drawdown", None))
            line = Text(f"{fmt.money(state.capital)}", style="bold")
            line.append(f"  peak {fmt.money(getattr(state, 'peak_capital', None))}", style="dim")
            line.append(f"  drawdown {fmt.num(dd * 100 if dd is not None else None, 2)} %",
                        style="red" if dd else "dim")
            rows.append(("capital", line))
        else:
            rows.append(("capital", Text(f"{fmt.money(c.equity[-1])}  (replay journal)", style="bold")))
        change = c.equity[-1] - c.equity[0]
        rows.append(("chart", Text.assemble(
            (f"{fmt.money(change, signed=True)}", "green" if change > 0 else "red" if change < 0 else ""),
            (f" over {len(c)} level(s) · max drawdown {c.max_drawdown * 100:.2f} %", "dim"))))
        return kv_table(rows, key_width=8)

    def refresh_extras(self, now: float) -> None:
        found = self.series()
        self.show_plots(found is not None and len(found[0]) > 0)
        if found is None or not len(found[0]):
            return
        c, end = found
        xs, equity = steps(c.ts_ms, c.equity, end)
        _, drawdown = steps(c.ts_ms, [-100.0 * d for d in c.drawdown], end)
        ticks, labels = time_ticks(int(xs[0] * 1000), int(xs[-1] * 1000))
        for plot, ys, color, label in ((self.equity_plot, equity, "cyan", "equity"),
                                       (self.drawdown_plot, drawdown, "red", "drawdown %")):
            plt = plot.plt
            plt.clear_data()
            plt.clear_figure()
            plt.plot(xs, ys, color=color, marker="braille", label=label)
            plt.xticks(ticks, labels)
            if plot is self.drawdown_plot:   # zero at the top, inside the frame
                low = min(min(ys) * 1.1, -0.01)
                plt.ylim(low, -low * 0.08)
                marks = [min(ys), min(ys) / 2, 0.0]
                plt.yticks(marks, [f"{m:.2f}" for m in marks])
            plot.refresh()


class VelDivChartPanel(ChartPanel):
    TITLE = "vel_div & entry gate"
    TOPICS = frozenset({SCAN})
    SOURCES = (SCAN,)

    def __init__(self, *args: Any, strategy: StrategyView, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategy = strategy
        self.plot = PlotextPlot(id="vel-div-plot", classes="chart")

    def extras(self) -> ComposeResult:
        yield self.plot

    def plots(self) -> list[PlotextPlot]:
        return [self.plot]

    def body(self, now: float) -> RenderableType:
        points = self.state.vel_div_points()
        cfg = self.strategy.config
        gate = (Text(f"gate unknown: {self.strategy.error}", style="yellow") if cfg is None else
                Text(f"{PositionSide.of(cfg.direction_sign).value.lower()} · threshold {cfg.signal_threshold:+.3f}"
                     f" · extreme {cfg.signal_extreme:+.3f}  ({self.strategy.source})", style="dim"))
        if not points:
            return Group(self.missing_text(SCAN), gate)
        scan, vd = points[-1]
        value = Text(fmt.num(vd, 4, signed=True), style="bold")
        if cfg is not None:
            label, style = signal_state(vd, cfg)
            value.append("  ")
            value.append(f" {label} ", style=style)
        return kv_table([("vel_div", value), ("gate", gate),
                         ("scans", Text(f"#{points[0][0]} … #{scan} ({len(points)})", style="dim"))], key_width=8)

    def refresh_extras(self, now: float) -> None:
        points = self.state.vel_div_points()
        self.show_plots(bool(points))
        if not points:
            return
        xs = [float(n) for n, _ in points]
        ys = [v for _, v in points]
        plt = self.plot.plt
        plt.clear_data()
        plt.clear_figure()
        lo, hi = min(ys), max(ys)
        cfg = self.strategy.config
        if cfg is not None:
            span = [xs[0], xs[-1]] if len(xs) > 1 else [xs[0] - 1, xs[0] + 1]
            for level, color, name in ((cfg.signal_threshold, "orange", "threshold"),
                                       (cfg.signal_extreme, "red", "extreme")):
                plt.plot(span, [level, level], color=color, marker="braille", label=f"{name} {level:+.3f}")
                lo, hi = min(lo, level), max(hi, level)
        plt.plot(xs, ys, color="cyan", marker="braille", label="vel_div")
        pad = (hi - lo) * 0.08 or 0.01
        plt.ylim(lo - pad, hi + pad)
        levels = sorted({round(v, 4) for v in (min(ys), max(ys), 0.0, *(
            (cfg.signal_threshold, cfg.signal_extreme) if cfg is not None else ()))})
        plt.yticks(levels, [f"{v:+.3f}" for v in levels])   # the gate lines read at their own values
        first, last = points[0][0], points[-1][0]
        ticks = sorted({round(first + (last - first) * i / (TICKS - 1)) for i in range(TICKS)})
        plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])
        plt.xlabel("scan number")
        self.plot.refresh()
