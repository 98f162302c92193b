"""One module per panel (bible §28.2); every panel reads `tui.state.TuiState` only."""

from tui.panels.acb import AcbPanel
from tui.panels.alpha import AlphaPanel
from tui.panels.base import Panel
from tui.panels.capital import CapitalPanel
from tui.panels.extf import ExtFPanel
from tui.panels.footer import ResultsFooter
from tui.panels.header import HeaderPanel
from tui.panels.mc import McPanel
from tui.panels.obf import ObfPanel
from tui.panels.scan import ScanPanel
from tui.panels.services import ServicesPanel
from tui.panels.syshealth import SysHealthPanel
from tui.panels.trader import TraderPanel

__all__ = ["AcbPanel", "AlphaPanel", "CapitalPanel", "ExtFPanel", "HeaderPanel", "McPanel", "ObfPanel", "Panel",
           "ResultsFooter", "ScanPanel", "ServicesPanel", "SysHealthPanel", "TraderPanel"]
