"""The HTML report: one self-contained file (PNGs inlined as base64, no script, no network) plus the PNGs.

`write_html_report(data, DIR)` writes, atomically:

- ``DIR/equity.png`` — equity with drawdown; ``DIR/vel_div.png`` — vel_div with the gate and
  the trades (absent without scans); ``DIR/daily_pnl.png`` — daily PnL bars;
- ``DIR/report.html`` — a summary, the three pictures, the per-pair and per-exit-reason
  tables (`pnl_groups`), and the series drawn as JSON (``<script type="application/json"
  id="report-data">``) so a tool can read the numbers without the pictures.

Table cells carry the exact value in ``data-value`` (Python ``repr``); the text is rounded.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dolphin.backtest.metrics import PnlGroup
from dolphin.backtest.report_data import ReportData
from dolphin.store.atomic import atomic_write_bytes, atomic_write_text

Progress = Callable[[str, int, int], None]
CHARTS = ("equity", "vel_div", "daily_pnl")
GROUP_COLUMNS = ("trades", "win %", "pnl", "avg", "avg %", "best", "worst", "fees")

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto; max-width: 1140px;
       color: #222; padding: 0 12px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 17px; margin-top: 28px; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e3e3e3; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f5f5; }
td.up { color: #2e7d32; } td.down { color: #c62828; }
table.summary td:first-child { color: #555; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #8a6d00; background: #fff8e1; padding: 6px 10px; border-radius: 4px; }
"""


@dataclass(frozen=True)
class HtmlReport:
    html: Path
    pngs: dict[str, Path]


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.2f} %"


def _num(x: float | None, fmt: str = "{:.3f}") -> str:
    return "—" if x is None or not math.isfinite(x) else fmt.format(x)


def _summary_rows(data: ReportData) -> list[tuple[str, str]]:
    m = data.metrics
    rows = [
        ("source", data.source),
        ("span", f"{_iso(data.span_start_ms)} → {_iso(data.span_end_ms)} ({len(data.days)} day(s))"),
        ("capital", f"{m.initial_capital:,.2f} → {m.final_capital:,.2f}"),
        ("ROI", _pct(m.roi)),
        ("profit factor", _num(m.profit_factor)),
        ("Sharpe (daily, √365)", _num(m.sharpe, "{:.2f}")),
        ("max drawdown", f"{m.max_drawdown * 100:.2f} %"),
        ("max drawdown (curve)", f"{data.equity.max_drawdown * 100:.2f} %"),
        ("win rate", "—" if m.win_rate is None else f"{m.win_rate * 100:.2f} %"),
        ("trades", f"{m.trades} ({m.wins} won, {m.losses} lost)"),
        ("fees", f"{m.fees:,.2f}"),
    ]
    if data.threshold is not None and data.extreme is not None:
        rows.append(("entry gate", f"{data.direction} · threshold {data.threshold:+.4f} · extreme {data.extreme:+.4f}"))
    if data.open_position:
        rows.append(("open at end", data.open_position))
    return rows


def _cell(value: float, text: str, signed: bool = False) -> str:
    cls = ' class="up"' if signed and value > 0 else ' class="down"' if signed and value < 0 else ""
    return f'<td{cls} data-value="{value!r}">{html.escape(text)}</td>'


