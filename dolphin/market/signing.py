"""Binance request signing (HMAC-SHA256) and the server clock a signed request is stamped with.

Binance signs ``totalParams`` — the query string concatenated with the request body —
with the secret key, hex-encoded, sent as the last parameter ``signature``. The same
helpers serve both sides of the wire: the adapter signs, the simulator verifies (with a
constant-time compare), so a mismatch can only come from the request, not from two
implementations of the rule.

`ServerClock` is why signed requests keep working against a simulator running at
``--speed 60``: Binance checks ``timestamp`` against *its* clock (recvWindow), so the
client stamps requests with its estimate of server time. The usual estimate is an
offset; a simulated clock also runs at another *rate*, so the clock keeps the first
sample and estimates the rate from later ones (re-synced on -1021). Against real
Binance the measured rate is 1 to within noise and is snapped to exactly 1.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

_SAFE = "-_.~@"  # binance-connector leaves '@' unescaped; both encodings verify since we sign what we send


def format_param(value: object) -> str:
    """A parameter as Binance expects it: booleans lower-case, floats positional (no exponent)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def encode_params(params: Mapping[str, object] | Iterable[tuple[str, object]]) -> str:
    """``k=v&k2=v2`` in the given order, skipping ``None`` values, percent-encoded."""
    items = params.items() if isinstance(params, Mapping) else params
    return "&".join(f"{quote(str(k), safe=_SAFE)}={quote(format_param(v), safe=_SAFE)}"
                    for k, v in items if v is not None)


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of ``payload`` with ``secret``."""
    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()


def strip_signature(raw: str) -> tuple[str, str | None]:
    """Split a raw (still percent-encoded) query or body into (text without signature, signature)."""
    if not raw:
        return "", None
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&"):
        if part.startswith("signature="):
            signature = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept), signature


def signed_payload(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """Binance's ``totalParams`` (query + body, signature removed) and the signature sent."""
    query, sig_q = strip_signature(raw_query)
    body, sig_b = strip_signature(raw_body)
    return query + body, sig_q if sig_q is not None else sig_b


def verify(secret: str, payload: str, signature: str | None) -> bool:
    """Constant-time check that ``signature`` signs ``payload`` with ``secret``."""
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, payload), signature.lower())


_RATE_SNAP = 0.01
"""Measured clock rates within 1 % of 1 are clock noise (real Binance), snapped to exactly 1."""
_MIN_RATE_SPAN_S = 1.0
"""Two samples closer than this in local time cannot estimate a rate."""


@dataclass(slots=True)
class _Sample:
    local_s: float
    server_ms: float
    half_rtt_s: float = 0.0     # the server stamped somewhere within ± this of local_s


class ServerClock:
    """Estimates the venue's clock from ``/fapi/v1/time`` samples: offset plus rate.

    ``now_ms()`` is ``server_at_last_sample + (local_now - local_at_last_sample) * rate``.
    Each `update` takes the midpoint of the request's round trip as the local time the
    server stamped.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._mono = monotonic
        self._first: _Sample | None = None
        self._last: _Sample | None = None
        self.rate = 1.0
        self.rate_error = 0.0       # relative bound on `rate` from the two samples' round trips
        self.synced_at: float | None = None

    @property
    def synced(self) -> bool:
        return self._last is not None

    def age_s(self) -> float | None:
        """Local seconds since the last sample (None before the first)."""
        return None if self.synced_at is None else self._mono() - self.synced_at

    def update(self, sent_local_s: float, server_ms: int, received_local_s: float) -> None:
        """Record one sample: request sent at ``sent_local_s``, answered at ``received_local_s``."""
        sample = _Sample((sent_local_s + received_local_s) / 2.0, float(server_ms),
                         (received_local_s - sent_local_s) / 2.0)
        if self._first is None:
            self._first = sample
        elif sample.local_s - self._first.local_s >= _MIN_RATE_SPAN_S:
            span = sample.local_s - self._first.local_s
            rate = (sample.server_ms - self._first.server_ms) / (span * 1000.0)
            self.rate = 1.0 if abs(rate - 1.0) < _RATE_SNAP or rate <= 0 else rate
            # the rate is measured over the longest span (first to latest sample); each end may be off
            # by half its round trip, so a loaded machine's slow answers widen this bound, not a guess
            self.rate_error = (self._first.half_rtt_s + sample.half_rtt_s) / max(span - sample.half_rtt_s
                                                                                 - self._first.half_rtt_s, 1e-9)
        self._last = sample
        self.synced_at = received_local_s

    def now_ms(self) -> int:
        """Best estimate of the server's current time in ms (local time if never synced)."""
        if self._last is None:
            return int(time.time() * 1000)
        return int(self._last.server_ms + (self._mono() - self._last.local_s) * 1000.0 * self.rate)
