"""``python -m dolphin.services.acb`` — the `acb` program under supervisord."""

import sys

from dolphin.services.acb.service import run
from dolphin.services.runtime import run_service

if __name__ == "__main__":
    sys.exit(run_service("acb", run))
