"""`python -m dolphin.services.parity` — the `parity` program under supervisord."""

import sys

from dolphin.services.parity.service import run
from dolphin.services.runtime import run_service

sys.exit(run_service("parity", run))
