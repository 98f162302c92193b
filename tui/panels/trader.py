"""Trader: open position, session PnL (``DOLPHIN_PNL_BLUE``), last trades, last scan (§28.2, §28.7).

The position and recent trades come from the trader's engine state
(``DOLPHIN_STATE_BLUE["latest"].engine_state``, a raw JSON document the engine owns) when
it carries them, or from the journal in a replay; otherwise the panel says so.
"""

from __future__ import annotations

from typing import Any

import msgspec
from rich.console import Group, RenderableType
from rich.text import Text

from tui import format as fmt
from tui.panels.base import STATUS_STYLE, Panel, kv_table
from tui.state import JOURNAL, OB_MACRO, OBF, PNL, SCAN, STRATEGY, StrategyView

_POSITION_KEYS = ("open_position", "position")
_TRADES_KEYS = ("last_trades", "recent_trades", "trades")


def _decode_engine_state(payload: Any) -> dict[str, Any] | None:
    raw = getattr(payload, "engine_state", None)
    if raw is None:
        return None
    try:
        doc = msgspec.json.decode(bytes(raw))
    except Exception:
        return None
    return doc if isinstance(doc, dict) else None


def position_text(pos: Any) -> Text:
    """Side, asset, leverage and notional: the position's first line."""
    if not isinstance(pos, dict):
        return Text("flat", style="dim")
    side = fmt.text(pos.get("side"), 6)
    out = Text()
    out.append(f"{side} ", style="bold red" if side == "SHORT" else "bold green")
    out.append(fmt.text(pos.get("asset") or pos.get("symbol"), 14), style="bold")
    lev = fmt.finite(pos.get("leverage"))
    if lev is not None:
        out.append(f"  {lev:.2f}x")
    notional = fmt.finite(pos.get("notional"))
    if notional is not None:
        out.append(f"  size {fmt.money(notional)}", style="dim")
    return out


def _held_words(pos: dict[str, Any], scan: Any, bar_s: float | None) -> tuple[str, int | None]:
    """"6 bars (30 s)" since the entry scan (the engine counts max hold in bars), and the bar count."""
    entry_scan = pos.get("entry_scan")
    if scan is None or not isinstance(entry_scan, int) or scan.scan_number < entry_scan:
        return "", None
    bars = scan.scan_number - entry_scan
    return (f"{bars} bars" + (f" ({fmt.age(bars * bar_s)})" if bar_s else "")), bars


def position_rows(pos: Any, scan: Any, strategy: StrategyView | None, *, bar_s: float | None = None,
                  obf: Any = None, macro: Any = None) -> list[tuple[str, RenderableType]]:
    """The open position, one labelled row per fact (issue 15 §2), in the engine's own numbers (§7.1).

    position: side, asset, leverage, size · entry → mark · unrealised PnL · held and bars to max hold ·
    TP and SL with their distances · the asset's book and the market's OB regime.
    """
    rows: list[tuple[str, RenderableType]] = [("position", position_text(pos))]
    if not isinstance(pos, dict):
        return rows
    asset = pos.get("asset") or pos.get("symbol")
    entry, notional = fmt.finite(pos.get("entry_price")), fmt.finite(pos.get("notional"))
    mark = scan.price_map().get(asset) if scan is not None and isinstance(asset, str) else None
    line = Text(fmt.price(entry))
    line.append(f"  mark {fmt.price(mark)}" if mark is not None else "  mark —", style="" if mark else "dim")
    rows.append(("entry", line))
    held_words, bars = _held_words(pos, scan, bar_s)
    if (mark is not None and entry and notional is not None and pos.get("side") in ("LONG", "SHORT")
            and strategy is not None and strategy.config is not None):
        from dolphin.engine.position_view import position_marks

        m = position_marks(str(pos["side"]), entry, notional, mark, strategy.config, bars_held=bars)
        style = "green" if m.unrealised > 0 else "red" if m.unrealised < 0 else ""
        rows.append(("unrealised", Text(f"{fmt.money(m.unrealised, signed=True)} ({m.unrealised_pct * 100:+.2f}%)",
                                        style=style)))
        if held_words:
            held = Text(held_words)
            if m.bars_left is not None:
                held.append(f" · {m.bars_left} to max hold", style="yellow" if m.bars_left <= 10 else "dim")
            rows.append(("held", held))
        exits = Text(f"TP {fmt.price(m.tp_price)} ")
        exits.append(f"{m.to_tp_pct * 100:.2f}% away" if m.to_tp_pct > 0 else "reached", style="dim")
        exits.append("  SL off" if m.sl_price is None or m.to_sl_pct is None
                     else f"  SL {fmt.price(m.sl_price)} {m.to_sl_pct * 100:.2f}% away")
        rows.append(("exits", exits))
    elif held_words:
        rows.append(("held", Text(held_words)))
    book = _book_text(asset, obf, macro)
    if book is not None:
        rows.append(("OB", book))
    return rows


