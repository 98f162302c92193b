"""Fault injection: the venue misbehaving on purpose, the way Binance does, for the live trader's tests.

Switchable per run — ``dolphin sim --fault SPEC`` (repeatable) — and at run time through
the loopback-only admin endpoint ``/sim/v1/faults`` (see ``docs/market.md``). A fault is
a rule; rules that fire on requests are consumed one per matching request (``count``
times, ``-1`` = until cleared):

* ``error`` — answer a matching REST request with an HTTP ``status`` and Binance ``code``
  without executing it: 5xx / -1001 ("Internal error…", the request failed), 429 / -1003
  (with ``Retry-After``), or ``code=0`` for a proxy's non-JSON page (502 "Bad Gateway").
* ``ack`` — execute a matching order request, then ``mode=delay`` its answer by
  ``delay_ms``, ``mode=drop`` it (the connection is cut: the client never learns that the
  order was placed), or ``mode=unknown`` answer 503 / -1007 ("execution status unknown").
* ``partial`` — the next ``count`` new orders fill only ``ratio`` of what they could fill
  now; a MARKET order's rest fills ``delay_ms`` of wall time later, a LIMIT order's rest
  rests (and a resting order fills by ``ratio`` each time the market reaches it).
* ``ws_drop`` — cut WebSocket connections (``target`` all | market | user): at once from
  the admin endpoint, or every ``every_ms`` of wall time from the command line.
* ``listenkey`` — listen keys live ``ttl_ms`` of wall time instead of 60 minutes (expire
  early); the admin endpoint can also expire every key at once.
* ``malformed`` — answer a matching request HTTP 200 with a body that is not what the
  endpoint returns: ``mode=truncated`` (the real answer cut in half: not JSON) or
  ``mode=shape`` (valid JSON of the wrong shape). For the consumers' edge checks (ExF).

Nothing here touches the market itself: prices, books and trades stay deterministic.
"""

from __future__ import annotations

import threading
from typing import Any

import msgspec

from dolphin.market.errors import SimConfigError

KINDS = ("error", "ack", "partial", "ws_drop", "listenkey", "malformed")
MALFORMED_MODES = ("truncated", "shape")
ACK_MODES = ("delay", "drop", "unknown")
WS_TARGETS = ("all", "market", "user")
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/algoOrder", "/fapi/v1/batchOrders")

DEFAULT_MESSAGES = {
    -1000: "An unknown error occured while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1003: "Too many requests; current limit is 2400 requests per minute. Please use the websocket for live "
           "updates to avoid polling the API.",
    -1007: "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    -1008: "Server is currently overloaded with other requests. Please try again in a few minutes.",
    -1015: "Too many new orders.",
}


