"""``python -m dolphin.market.sim``: the simulator exchange as a plain subprocess (supervisord, tests)."""

from dolphin.market.sim.cli import main

raise SystemExit(main())
