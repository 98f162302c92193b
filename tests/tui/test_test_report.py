"""`dolphin test --report` and the results file (§28.4): classification, atomic write, validation, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dolphin.test_report import (
    ACTIVE_ENV,
    BIBLE_CATEGORIES,
    TestOutcome,
    TestResultsError,
    TestResultsMissing,
    area_of,
    categories_of,
    read_test_results,
    results_path,
    summarize,
    write_test_results,
)
from tests.tui._support import PROJECT_ROOT

pytestmark = pytest.mark.cli

REGISTERED = ("data_integrity", "finance_fuzz", "signal_fill", "degradation", "actor", "engine", "scan", "config",
              "cli", "slow")


def test_areas_come_from_the_directory() -> None:
    assert area_of("tests/unit/bus/test_payloads.py::test_x") == "bus"
    assert area_of("tests/integration/bus/test_restart.py::test_y[a-b]") == "bus"
    assert area_of("tests/tui/test_state.py::test_z") == "tui"
    assert area_of("tests/unit/mhs/sub/test_q.py::t") == "mhs"
    assert area_of("test_top.py::t") == "misc"


def test_categories_are_markers_plus_area_never_slow() -> None:
    cats = categories_of("tests/unit/engine/test_formulas.py::t", ["engine", "slow", "parametrize", "finance_fuzz"],
                         REGISTERED)
    assert cats == {"engine", "finance_fuzz"}
    assert categories_of("tests/unit/scan/test_x.py::t", [], REGISTERED) == {"scan"}


def test_summary_counts_and_statuses() -> None:
    outcomes = [TestOutcome("a", "passed", ("engine", "data_integrity")), TestOutcome("b", "failed", ("engine",)),
                TestOutcome("c", "skipped", ("bus",)), TestOutcome("d", "passed", ("bus",))]
    results = summarize(outcomes)
    assert list(results)[:5] == list(BIBLE_CATEGORIES)
    assert results["engine"].to_json() == {"passed": 1, "total": 2, "status": "FAIL", "failed": 1, "skipped": 0}
    assert results["data_integrity"].status == "PASS" and results["data_integrity"].total == 1
    assert results["bus"].passed == 1 and results["bus"].total == 1 and results["bus"].skipped == 1
    assert results["actor"].to_json()["status"] == "N/A" and results["actor"].total is None


def test_write_then_read_round_trips_in_the_bible_schema(tmp_path: Path) -> None:
    path = write_test_results({"data_integrity": {"passed": 15, "total": 15, "status": "PASS"},
                               "finance_fuzz": {"passed": None, "total": None, "status": "N/A"}},
                              path=tmp_path / "r.json", run_at=datetime(2026, 4, 5, 12, tzinfo=UTC),
                              meta={"selection": "all"})
    doc = json.loads(path.read_text())
    assert doc["_run_at"] == "2026-04-05T12:00:00+00:00" and doc["_selection"] == "all"
    assert doc["data_integrity"] == {"passed": 15, "total": 15, "status": "PASS", "failed": 0, "skipped": 0}
    results = read_test_results(path)
    assert results.overall == "PASS" and results.categories["finance_fuzz"].status == "N/A"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temp file left behind


def test_default_path_is_the_runtime_root(runtime_root: Path) -> None:
    assert results_path() == runtime_root / "test_results_latest.json"
    write_test_results({"actor": {"passed": 1, "total": 2, "status": "FAIL"}})
    assert read_test_results().categories["actor"].status == "FAIL"


def test_the_bible_example_without_extras_reads(tmp_path: Path) -> None:
    path = tmp_path / "bible.json"
    path.write_text(json.dumps({"_run_at": "2026-04-05T12:00:00",
                                "data_integrity": {"passed": 15, "total": 15, "status": "PASS"},
                                "actor": {"passed": None, "total": None, "status": "N/A"}}))
    assert read_test_results(path).run_at_s == datetime(2026, 4, 5, 12, tzinfo=UTC).timestamp()


@pytest.mark.degradation
@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON (line 1"),
    ("[]", "expected a JSON object"),
    ('{"x": {"passed": 1, "total": 1, "status": "PASS"}}', "_run_at is missing"),
    ('{"_run_at": "yesterday"}', "is not an ISO-8601 time"),
    ('{"_run_at": "2026-04-05T12:00:00", "x": {"passed": 2, "total": 1, "status": "FAIL"}}', "more than total"),
    ('{"_run_at": "2026-04-05T12:00:00", "x": {"passed": 1, "total": 1, "status": "GREEN"}}', "status must be one"),
    ('{"_run_at": "2026-04-05T12:00:00", "x": {"passed": 1, "total": 2, "status": "PASS"}}', "status PASS but 1/2"),
    ('{"_run_at": "2026-04-05T12:00:00", "x": {"passed": "1", "total": 2, "status": "FAIL"}}', "whole number"),
    ('{"_run_at": "2026-04-05T12:00:00", "x": 3}', "must be an object"),
])
def test_malformed_files_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TestResultsError, match=message.replace("(", r"\(").replace("[", r"\[")):
        read_test_results(path)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(TestResultsMissing, match="dolphin test --report"):
        read_test_results(tmp_path / "none.json")


def test_writer_validates_before_writing(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    with pytest.raises(TestResultsError):
        write_test_results({"x": {"passed": 3, "total": 2, "status": "PASS"}}, path=target)
    with pytest.raises(TestResultsError):
        write_test_results({"_x": {"passed": 1, "total": 1, "status": "PASS"}}, path=target)
    assert not target.exists()


def _dolphin(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commands", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ACTIVE_ENV}
    env.update(DOLPHIN_HOME=str(home), PYTHONPATH=str(PROJECT_ROOT), **extra)
    return env


@pytest.mark.skipif(bool(os.environ.get(ACTIVE_ENV)), reason="already inside a `dolphin test --report` run")
def test_report_on_a_small_category_writes_the_footer_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = _dolphin("test", "--report", "--category", "config", "tests/unit/config", env=_env(home))
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
    from tests.tui.conftest import panel_text, wait_for
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
    result = _dolphin("test", "--report", "-k", "nothing", env=_env(tmp_path, **{ACTIVE_ENV: "1"}), timeout=60)
    assert result.returncode == 2
    assert "refusing to recurse" in result.stderr and len(result.stderr.strip().splitlines()) == 1