class FaultRule(msgspec.Struct, kw_only=True):
    """One injected fault (see the module docstring for the kinds and their fields)."""

    kind: str
    path: str = ""
    method: str = ""
    count: int = 1
    status: int = 503
    code: int = -1001
    msg: str = ""
    mode: str = "delay"
    delay_ms: int = 0
    ratio: float = 0.5
    every_ms: int = 0
    ttl_ms: int = 0
    target: str = "all"
    id: int = 0
    fired: int = 0

    def validate(self) -> FaultRule:
        problems = []
        if self.kind == "malformed" and self.mode == "delay":   # the field's default is ack's
            self.mode = "truncated"
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)}")
        if self.kind == "error" and not (400 <= self.status <= 599):
            problems.append("status must be an HTTP error status (400-599)")
        if self.kind == "ack" and self.mode not in ACK_MODES:
            problems.append(f"mode must be one of {', '.join(ACK_MODES)}")
        if self.kind == "malformed" and self.mode not in MALFORMED_MODES:
            problems.append(f"mode must be one of {', '.join(MALFORMED_MODES)}")
        if self.kind == "partial" and not 0.0 < self.ratio < 1.0:
            problems.append("ratio must be in (0, 1)")
        if self.kind == "ws_drop" and self.target not in WS_TARGETS:
            problems.append(f"target must be one of {', '.join(WS_TARGETS)}")
        if self.kind == "listenkey" and self.ttl_ms <= 0:
            problems.append("ttl_ms must be > 0")
        if self.count == 0 or self.count < -1:
            problems.append("count must be positive, or -1 for until cleared")
        if min(self.delay_ms, self.every_ms) < 0:
            problems.append("delays must be >= 0")
        if problems:
            raise SimConfigError(f"bad fault {self.kind!r}: " + "; ".join(problems))
        if not self.msg and self.kind in ("error", "ack"):
            self.msg = DEFAULT_MESSAGES.get(self.code if self.kind == "error" else -1007, "")
        return self

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path:
            return path == self.path or path.startswith(self.path.rstrip("/") + "/")
        if self.kind == "ack":
            return method.upper() in ("POST", "PUT") and path in ORDER_PATHS
        return True

    def corrupt(self, body: bytes) -> bytes:
        """What a ``malformed`` rule answers instead of ``body``."""
        if self.mode == "shape":
            return b'{"unexpected": "shape", "data": [["not", "a", "value"]]}'
        return body[: max(1, len(body) // 2)]


_INT_FIELDS = {"count", "status", "code", "delay_ms", "every_ms", "ttl_ms"}


def parse_spec(text: str) -> FaultRule:
    """``kind[:key=value,...]``, e.g. ``error:status=503,code=-1001,path=/fapi/v1/order,count=2``.

    Durations accept ``ms``/``s``/``m`` suffixes (``every_ms=30s``).
    """
    kind, _, rest = text.strip().partition(":")
    fields: dict[str, Any] = {"kind": kind.strip().lower()}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in FaultRule.__struct_fields__ or key in ("kind", "id", "fired"):
            raise SimConfigError(f"bad --fault {text!r}: unknown setting {key!r}")
        try:
            if key in _INT_FIELDS:
                fields[key] = parse_duration(value) if key.endswith("_ms") else int(value)
            elif key == "ratio":
                fields[key] = float(value)
            else:
                fields[key] = value.strip()
        except ValueError:
            raise SimConfigError(f"bad --fault {text!r}: {key}={value!r} is not a number") from None
    return FaultRule(**fields).validate()


def parse_duration(value: str) -> int:
    """Milliseconds of ``"30s"``, ``"5m"``, ``"250ms"`` or a bare number of milliseconds."""
    v = value.strip().lower()
    for suffix, scale in (("ms", 1), ("s", 1000), ("m", 60_000)):
        if v.endswith(suffix):
            return int(float(v[: -len(suffix)]) * scale)
    return int(v)


class Faults:
    """The active fault rules of a simulator (thread-safe: REST handlers and the admin share it)."""

    def __init__(self, rules: tuple[FaultRule, ...] | list[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1
        self.fired: dict[str, int] = {k: 0 for k in KINDS}
        for rule in rules:
            self.add(rule)

    def add(self, rule: FaultRule) -> FaultRule:
        rule.validate()
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def clear(self) -> int:
        with self._lock:
            n = len(self._rules)
            self._rules.clear()
        return n

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, kind: str, method: str = "", path: str = "") -> FaultRule | None:
        """The first live rule of ``kind`` matching the request, consumed once; None if none."""
        with self._lock:
            for rule in self._rules:
                if rule.kind == kind and (not path or rule.matches(method, path)):
                    rule.fired += 1
                    self.fired[kind] += 1
                    if rule.count > 0:
                        rule.count -= 1
                        if rule.count == 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def setting(self, kind: str, field: str) -> int:
        """A standing setting (``ws_drop`` every_ms, ``listenkey`` ttl_ms) of the newest rule of ``kind``; 0 if none."""
        with self._lock:
            for rule in reversed(self._rules):
                if rule.kind == kind and getattr(rule, field):
                    return int(getattr(rule, field))
        return 0

    def standing(self, kind: str) -> FaultRule | None:
        with self._lock:
            for rule in reversed(self._rules):
                if rule.kind == kind:
                    return rule
        return None

    def note(self, kind: str) -> None:
        with self._lock:
            self.fired[kind] += 1

    def describe(self) -> dict[str, Any]:
        return {"rules": [msgspec.to_builtins(r) for r in self.rules()], "fired": dict(self.fired)}
