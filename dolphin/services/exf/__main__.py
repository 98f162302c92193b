"""``python -m dolphin.services.exf`` — the `exf` program under supervisord.

Sources come from the services config ``exf:`` (empty URLs follow the market: the
simulator serves all four factors), the bus from DOLPHIN_HZ_PORT / DOLPHIN_HZ_MEMBERS.
"""

import sys

from dolphin.services.exf.service import run
from dolphin.services.runtime import run_service

if __name__ == "__main__":
    sys.exit(run_service("exf", run))
