"""`dolphin test --report` as a command: a real pytest run writes the results file the TUI footer follows."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from dolphin.test_report import ACTIVE_ENV, BIBLE_CATEGORIES, read_test_results, write_test_results
from tests.support import PROJECT_ROOT, dolphin

pytestmark = pytest.mark.cli


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ACTIVE_ENV}
    env.update(DOLPHIN_HOME=str(home), PYTHONPATH=str(PROJECT_ROOT), **extra)
    return env


@pytest.mark.skipif(bool(os.environ.get(ACTIVE_ENV)), reason="already inside a `dolphin test --report` run")
def test_report_on_a_small_category_writes_the_footer_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = dolphin("test", "--report", "--category", "config", "tests/unit/config", env=_env(home))
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads((home / "test_results_latest.json").read_text())
    assert set(BIBLE_CATEGORIES) <= set(doc) and doc["config"]["status"] == "PASS"
    assert doc["config"]["passed"] == doc["config"]["total"] > 0
    assert doc["_selection"]["categories"] == ["config"] and doc["_exit_code"] == 0
    assert read_test_results(home / "test_results_latest.json").overall == "PASS"
    assert "results written to" in result.stdout
    _footer_follows_the_file(home / "test_results_latest.json", doc["config"]["total"])


def _footer_follows_the_file(path: Path, config_total: int) -> None:
    """The TUI footer shows that run; `t` hides/re-reads it; a rewrite or a torn file shows within a tick."""
    from tests.tui.support import panel_text, wait_for
    from tui.app import DolphinTui
    from tui.state import TuiState

    def flat(app: DolphinTui) -> str:
        return " ".join(panel_text(app, "tests", width=160).split())

    async def scenario() -> None:
        app = DolphinTui(state=TuiState(), results_path=path, tick_s=0.2)
        async with app.run_test(size=(160, 50)) as pilot:
            text = flat(app)
            # a run of one category is partial: the footer says so, with the selection that made it
            assert "parametrize" not in text and text.startswith("PASS partial tests/unit/config --category config run")
            assert f"config {config_total}/{config_total} PASS" in text
            assert "finance_fuzz N/A" in text  # the bible's five are always listed
            await pilot.press("t")
            assert not app.query_one("#tests").display
            await pilot.press("t")
            assert app.query_one("#tests").display
            write_test_results({"actor": {"passed": 3, "total": 4, "status": "FAIL"}}, path=path)
            await wait_for(pilot, lambda: "actor 3/4 FAIL" in flat(app))
            path.write_text('{"_run_at": "2026-04-05T12:00:00", "actor": {"passed": 5, "tot')
            await wait_for(pilot, lambda: "test results unreadable" in flat(app))
            assert "test_results_latest.json is not valid JSON" in flat(app)
            path.unlink()
            await wait_for(pilot, lambda: "no test results yet" in flat(app))

    asyncio.run(scenario())


@pytest.mark.skipif(bool(os.environ.get(ACTIVE_ENV)), reason="already inside a `dolphin test --report` run")
def test_report_counts_failures_and_exits_non_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = tmp_path / "suite" / "tests" / "unit" / "demo"
    suite.mkdir(parents=True)
    (suite / "test_demo.py").write_text(
        "import pytest\n"
        "pytestmark = pytest.mark.signal_fill\n"
        "def test_ok():\n    pass\n"
        "def test_bad():\n    assert False\n"
        "@pytest.mark.skip(reason='x')\ndef test_skipped():\n    pass\n"
        "@pytest.mark.actor\ndef test_actor():\n    pass\n")
    (tmp_path / "suite" / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    signal_fill: x\n    actor: y\n    slow: z\n")
    home = tmp_path / "home"
    from dolphin.test_report import run_report

    monkeypatch.setenv("DOLPHIN_HOME", str(home))
    run = run_report(paths=["tests"], capture=True, cwd=tmp_path / "suite", extra_args=["-q"])
    assert run.exit_code == 1
    assert run.results["signal_fill"].to_json() == {"passed": 2, "total": 3, "status": "FAIL", "failed": 1,
                                                     "skipped": 1}
    assert run.results["actor"].status == "PASS" and run.results["demo"].total == 3
    assert run.path == home / "test_results_latest.json"


def test_report_refuses_to_recurse(tmp_path: Path) -> None:
    result = dolphin("test", "--report", "-k", "nothing", env=_env(tmp_path, **{ACTIVE_ENV: "1"}))
    assert result.returncode == 2
    assert "refusing to recurse" in result.stderr and len(result.stderr.strip().splitlines()) == 1
