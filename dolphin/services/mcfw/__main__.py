"""`python -m dolphin.services.mcfw` — the `mcfw` program under supervisord."""

import sys

from dolphin.services.mcfw.service import run_mcfw
from dolphin.services.runtime import run_service

sys.exit(run_service("mcfw", run_mcfw))
