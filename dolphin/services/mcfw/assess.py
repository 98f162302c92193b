"""One MC-Forewarner assessment with its I/O: the recent history off disk, the report as a bus payload.

Shared by the `mcfw` daemon and `dolphin mc run`, so both assess exactly the same way:

* **history**: the runtime root's scan archive (``<home>/arrow_scans``, the scanner's
  files the trader warms on), its last `history_days` read in one batch
  (`load_arrow_scans`, unreadable files skipped); when there is no archive and a klines
  file is configured, scans built from the klines (`build_scan_table`, the same scan as
  `dolphin scan build`); with neither, no history (FALLBACK_NO_DATA);
* **assessment**: `dolphin.backtest.montecarlo.run_forewarner` (pure);
* **payload**: `to_payload`, the one place an assessment becomes `McForewarner`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from dolphin.backtest.montecarlo import McAssessment, McSettings, run_forewarner
from dolphin.bus.payloads import McForewarner, iso_utc
from dolphin.config.services import McfwSection
from dolphin.engine.params import StrategyConfig
from dolphin.errors import DataError
from dolphin.paths import display_path
from dolphin.scan.table import ScanTable
from dolphin.store.arrow_scans import DAY_DIR_RE
from dolphin.store.scan_archive import load_arrow_scans, resolve_archive

SCAN_WARMUP_BARS = 1_600   # klines before the history window: the w750 scan window and the vol gate's calibration
PROB_HISTORY = 42          # reports kept in a payload's probability history (a week at 4 h)


def settings_from(section: McfwSection, **overrides: object) -> McSettings:
    """The Monte-Carlo settings of the services config's `mcfw:` section, with command-line overrides.

    Raises ValueError naming a setting out of range (the config's ranges are checked when
    it loads; this catches command-line values).
    """
    values: dict[str, object] = {"paths": section.paths, "horizon_days": section.horizon_days,
                                 "history_days": section.history_days, "block_minutes": section.block_minutes,
                                 "drawdown_limit": section.drawdown_limit,
                                 "min_history_hours": section.min_history_hours, "seed": section.seed}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return McSettings(**values)  # type: ignore[arg-type]   # ValueError names the bad setting


@dataclass(frozen=True, slots=True)
class History:
    """The scans an assessment resamples, where they came from, or why there are none."""

    table: ScanTable | None
    source: str
    missing: str = ""      # why `table` is None


def _newest_day(archive: Path) -> str | None:
    try:
        with os.scandir(archive) as entries:
            days = [e.name for e in entries if DAY_DIR_RE.match(e.name) and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return None
    return max(days) if days else None


def _first_day(newest: str, history_days: float) -> str:
    return (date.fromisoformat(newest) - timedelta(days=math.ceil(history_days))).isoformat()


def archive_history(archive: Path, history_days: float) -> History:
    """The archive's last `history_days` (whole UTC days read, trimmed by time later); unreadable files skipped."""
    root = resolve_archive(archive)
    newest = _newest_day(root)
    if newest is None:
        return History(None, str(root), f"no scan archive at {display_path(root)}")
    table = load_arrow_scans(root, date_from=_first_day(newest, history_days), skip_corrupt=True)
    return History(table, str(root))


class ArchiveCache:
    """The archive's recent scans kept between a daemon's assessments: each cycle reads only the new files.

    Two weeks of 5 s scans are ~240,000 files (minutes to read on a busy box); four
    hours are ~2,900. The first cycle reads the window, later ones the files numbered
    above the last scan held (`after_scan`), appended, and the table is trimmed to the
    window. An archive that went backwards (renumbered, replaced) is read whole again.
    """

    def __init__(self) -> None:
        self.root: Path | None = None
        self.table: ScanTable | None = None
        self.full_reads = 0
        self.files_read = 0

    def history(self, archive: Path, history_days: float) -> History:
        root = resolve_archive(archive)
        newest = _newest_day(root)
        if newest is None:
            self.table = None
            return History(None, str(root), f"no scan archive at {display_path(root)}")
        table = self._incremental(root, history_days) if self.root == root and self.table is not None else None
        if table is None:
            table = load_arrow_scans(root, date_from=_first_day(newest, history_days), skip_corrupt=True)
            self.full_reads += 1
            self.files_read += table.rows
        window_ms = (math.ceil(history_days) + 1) * 86_400_000
        keep = table.ts > int(table.ts[-1]) - window_ms
        self.root, self.table = root, table if keep.all() else table.take(keep)
        return History(self.table, str(root))

    def _incremental(self, root: Path, history_days: float) -> ScanTable | None:
        """The held table with the archive's new scans appended; None when it must be read whole."""
        from dolphin.store.scan_archive import list_scan_files

        held = self.table
        assert held is not None and held.rows > 0
        last_number, last_ts = int(held.scan_number[-1]), int(held.ts[-1])
        day = _utc_day(last_ts)
        listed = list_scan_files(root, date_from=day)
        if not listed or listed[-1].scan_number < last_number:
            return None      # the archive went backwards: read it again
        if listed[-1].scan_number == last_number:
            return held
        new = load_arrow_scans(root, date_from=day, skip_corrupt=True, after_scan=last_number)
        self.files_read += new.rows
        if new.rows and int(new.ts[0]) <= last_ts:
            return None
        return held.append(new)


