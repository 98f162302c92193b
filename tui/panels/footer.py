"""Test footer: the latest `dolphin test --report` results (§28.4), or why there are none."""

from __future__ import annotations

from rich.text import Text

from tui import format as fmt
from tui.panels.base import STATUS_STYLE, Panel
from tui.state import TESTS


class ResultsFooter(Panel):
    TITLE = "Tests"
    TOPICS = frozenset({TESTS})
    SHOW_AGE = False
    AGE_IN_BODY = True  # "run 3 h ago"
    DEFAULT_CLASSES = "test-footer"

    def tick_key(self, now: float) -> object:
        results = self.state.tests.results
        return fmt.age(now - results.run_at_s) if results is not None else ""

    def body(self, now: float) -> Text:
        view = self.state.tests
        out = Text(overflow="fold")
        if view.missing:
            out.append("no test results yet — run ", style="dim")
            out.append("dolphin test --report", style="bold")
            return out
        if view.error:
            out.append("test results unreadable: ", style="bold red")
            out.append(view.error, style="red")
            return out
        results = view.results
        if results is None:
            out.append("test results not read yet", style="dim")
            return out
        overall = results.overall
        out.append(f" {overall} ", style=STATUS_STYLE.get(overall, "bold") if overall != "PASS"
                   else "bold black on green")
        partial = results.partial
        if partial:
            out.append(" partial ", style="bold black on yellow")
            out.append(f" {fmt.text(partial, 40)}", style="yellow")
        out.append(f" run {fmt.text(results.run_at, 25)} ({fmt.age(now - results.run_at_s)} ago)", style="dim")
        code = results.meta.get("_exit_code")
        if isinstance(code, int) and code not in (0, 1, 5):
            out.append(f" pytest exit {code}", style="bold red")
        for name, cat in results.categories.items():
            if cat.status == "N/A" and name not in ("data_integrity", "finance_fuzz", "signal_fill", "degradation",
                                                    "actor"):
                continue
            out.append("  ")
            out.append(name, style="bold")
            if cat.total is None:
                out.append(" N/A", style="dim")
            else:
                out.append(f" {cat.passed}/{cat.total} ")
                out.append(cat.status, style=STATUS_STYLE.get(cat.status, ""))
        return out
