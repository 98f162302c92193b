"""A small real scan archive (the scanner's NG5 files) and MC settings small enough for tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dolphin.config.services import McfwSection, ServicesConfig
from dolphin.scan.record import ScanRecord
from dolphin.store.arrow_scans import encode_scan, scan_path
from tests.integration.trader.support import synthetic_records

N_SYMBOLS = 12
SCANS = 1_250          # ~1.7 h of 5 s scans: the vol gate calibrates after 770, then ~40 min usable

#: what the tests' daemon runs: a few seconds per assessment on a busy 2-core box
SMALL_MCFW = McfwSection(interval_h=4.0, paths=40, horizon_days=0.05, history_days=1.0, block_minutes=5.0,
                         drawdown_limit=0.12, min_history_hours=0.25, seed=12, threads=0)


def small_services(**mcfw: object) -> ServicesConfig:
    return replace(ServicesConfig(), mcfw=replace(SMALL_MCFW, **mcfw))


def services_yml(**mcfw: object) -> str:
    """A services.yml with the small MC section (for a daemon or CLI run as a process)."""
    section = replace(SMALL_MCFW, **mcfw)
    lines = ["mcfw:"] + [f"  {name}: {value!r}" if isinstance(value, str) else f"  {name}: {value}"
                         for name, value in ((f, getattr(section, f)) for f in section.__dataclass_fields__)]
    return "\n".join(lines) + "\n"


def scan_records(n: int = SCANS, seed: int = 7) -> list[ScanRecord]:
    """Scans of the seeded synthetic market (`N_SYMBOLS` assets), numbered from the first defined vel_div."""
    return synthetic_records(n, seed, N_SYMBOLS)


def write_archive(home: Path, records: list[ScanRecord]) -> Path:
    """The scanner's files, byte for byte (`encode_scan` at `scan_path`), without its per-file fsync:
    a test archive needs the format, not the durability, and 1,250 fsyncs cost ~15 s on a busy disk."""
    for rec in records:
        path = scan_path(home, rec)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_scan(rec))
    return home / "arrow_scans"