def _utc_day(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000.0, UTC).strftime("%Y-%m-%d")


def klines_history(path: Path, bar: str | None, history_days: float) -> History:
    """Scans built from a klines file's last `history_days` (plus the scan's own warm-up bars)."""
    from dolphin.scan.table import build_scan_table
    from dolphin.store.klines import load_close_matrix

    cm = load_close_matrix(path, bar or None)
    keep = int(math.ceil(history_days * 86_400_000 / cm.interval_ms)) + SCAN_WARMUP_BARS
    rows = slice(max(0, cm.bars - keep), cm.bars)
    table = build_scan_table(cm.ts[rows], list(cm.symbols), cm.close[rows])
    return History(table, f"{path} ({cm.interval_ms // 1000} s klines)")


def load_history(home: Path, section: McfwSection, history_days: float, *, archive: Path | None = None,
                 klines: Path | None = None, bar: str | None = None, cache: ArchiveCache | None = None) -> History:
    """The history for an assessment: an explicit klines file, else the archive, else the configured klines.

    With a `cache` (the daemon's), the archive is read incrementally between calls.
    """
    if klines is not None:
        return klines_history(klines, bar, history_days)
    target = archive if archive is not None else home
    found = cache.history(target, history_days) if cache is not None else archive_history(target, history_days)
    if found.table is not None or archive is not None or not section.klines:
        return found
    return klines_history(Path(section.klines).expanduser(), section.klines_bar or None, history_days)


def assess(history: History, cfg: StrategyConfig, settings: McSettings, *, boost: float, beta: float,
           progress: Callable[[int, int], None] | None = None,
           should_stop: Callable[[], bool] | None = None) -> McAssessment:
    return run_forewarner(history.table, cfg, settings, boost=boost, beta=beta, no_data_reason=history.missing,
                          progress=progress, should_stop=should_stop)


def _iso_ms(ms: int | None) -> str | None:
    return None if ms is None else iso_utc(ms / 1000.0)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def next_history(previous: McForewarner | None, prob: float) -> list[float]:
    """The probability history a new report carries: the previous report's (or its value), then this one."""
    before: list[float] = []
    if previous is not None:
        before = list(previous.prob_history) if previous.prob_history else [previous.catastrophic_prob]
    return (before + [prob])[-PROB_HISTORY:]


def to_payload(a: McAssessment, *, timestamp_s: float, compute_s: float,
               previous: McForewarner | None = None) -> McForewarner:
    """The bus value of an assessment (bible §28.6 fields plus DOLPHIN's own, docs/mcfw.md).

    ``previous`` is the report it replaces (on the bus, or the writer's last file): its
    probability history is continued, so the daemon's and `dolphin mc run`'s reports
    form one history.
    """
    history_days = a.history_days
    return McForewarner(
        status=a.status, catastrophic_prob=a.catastrophic_prob, envelope_score=a.envelope_score,
        source=str(a.source), timestamp=iso_utc(timestamp_s), paths=a.paths, horizon_days=a.horizon_days,
        drawdown_limit=a.drawdown_limit, history_days=None if history_days is None else round(history_days, 4),
        history_start=_iso_ms(a.history_start_ms), history_end=_iso_ms(a.history_end_ms),
        assets=a.assets or None, seed=a.seed, base_boost=a.base_boost, max_leverage=_finite(a.max_leverage),
        median_drawdown=_finite(a.median_drawdown), p95_drawdown=_finite(a.p95_drawdown),
        median_return=_finite(a.median_return), compute_s=round(max(0.0, compute_s), 3), reason=a.reason or None,
        prob_history=next_history(previous, a.catastrophic_prob))


def report_path(home: Path) -> Path:
    """Where the last report is kept on disk (beside the bus value; a restarted daemon continues from it)."""
    return home / "mcfw" / "latest.json"


def read_report(path: Path) -> McForewarner | None:
    """A report file (None when absent); raises DataError when it cannot be read as one."""
    import msgspec

    try:
        return msgspec.json.decode(path.read_bytes(), type=McForewarner)
    except FileNotFoundError:
        return None
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise DataError(f"{display_path(path)}: not an MC-Forewarner report ({exc})") from None


def save_report(path: Path, payload: McForewarner) -> None:
    """Write the report atomically (a kill -9 leaves the previous one whole)."""
    import msgspec

    from dolphin.store.atomic import atomic_write_bytes

    atomic_write_bytes(path, msgspec.json.encode(payload) + b"\n")