def _book_text(asset: Any, obf: Any, macro: Any) -> Text | None:
    """The asset's spread and imbalance from the OBF universe, and the market's OB regime."""
    from dolphin.enums import ObRegime
    from tui.panels.obf import REGIME_STYLE

    out = Text()
    health = getattr(obf, "assets", {}).get(asset) if isinstance(asset, str) and obf is not None else None
    if macro is not None:
        regime = ObRegime.of_signal(macro.regime_signal)
        out.append(regime.value, style=REGIME_STYLE[regime])
    if health is not None:
        out.append(("  " if out else "") + f"spread {health.spread_bps:.1f} bp · imb {health.imbalance:+.2f}")
    return out if out else None


def trade_line(trade: Any) -> Text:
    if not isinstance(trade, dict):
        return Text(fmt.text(trade, 40), style="dim")
    out = Text()
    out.append(f"#{fmt.integer(trade.get('trade_id'))} ", style="dim")
    out.append(f"{fmt.text(trade.get('side'), 5)} {fmt.text(trade.get('asset') or trade.get('symbol'), 12)} ")
    pnl = fmt.finite(trade.get("pnl") if "pnl" in trade else trade.get("net_pnl"))
    out.append(fmt.money(pnl, signed=True), style="green" if (pnl or 0) > 0 else "red" if (pnl or 0) < 0 else "")
    reason = trade.get("exit_reason") or trade.get("reason")
    if reason:
        out.append(f" {fmt.text(reason, 12)}", style="dim")
    return out


def _inputs_line(st: Any) -> Text | None:
    """What the trader did not trade: stale scans, refused bus scans, a halt — None when all is well."""
    if st is None:
        return None
    halted = getattr(st, "halted", None)
    stale = int(getattr(st, "stale_scans", 0) or 0)
    refused: dict[str, int] = dict(getattr(st, "rejected_scans", None) or {})
    if not (halted or stale or refused):
        return None
    out = Text()
    if halted:
        out.append(f"HALTED: {fmt.text(halted, 60)} ", style="bold white on red")
    if stale:
        out.append(f"{fmt.integer(stale)} stale", style="yellow")
    if refused:
        out.append(" · " if stale else "")
        detail = ", ".join(f"{k} {v}" for k, v in sorted(refused.items(), key=lambda kv: -kv[1])[:3])
        out.append(f"{fmt.integer(sum(refused.values()))} refused ({detail})", style="red")
    return out


