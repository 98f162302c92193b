"""The NG8 scanner daemon (bible §27): 5-second bars → one eigen scan → one Arrow file + one bus write.

Run it with ``python -m dolphin.services.scanner [--precision float64|arb512]``. Pieces:

* `bars` — stream messages → closed bars (simulator klines or Binance aggTrades);
* `history` — REST history for the backfill, gap fills and repairs;
* `backfill` — the archive's state and the start-up plan;
* `compute` — the scan of one bar, float64 or 512-bit;
* `publisher` — live scans → ``DOLPHIN_FEATURES["latest_eigen_scan"]``;
* `service` — the loop that wires them.

See docs/scanner.md.
"""

from dolphin.market.bars import Bar, BarBuilder, BarTiming, KlineBarBuilder, TradeBarBuilder, make_builder
from dolphin.scan.precision import ScanEngine
from dolphin.services.scanner.backfill import (
    REWARM_BARS,
    WARMUP_BARS,
    ArchiveState,
    BackfillPlan,
    inspect_archive,
    plan_backfill,
)
from dolphin.services.scanner.publisher import ScanPublisher
from dolphin.services.scanner.service import (
    Scanner,
    ScannerOptions,
    ScannerSettings,
    ScannerStats,
    resolve_settings,
    run_scanner,
)

__all__ = ["REWARM_BARS", "WARMUP_BARS", "ArchiveState", "BackfillPlan", "Bar", "BarBuilder", "BarTiming",
           "KlineBarBuilder", "ScanEngine", "ScanPublisher", "Scanner", "ScannerOptions", "ScannerSettings",
           "ScannerStats", "TradeBarBuilder", "inspect_archive", "make_builder", "plan_backfill", "resolve_settings",
           "run_scanner"]
