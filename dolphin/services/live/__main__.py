"""`python -m dolphin.services.live [--mainnet --yes-mainnet] [--skip-preflight]` — the `live` program.

Under supervisord (group ``dolphin``, autostart off, never restarted by MHS) it runs the
preflight first and refuses to start on a failed check, like `dolphin live`. Mainnet
needs both flags on the command line: the rendered supervisord config never carries
them (the services config cannot turn mainnet on).
"""

import sys

from dolphin.services.live.main import main

sys.exit(main(sys.argv[1:]))