class TraderPanel(Panel):
    TITLE = "Trader"
    TOPICS = frozenset({STRATEGY, PNL, SCAN, JOURNAL, OBF, OB_MACRO})
    SOURCES = (STRATEGY, PNL)

    def __init__(self, *args: Any, strategy: StrategyView | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategy = strategy
        self._engine_cache: tuple[int, dict[str, Any] | None] = (0, None)

    def _engine(self, payload: Any) -> dict[str, Any] | None:
        if payload is None:
            return None
        if self._engine_cache[0] != id(payload):
            self._engine_cache = (id(payload), _decode_engine_state(payload))
        return self._engine_cache[1]

    def body(self, now: float) -> RenderableType:
        state_payload = self.payload(STRATEGY)
        pnl = self.payload(PNL)
        rows: list[tuple[str, RenderableType | str]] = []
        parts: list[RenderableType] = [self.missing_text(STRATEGY)] if state_payload is None and pnl is None else []
        engine = self._engine(state_payload)
        journal = self.state.journal()
        if state_payload is not None:
            rows.append(("strategy", f"{fmt.text(state_payload.strategy, 12)}  day {fmt.text(state_payload.date, 10)}"
                                     + (f"  {state_payload.venue}" if getattr(state_payload, "venue", None) else "")))
            position = self._position(state_payload, engine)
            rows.extend(position_rows(position, self.state.scan_record(), self.strategy,
                                      bar_s=self.state.bar_interval_s, obf=self.payload(OBF),
                                      macro=self.payload(OB_MACRO)))
        if pnl is not None:
            line = Text()
            line.append(fmt.money(pnl.pnl, signed=True), style="bold green" if pnl.pnl > 0 else "bold red"
                        if pnl.pnl < 0 else "bold")
            line.append(f"  {pnl.date}", style="dim")
            rows.append(("session PnL", line))
            detail = Text(f"{fmt.integer(pnl.trades)} trades · mc ")
            detail.append(fmt.text(pnl.mc_status, 8), style=STATUS_STYLE.get(pnl.mc_status, ""))
            rows.append(("", detail))
            if pnl.stale_state:
                rows.append(("", Text("STALE STATE — do not use for live orders", style="bold white on red")))
        elif state_payload is not None:
            rows.append(("session PnL", Text("— DOLPHIN_PNL_BLUE not published", style="dim")))
        trades = self._trades(state_payload, engine, journal)
        if trades is None and state_payload is None:
            pass  # the "never published" text above already says why
        elif trades is None:
            rows.append(("last trades", Text("— not published", style="dim")))
        elif not trades:
            rows.append(("last trades", Text("none yet", style="dim")))
        else:
            for i, trade in enumerate(trades[-3:][::-1]):
                rows.append(("last trades" if i == 0 else "", trade_line(trade)))
        scan_entry = self.entry(SCAN)
        trader_scan = getattr(state_payload, "last_scan_number", None) if state_payload is not None else None
        if scan_entry is None:
            rows.append(("last scan", Text("— none", style="dim")))
        else:
            number = getattr(scan_entry.payload, "scan_number", None)
            line = Text(f"#{fmt.integer(number)}")  # its age is on the age line (ticks there)
            if trader_scan is not None:
                behind = (number - trader_scan) if isinstance(number, int) else None
                line.append(f"  trader at #{fmt.integer(trader_scan)}",
                            style="yellow" if behind is not None and behind > 2 else "dim")
            rows.append(("last scan", line))
        inputs = _inputs_line(state_payload)
        if inputs is not None:
            rows.append(("inputs", inputs))
        if rows:
            parts.append(kv_table(rows, key_width=11))
        return Group(*parts)

    def extra_age_parts(self, now: float) -> list[str]:
        """The last scan's age (state and PnL ages colour the panel; the scan's is the Scan panel's)."""
        scan = self.entry(SCAN)
        return [f"scan {fmt.age(now - scan.basis)}"] if scan is not None else []

    @staticmethod
    def _position(st: Any, engine: dict[str, Any] | None) -> Any:
        """The typed `open_position` of the trader's state; else whatever its engine state carries."""
        if "open_position" in getattr(st, "__struct_fields__", ()):
            pos = st.open_position
            return msgspec.structs.asdict(pos) if pos is not None else None
        if engine is not None:
            for key in _POSITION_KEYS:
                if key in engine:
                    return engine[key]
        return None

    @staticmethod
    def _trades(st: Any, engine: dict[str, Any] | None, journal: list[Any]) -> list[Any] | None:
        """Oldest first: the journal (replay), the state's `recent_trades`, or the engine state's list."""
        trades = [e.data for e in journal if getattr(e, "kind", "") == "trade"]
        if trades:
            return trades
        recent = getattr(st, "recent_trades", None)
        if recent:
            return [msgspec.structs.asdict(t) for t in recent]
        if "recent_trades" in getattr(st, "__struct_fields__", ()):
            return []
        if engine is not None:
            for key in _TRADES_KEYS:
                value = engine.get(key)
                if isinstance(value, list):
                    return value
        return None
