"""``python -m dolphin.services.watchdog`` — the `watchdog` program under supervisord."""

import sys

from dolphin.services.runtime import run_service
from dolphin.services.watchdog.service import run

if __name__ == "__main__":
    sys.exit(run_service("watchdog", run))
