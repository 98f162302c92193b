"""ISO-8601 times as the bus, the reports and the operator write them (``Z`` or an offset; naive = UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_iso_utc(value: str) -> float:
    """Unix seconds from an ISO-8601 string; `ValueError` naming the value when it is not one."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"   # fromisoformat on 3.11 takes "Z" only in some forms
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
