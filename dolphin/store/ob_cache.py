"""The OBF local fallback file (bible §15.6): ``<home>/ob_cache/latest_ob_features.json``.

When five bus pushes in a row fail, the OBF daemon opens its circuit breaker and keeps
publishing here instead; consumers (the trader's OB provider) read this file while the
bus is away. It holds the latest per-asset features, the market-wide macro and the
universe snapshot, each exactly as its bus payload (`ObFeatures`, `ObMacro`,
`ObfUniverse`), so a reader needs no second schema. docs/obf.md documents the layout.

The file is replaced atomically (temp + fsync + rename, mode 0600): a reader sees the
previous complete file or the new one, never a torn one. `written_at` (wall clock) says
how old it is; a consumer decides what is too old for it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import msgspec

from dolphin.bus.payloads import ObFeatures, ObfStatus, ObfUniverse, ObMacro
from dolphin.store.atomic import atomic_write_bytes

log = logging.getLogger("dolphin.store.ob_cache")

CACHE_DIR = "ob_cache"
CACHE_FILE = "latest_ob_features.json"
CACHE_VERSION = 1
STATUS_FILE = "obf_status.json"
STATUS_STALE_S = 30.0
"""An OBF status older than this is not the daemon's state any more (it writes one every few seconds)."""


class ObCacheFile(msgspec.Struct, frozen=True, kw_only=True):
    """The whole file: one JSON object (docs/obf.md, "The fallback file")."""

    version: int = CACHE_VERSION
    written_at: float                      # unix seconds (wall clock) of the write
    bar_ms: int | None = None              # market time of the latest bar close in it
    circuit: str = ""                      # the breaker's state when written: open, half_open, closed
    features: dict[str, ObFeatures] = {}   # symbol → its latest bar features (the shard documents)
    macro: ObMacro | None = None           # the latest DOLPHIN_FEATURES["ob_macro_latest"]
    universe: ObfUniverse | None = None    # the latest DOLPHIN_FEATURES["obf_universe_latest"]


class ObFallback(NamedTuple):
    """What a consumer reads: features by symbol, the macro, and when the file was written."""

    features: dict[str, ObFeatures]
    macro: ObMacro | None
    written_at: float


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(ObCacheFile)


def cache_path(home: str | Path) -> Path:
    return Path(home) / CACHE_DIR / CACHE_FILE


def encode_cache(cache: ObCacheFile) -> bytes:
    return _ENCODER.encode(cache)


def write_cache(home: str | Path, cache: ObCacheFile) -> Path:
    """Replace the fallback file atomically (0600); returns its path. Raises OSError (a full disk)."""
    return atomic_write_bytes(cache_path(home), encode_cache(cache))


def read_cache(home: str | Path) -> ObCacheFile | None:
    """The whole file, or None when it is absent or not a valid cache (logged, never raised)."""
    path = cache_path(home)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("OB fallback file %s cannot be read: %s", path, exc.strerror or exc)
        return None
    try:
        cache = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        log.warning("OB fallback file %s is not a valid cache (%s); ignored", path, exc)
        return None
    if cache.version != CACHE_VERSION:
        log.warning("OB fallback file %s has version %s (this reader knows %s); ignored", path, cache.version,
                    CACHE_VERSION)
        return None
    return cache


def status_path(home: str | Path) -> Path:
    return Path(home) / CACHE_DIR / STATUS_FILE


def write_status(home: str | Path, status: ObfStatus) -> Path:
    return atomic_write_bytes(status_path(home), _ENCODER.encode(status))


def read_status_file(home: str | Path) -> ObfStatus | None:
    """The OBF daemon's last status file, or None when absent; `DataError` when it is not a status."""
    from dolphin.errors import DataError

    path = status_path(home)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return msgspec.json.decode(data, type=ObfStatus)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise DataError(f"{path}: not a valid OBF status ({exc})") from None


def read_fallback(home: str | Path) -> ObFallback | None:
    """(features by symbol, macro, written_at) from ``<home>/ob_cache/latest_ob_features.json``, or None."""
    cache = read_cache(home)
    if cache is None:
        return None
    return ObFallback(dict(cache.features), cache.macro, cache.written_at)


class FallbackReader:
    """`read_fallback` for a consumer that asks every step: decodes the file again only when it changed.

    The file is replaced by rename, so a new (mtime, size, inode) means a new complete file;
    an invalid one is logged once per version, not once per step.
    """

    def __init__(self, home: str | Path) -> None:
        self.home = Path(home)
        self._stamp: tuple[int, int, int] | None = None
        self._value: ObFallback | None = None

    def __call__(self) -> ObFallback | None:
        try:
            st = cache_path(self.home).stat()
        except OSError:
            self._stamp, self._value = None, None
            return None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._stamp, self._value = stamp, read_fallback(self.home)
        return self._value


__all__ = ["CACHE_DIR", "FallbackReader", "CACHE_FILE", "CACHE_VERSION", "STATUS_FILE", "STATUS_STALE_S", "ObCacheFile", "ObFallback",
           "cache_path", "encode_cache", "read_cache", "read_fallback", "read_status_file", "status_path", "write_cache",
           "write_status"]
