"""The report's pictures as PNG bytes, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Why matplotlib: it is the long-kept standard for static charts, its Agg renderer needs no
display, browser or external binary, and a PNG embeds in one HTML file as base64, so a
report opens offline anywhere. Figures are built on `matplotlib.figure.Figure` with their
own `FigureCanvasAgg` — never `pyplot` — so drawing is thread-safe and leaves no global
figure behind. Every series comes from `dolphin.backtest.report_data`; nothing is computed here.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dolphin.backtest.report_data import ReportData

WIDTH_IN, DPI = 11.0, 100          # 1100 px wide
UP, DOWN, LINE, MUTED = "#2e7d32", "#c62828", "#1f4e79", "#888888"


def _figure(height_in: float, rows: int = 1, ratios: list[float] | None = None) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": ratios} if ratios else None)[:, 0]
    for ax in axes:
        ax.grid(True, color="#e6e6e6", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, list(axes)


def _dates(ts_ms: Any) -> np.ndarray:
    return np.asarray(ts_ms, dtype="int64").astype("datetime64[ms]")


def _date_axis(ax: Any) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def equity_png(data: ReportData) -> bytes:
    """Equity (step line from each close) over drawdown (area below zero, %)."""
    fig, (top, bottom) = _figure(5.0, rows=2, ratios=[3.0, 1.2])
    curve = data.equity
    ts, equity, dd = list(curve.ts_ms), list(curve.equity), [-100.0 * d for d in curve.drawdown]
    if ts and data.span_end_ms > ts[-1]:   # hold the last level to the end of the span
        ts.append(data.span_end_ms)
        equity.append(equity[-1])
        dd.append(dd[-1])
    x = _dates(ts)
    top.step(x, equity, where="post", color=LINE, linewidth=1.4, label="equity")
    top.axhline(data.initial_capital, color=MUTED, linestyle="--", linewidth=0.8, label="initial capital")
    top.set_ylabel("capital")
    top.set_title(f"Equity — {data.strategy}: {data.initial_capital:,.2f} → {data.final_capital:,.2f}  "
                  f"({len(data.trades)} trades)", loc="left", fontsize=11)
    top.legend(loc="best", fontsize=8, frameon=False)
    bottom.fill_between(x, dd, 0.0, step="post", color=DOWN, alpha=0.35, linewidth=0)
    bottom.step(x, dd, where="post", color=DOWN, linewidth=0.9)
    bottom.set_ylabel("drawdown %")
    bottom.set_title(f"max drawdown {curve.max_drawdown * 100:.2f} %", loc="left", fontsize=9)
    _date_axis(bottom)
    return _png(fig)


def vel_div_png(data: ReportData) -> bytes | None:
    """vel_div per scan (min/max-decimated), the entry gate's threshold and extreme, entries and exits."""
    series = data.vel_div
    if series is None or not len(series):
        return None
    fig, (ax,) = _figure(4.2)
    ts, vd = series.decimated()
    ax.plot(_dates(ts), vd, color=LINE, linewidth=0.6, label=f"vel_div ({len(series):,} scans)")
    ax.axhline(0.0, color=MUTED, linewidth=0.6)
    if data.threshold is not None:
        ax.axhline(data.threshold, color="#ef6c00", linestyle="--", linewidth=1.0,
                   label=f"threshold {data.threshold:+.3f}")
    if data.extreme is not None:
        ax.axhline(data.extreme, color=DOWN, linestyle="--", linewidth=1.0, label=f"extreme {data.extreme:+.3f}")
    marks = data.marks()
    if marks.entry_ts:
        ax.scatter(_dates(marks.entry_ts), marks.entry_vd, marker="v" if data.direction == "short" else "^",
                   s=36, color="#6a1b9a", zorder=3, label=f"entries ({len(marks.entry_ts)})")
    if marks.exit_ts:
        ax.scatter(_dates(marks.exit_ts), marks.exit_vd, marker="o", s=22, facecolors="none", edgecolors=UP,
                   linewidths=1.2, zorder=3, label=f"exits ({len(marks.exit_ts)})")
    ax.set_ylabel("vel_div")
    ax.set_title("vel_div with entries and exits" + (f" — {series.source}" if series.source else ""), loc="left",
                 fontsize=11)
    ax.legend(loc="lower left", fontsize=8, frameon=False, ncols=3)
    _date_axis(ax)
    return _png(fig)


def daily_png(data: ReportData) -> bytes:
    """Net PnL of the trades closed each UTC day (green up, red down)."""
    rows = data.daily_pnl()
    fig, (ax,) = _figure(3.4)
    labels = [d for d, _, _ in rows]
    values = [p for _, p, _ in rows]
    ax.bar(range(len(rows)), values, color=[UP if v > 0 else DOWN for v in values], width=0.7)
    ax.axhline(0.0, color=MUTED, linewidth=0.6)
    step = max(1, len(labels) // 15)
    ax.set_xticks(range(0, len(labels), step), [labels[i][5:] if len(labels) > 7 else labels[i]
                                                for i in range(0, len(labels), step)], fontsize=8)
    ax.set_ylabel("net PnL")
    ax.set_title(f"Daily PnL — {len(rows)} day(s), total {sum(values):+,.2f}", loc="left", fontsize=11)
    return _png(fig)
