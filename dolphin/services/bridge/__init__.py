"""The scan bridge daemon: an external scanner's Arrow files → the bus (bible §2a, §24.4, §27).

Run it with ``python -m dolphin.services.bridge [--watch DIR] [--poll S]``. Pieces:

* `watcher` — new files by mtime (never by scan number);
* `runs` — double outputs vs scanner restarts;
* `service` — the loop: validate, classify, push through the scan codec (`dolphin.bus.scan_codec`).

See docs/arrow_scans.md.
"""

from dolphin.services.bridge.runs import RunTracker, Verdict
from dolphin.services.bridge.service import Bridge, BridgeOptions, BridgeStats, run_bridge, watch_dir
from dolphin.services.bridge.watcher import ArchiveWatcher, FileSeen

__all__ = ["ArchiveWatcher", "Bridge", "BridgeOptions", "BridgeStats", "FileSeen", "RunTracker", "Verdict",
           "run_bridge", "watch_dir"]
