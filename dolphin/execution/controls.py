"""Where an operator's controls and the trader's books live on disk, in one place.

The trader, `dolphin kill`, `dolphin trade exit`, `dolphin trades|pnl` and the TUI all
need the same three paths — the journal (the books), the kill switch and the exit-request
directory — under the runtime root, named after the configured strategy. They resolve
them here so a rename cannot leave one of them reading a file the trader never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.manual import ExitRequests

JOURNAL_DIR = "journal"


def journal_path(home: Path, strategy: str) -> Path:
    """The trader's journal for `strategy` under the runtime root `home`."""
    return home / JOURNAL_DIR / f"{strategy}.jsonl"


@dataclass(frozen=True, slots=True)
class TraderControls:
    """The trader's files for one runtime root: its journal, its kill switch, its exit requests."""

    home: Path
    strategy: str
    kill: KillSwitch
    exits: ExitRequests

    @property
    def journal(self) -> Path:
        return journal_path(self.home, self.strategy)

    @classmethod
    def under(cls, home: Path, strategy: str, kill_switch: str) -> TraderControls:
        return cls(home=home, strategy=strategy, kill=KillSwitch.under(home, kill_switch),
                   exits=ExitRequests.under(home))

    @classmethod
    def configured(cls, home: Path | None = None) -> TraderControls:
        """From `services.yml` (the trader's strategy and kill-switch file) and the runtime root."""
        from dolphin.config.loader import load_config
        from dolphin.config.services import load_services_config
        from dolphin.paths import runtime_root

        services = load_services_config()
        return cls.under(home if home is not None else runtime_root(), load_config(services.trader.strategy).name,
                         services.trader.kill_switch)


__all__ = ["JOURNAL_DIR", "TraderControls", "journal_path"]
