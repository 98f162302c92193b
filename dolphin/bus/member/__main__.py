"""``python -m dolphin.bus.member``: the member as a plain subprocess (supervisord, tests)."""

from dolphin.bus.member.cli import main

raise SystemExit(main())
