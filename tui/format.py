"""Defensive formatting: every value the panels show goes through here.

Payloads are validated by the bus codec, but panels still never trust a value: None,
NaN, infinities, wrong types and absurd magnitudes all render as "—" (or a short
marker) instead of raising inside a render.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

DASH = "—"


def finite(value: Any) -> float | None:
    """A finite float, or None for anything else (None, NaN, inf, strings, bools)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    return None


def num(value: Any, digits: int = 4, *, signed: bool = False) -> str:
    f = finite(value)
    if f is None:
        return DASH
    if abs(f) >= 1e12:
        return f"{f:.3e}"
    if round(f, digits) == 0:
        f = 0.0  # no "-0.000"
    return f"{f:+.{digits}f}" if signed else f"{f:.{digits}f}"


def price(value: Any) -> str:
    """A price with sensible decimals: 64,123.50 · 1.2345 · 0.000123."""
    f = finite(value)
    if f is None:
        return DASH
    if abs(f) >= 1000:
        return f"{f:,.2f}"
    if abs(f) >= 1:
        return f"{f:.4f}"
    return f"{f:.6g}"


def integer(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return DASH
    if isinstance(value, int):
        return str(value)
    f = finite(value)
    return DASH if f is None else str(int(f))


def money(value: Any, *, signed: bool = False) -> str:
    f = finite(value)
    if f is None:
        return DASH
    return f"{f:+,.2f}" if signed else f"{f:,.2f}"


def usd(value: Any) -> str:
    """A USD amount in a few characters: 850, 12.3k, 4.1M, 2.0B."""
    f = finite(value)
    if f is None:
        return DASH
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(f) >= scale:
            return f"{f / scale:.1f}{suffix}"
    return f"{f:.0f}"


def pct(value: Any, digits: int = 1, *, signed: bool = False) -> str:
    """A fraction (0.123) as a percentage (12.3%)."""
    f = finite(value)
    if f is None:
        return DASH
    return f"{f * 100:+.{digits}f}%" if signed else f"{f * 100:.{digits}f}%"


def text(value: Any, limit: int = 40) -> str:
    if value is None:
        return DASH
    s = str(value).replace("\n", " ").strip()
    if not s:
        return DASH
    return s if len(s) <= limit else s[: limit - 1] + "…"


def age(seconds: float | None) -> str:
    """A compact age: 0 s, 12 s, 4 m 05 s, 3 h 12 m, 2 d 4 h; "—" when unknown; "in the future" if negative."""
    f = finite(seconds)
    if f is None:
        return DASH
    if f < -1.0:
        return "in the future"
    s = int(max(f, 0.0))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} m {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {(s % 3600) // 60:02d} m"
    return f"{s // 86400} d {(s % 86400) // 3600} h"


def duration(seconds: float | None) -> str:
    """Uptime, to the second in the first minute (a fresh restart shows), then to the minute."""
    f = finite(seconds)
    if f is None or f < 0:
        return ""
    s = int(f)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} m"
    if s < 86400:
        return f"{s // 3600} h {(s % 3600) // 60:02d} m"
    return f"{s // 86400} d {(s % 86400) // 3600:02d} h"


def clock(seconds: float | None, *, date: bool = False) -> str:
    f = finite(seconds)
    if f is None:
        return DASH
    try:
        moment = datetime.fromtimestamp(f, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return DASH
    return moment.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def bar(fraction: Any, width: int = 20) -> str:
    """A text gauge for a value in [0, 1]: ████████░░░░."""
    f = finite(fraction)
    if f is None:
        return "░" * width
    f = min(max(f, 0.0), 1.0)
    full = round(f * width)
    return "█" * full + "░" * (width - full)
