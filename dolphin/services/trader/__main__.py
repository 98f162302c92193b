"""`python -m dolphin.services.trader` — the `trader` program under supervisord."""

import sys

from dolphin.services.runtime import run_service
from dolphin.services.trader.service import run

sys.exit(run_service("trader", run))
