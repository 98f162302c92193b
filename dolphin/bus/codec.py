"""JSON codecs of the bus values: encode a payload, decode and validate a value.

`BusCodec.decode` raises `PayloadError` with a short reason; `BusCodec.accept` is the
edge version every listener and reader uses: a bad value is logged once (with its map,
key and source), counted by reason, and dropped as None, so a listener thread never
sees an exception. Counters use the key spec's label (``DOLPHIN_PNL_BLUE[<date>]``),
not the raw key, so they stay bounded.

Publish times (`Payload.published_s()`, the wall clock of the write) more than
`max_future_s` ahead of the clock are rejected: a writer whose clock runs ahead would
otherwise look fresh forever to the health service. Market time (a scan's
`timestamp_ns`) is not checked against the wall clock: under an accelerated simulator
it runs ahead by design.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec

from dolphin.bus import payloads as p
from dolphin.bus.schema import KeySpec, spec_for

log = logging.getLogger("dolphin.bus")

# rejection reasons
BAD_JSON = "bad_json"
SCHEMA = "schema"
FUTURE = "future_timestamp"
UNKNOWN_KEY = "unknown_key"
NOT_TEXT = "not_text"

_LOG_EVERY_S = 60.0
_EARLIEST_PLAUSIBLE = 946684800.0  # 2000-01-01: anything older is a unit bug (ms, ns) or garbage


class PayloadError(ValueError):
    """A bus value that cannot become its payload type."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Rejections:
    """Thread-safe counters of rejected values, with rate-limited one-line logging.

    The first rejection of each (label, reason) is logged at once; later ones at most
    every minute, as a summary with the count since the last line.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._last_log: dict[tuple[str, str], tuple[float, int]] = {}

    def record(self, label: str, key: str, reason: str, detail: str, source: str) -> None:
        now = time.monotonic()
        slot = (label, reason)
        with self._lock:
            self._counts[slot] += 1
            total = self._counts[slot]
            last = self._last_log.get(slot)
            if last is not None and now - last[0] < _LOG_EVERY_S:
                return
            since = total - (last[1] if last else 0)
            self._last_log[slot] = (now, total)
        more = f" ({since} since the last report, {total} in all)" if last else ""
        log.warning("bus: rejected %s (key %r) from %s — %s: %s%s", label, key, source, reason, detail, more)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def counts(self) -> dict[str, int]:
        """``{"<label> <reason>": n}`` snapshot."""
        with self._lock:
            return {f"{label} {reason}": n for (label, reason), n in sorted(self._counts.items())}

    def by_reason(self, label: str) -> dict[str, int]:
        """``{reason: n}`` for one key label."""
        with self._lock:
            return {reason: n for (lbl, reason), n in sorted(self._counts.items()) if lbl == label}

    def count(self, label: str | None = None, reason: str | None = None) -> int:
        with self._lock:
            return sum(n for (lbl, rsn), n in self._counts.items()
                       if (label is None or lbl == label) and (reason is None or rsn == reason))


class BusCodec:
    """Encoder/decoder for every key of the schema; one instance may be shared by all threads."""

    def __init__(self, *, clock: Callable[[], float] = time.time, max_future_s: float | None = 5.0,
                 rejections: Rejections | None = None) -> None:
        self._clock = clock
        self._max_future_s = max_future_s
        self.rejections = rejections if rejections is not None else Rejections()
        self._decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
        self._encoder = msgspec.json.Encoder()

    def _decoder(self, wire_type: Any) -> msgspec.json.Decoder[Any]:
        decoder = self._decoders.get(wire_type)
        if decoder is None:
            decoder = self._decoders[wire_type] = msgspec.json.Decoder(wire_type)
        return decoder

    # ------------------------------------------------------------ encode
    def encode(self, map_name: str, key: str, payload: Any) -> str:
        """The JSON string to put under `key`; refuses a payload of the wrong type for the key."""
        spec = spec_for(map_name, key)
        if spec is None:
            raise ValueError(f"{map_name}[{key!r}] is not in the bus schema (dolphin.bus.schema)")
        if not _is_instance(payload, spec.payload):
            raise TypeError(f"{spec.label} takes {_type_name(spec.payload)}, not {type(payload).__name__}")
        wire = spec.to_wire(payload) if spec.to_wire is not None else payload
        return self._encoder.encode(wire).decode("utf-8")

    # ------------------------------------------------------------ decode
    def decode(self, map_name: str, key: str, value: Any) -> Any:
        """The validated payload of a raw bus value; raises PayloadError."""
        spec = spec_for(map_name, key)
        if spec is None:
            raise PayloadError(UNKNOWN_KEY, f"{map_name}[{key!r}] is not in the bus schema")
        return self._decode(spec, value)

    def _decode(self, spec: KeySpec, value: Any) -> Any:
        if isinstance(value, str):
            raw = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray)):
            raw = bytes(value)
        else:
            raise PayloadError(NOT_TEXT, f"expected a JSON string, got {type(value).__name__}")
        wire_type = spec.wire_type if spec.wire_type is not None else spec.payload
        try:
            decoded = self._decoder(wire_type).decode(raw)
        except msgspec.ValidationError as exc:
            raise PayloadError(SCHEMA, str(exc)) from None
        except msgspec.DecodeError as exc:
            raise PayloadError(BAD_JSON, str(exc)) from None
        if spec.from_wire is not None:
            try:
                decoded = spec.from_wire(decoded)
            except (msgspec.ValidationError, ValueError, TypeError) as exc:
                raise PayloadError(SCHEMA, str(exc)) from None
        if isinstance(decoded, p.Payload):
            self._check_time(decoded)
        return decoded

    def _check_time(self, payload: p.Payload) -> None:
        try:
            market_ts = payload.timestamp_s()
            ts = payload.published_s()
        except ValueError as exc:
            raise PayloadError(SCHEMA, str(exc)) from None
        for value in (market_ts, ts):
            if value is not None and value < _EARLIEST_PLAUSIBLE:
                raise PayloadError(SCHEMA, f"timestamp {value} is before 2000-01-01 (wrong unit?)")
        if ts is None:
            return
        if self._max_future_s is not None:
            ahead = ts - self._clock()
            if ahead > self._max_future_s:
                raise PayloadError(FUTURE, f"timestamp is {ahead:.1f} s in the future")

    def accept(self, map_name: str, key: str, value: Any, *, source: str) -> Any | None:
        """Decode at the edge: a bad value is counted, logged once and returned as None."""
        spec = spec_for(map_name, key)
        if spec is None:
            self.rejections.record(f"{map_name}[?]", key, UNKNOWN_KEY, "not in the bus schema", source)
            return None
        try:
            return self._decode(spec, value)
        except PayloadError as exc:
            self.rejections.record(spec.label, key, exc.reason, exc.detail, source)
            return None


def _is_instance(value: Any, kind: Any) -> bool:
    try:
        return isinstance(value, kind)
    except TypeError:
        return False


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind)


default_codec = BusCodec()