def group_table(groups: list[PnlGroup], key_label: str, table_id: str) -> str:
    """One `pnl_groups` table (the same columns as `dolphin pnl --per-asset`)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (key_label, *GROUP_COLUMNS))
    body = []
    for g in groups:
        body.append(
            f'<tr data-key="{html.escape(g.key)}"><td>{html.escape(g.key)}</td>'
            + _cell(g.trades, str(g.trades)) + _cell(g.win_rate, f"{g.win_rate * 100:.1f}")
            + _cell(g.pnl, f"{g.pnl:+,.2f}", True) + _cell(g.avg_pnl, f"{g.avg_pnl:+,.2f}", True)
            + _cell(g.avg_pnl_pct, f"{g.avg_pnl_pct * 100:+.3f}", True) + _cell(g.best, f"{g.best:+,.2f}", True)
            + _cell(g.worst, f"{g.worst:+,.2f}", True) + _cell(g.fees, f"{g.fees:,.2f}") + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(GROUP_COLUMNS) + 1}">no closed trades</td></tr>')
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def series_json(data: ReportData) -> dict[str, object]:
    """The numbers behind the pictures (what a test or a tool reads instead of pixels)."""
    marks = data.marks()
    vd = data.vel_div
    return {
        "title": data.title, "strategy": data.strategy, "source": data.source,
        "initial_capital": data.initial_capital, "final_capital": data.final_capital,
        "trades": len(data.trades),
        "equity": {"ts_ms": data.equity.ts_ms, "equity": data.equity.equity, "drawdown": data.equity.drawdown,
                   "max_drawdown": data.equity.max_drawdown},
        "daily_pnl": [{"date": d, "pnl": p, "trades": n} for d, p, n in data.daily_pnl()],
        "vel_div": None if vd is None else {
            "scans": len(vd), "source": vd.source, "first_ts_ms": int(vd.ts_ms[0]), "last_ts_ms": int(vd.ts_ms[-1]),
            "min": float(vd.vel_div.min()), "max": float(vd.vel_div.max()),
            "threshold": data.threshold, "extreme": data.extreme},
        "entries": {"ts_ms": marks.entry_ts, "vel_div": marks.entry_vd},
        "exits": {"ts_ms": marks.exit_ts, "vel_div": marks.exit_vd},
    }


def render_html(data: ReportData, pngs: dict[str, bytes | None]) -> str:
    """The whole page; pictures inlined, nothing fetched when it opens."""

    def picture(name: str, alt: str) -> str:
        png = pngs.get(name)
        if png is None:
            return f'<p class="note" id="{name}-missing">{html.escape(alt)}: no data to draw.</p>'
        encoded = base64.b64encode(png).decode("ascii")
        return f'<img id="{name}-chart" alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'

    summary = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in _summary_rows(data))
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in data.notes)
    payload = json.dumps(series_json(data), allow_nan=False, default=float).replace("</", "<\\/")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DOLPHIN report — {html.escape(data.title)}</title>
<style>{CSS}</style></head>
<body>
<h1>{html.escape(data.title)}</h1>
<p class="sub">generated {generated} by dolphin</p>
{notes}
<table class="summary" id="summary">{summary}</table>
<h2>Equity and drawdown</h2>
{picture("equity", "equity curve with drawdown")}
<h2>vel_div, entries and exits</h2>
{picture("vel_div", "vel_div with the entry gate, entries and exits")}
<h2>Daily PnL</h2>
{picture("daily_pnl", "daily PnL bars")}
<h2>Per pair</h2>
{group_table(data.per_pair, "pair", "per-pair")}
<h2>Per exit reason</h2>
{group_table(data.per_exit_reason, "exit reason", "per-exit-reason")}
<script type="application/json" id="report-data">{payload}</script>
</body></html>
"""


def prepare_report_dir(out_dir: str | Path) -> Path:
    """The report directory, created; a path that is a file (or cannot be created) is a `UsageError`."""
    from dolphin.errors import UsageError

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--report/--out {out}: is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--report/--out {out}: cannot create the directory ({exc.strerror})") from None
    return out


def write_html_report(data: ReportData, out_dir: str | Path, progress: Progress | None = None) -> HtmlReport:
    """Draw the charts, then write the PNGs and the page (each atomically) under ``out_dir``."""
    from dolphin.backtest.report_charts import daily_png, equity_png, vel_div_png

    out = prepare_report_dir(out_dir)
    drawers = {"equity": equity_png, "vel_div": vel_div_png, "daily_pnl": daily_png}
    pngs: dict[str, bytes | None] = {}
    for i, name in enumerate(CHARTS):
        pngs[name] = drawers[name](data)
        if progress is not None:
            progress("draw", i + 1, len(CHARTS))
    written = {name: atomic_write_bytes(out / f"{name}.png", png) for name, png in pngs.items() if png is not None}
    stale = [out / f"{name}.png" for name, png in pngs.items() if png is None]
    for path in stale:   # a picture from an earlier report in this directory must not pass for this one's
        path.unlink(missing_ok=True)
    page = atomic_write_text(out / "report.html", render_html(data, pngs))
    if progress is not None:
        progress("write", 1, 1)
    return HtmlReport(html=page, pngs=written)
