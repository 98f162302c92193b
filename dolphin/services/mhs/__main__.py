"""`python -m dolphin.services.mhs` — the `mhs` program under supervisord."""

import sys

from dolphin.services.mhs.service import run
from dolphin.services.runtime import run_service

sys.exit(run_service("mhs", run))
