"""The results file of `dolphin test --report` (§28.4, dolphin/test_report.py): classification, atomic write, validation.

The command itself (a real pytest run, the TUI footer following its file) is tested in
tests/integration/report/test_report_cli.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dolphin.test_report import (
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

pytestmark = pytest.mark.data_integrity

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
