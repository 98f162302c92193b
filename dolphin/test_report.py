"""Test results for the TUI footer (bible §28.4): run the suite, classify, write, read, validate.

The results file is ``<runtime root>/test_results_latest.json``::

    {
      "_run_at": "2026-04-05T12:00:00+00:00",
      "data_integrity": {"passed": 15, "total": 15, "status": "PASS"},
      "finance_fuzz":   {"passed": null, "total": null, "status": "N/A"},
      ...
    }

Keys starting with ``_`` are metadata (``_run_at`` is required; DOLPHIN adds
``_selection``, ``_exit_code``, ``_duration_s``); every other key is a category with
``passed`` and ``total`` (integers, or both null when no test of the category ran) and
``status`` PASS / FAIL / N/A. DOLPHIN also writes ``failed`` and ``skipped`` counts;
readers ignore fields they do not know.

* `write_test_results()` is the public API for any harness (the bible's signature: a
  mapping of category → ``{passed, total, status}``); it validates, adds ``_run_at`` and
  writes atomically, so the TUI never reads half a file.
* `read_test_results()` reads and validates; a missing or malformed file is a
  `TestResultsError` with one clear sentence (the footer shows it, nothing crashes).
* `run_report()` runs pytest in a subprocess with this module loaded as a plugin
  (``-p dolphin.test_report``), which records each test's outcome and categories.

Categories: a test counts in every registered marker it carries (except ``slow``, a cost
marker) and in the area of its directory (``tests/unit/<area>/…``,
``tests/integration/<area>/…`` → ``<area>``; ``tests/<dir>/…`` → ``<dir>``), so every
test lands in at least one category. The bible's five categories are always written
(N/A when none of their tests ran).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from dolphin.errors import DolphinError, UsageError
from dolphin.isotime import parse_iso_utc
from dolphin.paths import PROJECT_ROOT, runtime_root
from dolphin.store.atomic import atomic_write_text

RESULTS_FILE = "test_results_latest.json"
BIBLE_CATEGORIES: tuple[str, ...] = ("data_integrity", "finance_fuzz", "signal_fill", "degradation", "actor")
NOT_CATEGORIES: frozenset[str] = frozenset({"slow"})
STATUSES: tuple[str, ...] = ("PASS", "FAIL", "N/A")
#: Set in the environment of the pytest a report runs: a nested `dolphin test --report` refuses to start.
ACTIVE_ENV = "DOLPHIN_TEST_REPORT_ACTIVE"
_OUT_ENV = "DOLPHIN_TEST_REPORT_OUT"
_CATEGORIES_ENV = "DOLPHIN_TEST_REPORT_CATEGORIES"
_AREA_ROOTS = frozenset({"unit", "integration"})


class TestResultsError(DolphinError):
    """The results file is missing, unreadable or not in the §28.4 schema."""

    __test__ = False  # not a pytest test class
    exit_code = 6


class TestResultsMissing(TestResultsError):
    __test__ = False


def results_path() -> Path:
    """Where the latest results live: ``<runtime root>/test_results_latest.json``."""
    return runtime_root() / RESULTS_FILE


# ------------------------------------------------------------------------ the schema
@dataclass(frozen=True, slots=True)
class CategoryResult:
    """One category of one run. ``passed``/``total`` are None when no test of it ran (N/A)."""

    passed: int | None
    total: int | None
    status: str
    failed: int = 0
    skipped: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "total": self.total, "status": self.status, "failed": self.failed,
                "skipped": self.skipped}


@dataclass(frozen=True, slots=True)
class TestResults:
    """A results file as read: when it ran, its categories (file order) and its metadata."""

    __test__ = False

    run_at: str
    run_at_s: float
    categories: dict[str, CategoryResult]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def overall(self) -> str:
        """FAIL if any category failed, PASS if any passed, else N/A."""
        statuses = {c.status for c in self.categories.values()}
        return "FAIL" if "FAIL" in statuses else "PASS" if "PASS" in statuses else "N/A"

    @property
    def partial(self) -> str | None:
        """What narrowed the run (``-k``, paths, categories), or None for the whole suite.

        A PASS of one selected test says nothing about the rest: the footer names the selection.
        """
        selection = self.meta.get("_selection")
        if not isinstance(selection, dict):
            return None
        parts = []
        if selection.get("keyword"):
            parts.append(f"-k {selection['keyword']}")
        for path in selection.get("paths") or ():
            parts.append(str(path))
        for cat in selection.get("categories") or ():
            parts.append(f"--category {cat}")
        return " ".join(parts) or None


def status_of(passed: int, total: int) -> str:
    if total == 0:
        return "N/A"
    return "PASS" if passed == total else "FAIL"


def _count(value: Any, where: str, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        else:
            raise TestResultsError(f"{where}: {name} must be a whole number or null, got {value!r}")
    if value < 0:
        raise TestResultsError(f"{where}: {name} must be >= 0, got {value}")
    return value


def _category(name: str, raw: Any, where: str) -> CategoryResult:
    if isinstance(raw, CategoryResult):
        raw = raw.to_json()
    if not isinstance(raw, Mapping):
        raise TestResultsError(f"{where}: category {name!r} must be an object with passed/total/status, "
                               f"got {type(raw).__name__}")
    here = f"{where}: category {name!r}"
    status = raw.get("status")
    if status not in STATUSES:
        raise TestResultsError(f"{here}: status must be one of {', '.join(STATUSES)}, got {status!r}")
    passed = _count(raw.get("passed"), here, "passed")
    total = _count(raw.get("total"), here, "total")
    if (passed is None) != (total is None):
        raise TestResultsError(f"{here}: passed and total must both be numbers or both null")
    if passed is not None and total is not None and passed > total:
        raise TestResultsError(f"{here}: passed ({passed}) is more than total ({total})")
    if status == "N/A" and total:
        raise TestResultsError(f"{here}: status N/A with {total} tests")
    if status == "PASS" and (total is None or passed != total or total == 0):
        raise TestResultsError(f"{here}: status PASS but {passed}/{total} passed")
    failed = _count(raw.get("failed", 0), here, "failed") or 0
    skipped = _count(raw.get("skipped", 0), here, "skipped") or 0
    return CategoryResult(passed=passed, total=total, status=status, failed=failed, skipped=skipped)


def _parse_run_at(value: Any, where: str) -> float:
    if not isinstance(value, str):
        raise TestResultsError(f"{where}: _run_at must be an ISO-8601 time, got {value!r}")
    try:
        return parse_iso_utc(value)
    except ValueError:
        raise TestResultsError(f"{where}: _run_at {value!r} is not an ISO-8601 time") from None


def parse_test_results(data: Any, where: str = "test results") -> TestResults:
    """Validate a decoded results document (raises TestResultsError)."""
    if not isinstance(data, Mapping):
        raise TestResultsError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if "_run_at" not in data:
        raise TestResultsError(f"{where}: _run_at is missing")
    run_at_s = _parse_run_at(data["_run_at"], where)
    categories = {}
    meta = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            raise TestResultsError(f"{where}: bad key {key!r}")
        if key.startswith("_"):
            meta[key] = value
        else:
            categories[key] = _category(key, value, where)
    return TestResults(run_at=str(data["_run_at"]), run_at_s=run_at_s, categories=categories, meta=meta)


def read_test_results(path: str | Path | None = None) -> TestResults:
    """The latest results, validated. Missing or malformed files raise TestResultsError."""
    target = Path(path) if path is not None else results_path()
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        raise TestResultsMissing(f"no test results yet ({target}): run `dolphin test --report`") from None
    except OSError as exc:
        raise TestResultsError(f"cannot read {target}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise TestResultsError(f"{target} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise TestResultsError(f"{target} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                               f"{exc.msg})") from None
    return parse_test_results(data, str(target))


def write_test_results(results: Mapping[str, Mapping[str, Any] | CategoryResult], *,
                       path: str | Path | None = None, run_at: datetime | None = None,
                       meta: Mapping[str, Any] | None = None) -> Path:
    """Atomically write ``_run_at`` (UTC now) plus the given categories (§28.4); returns the path.

    ``results`` maps a category to ``{"passed": int|None, "total": int|None, "status":
    "PASS"|"FAIL"|"N/A"}`` (or a `CategoryResult`). Values are validated first: a bad
    category raises TestResultsError and nothing is written. ``meta`` adds ``_``-prefixed
    keys (a key without the prefix gets one).
    """
    moment = (run_at or datetime.now(UTC)).astimezone(UTC)
    doc: dict[str, Any] = {"_run_at": moment.isoformat(timespec="seconds")}
    for key, value in (meta or {}).items():
        doc[key if key.startswith("_") else f"_{key}"] = value
    for name, raw in results.items():
        if not isinstance(name, str) or not name or name.startswith("_"):
            raise TestResultsError(f"category name {name!r} must be a non-empty string without a leading _")
        doc[name] = _category(name, raw, "write_test_results").to_json()
    target = Path(path) if path is not None else results_path()
    return atomic_write_text(target, json.dumps(doc, indent=2) + "\n")


# ------------------------------------------------------------------------ classification
def area_of(nodeid: str) -> str:
    """``tests/unit/bus/test_x.py::t`` → ``bus``; ``tests/tui/test_x.py::t`` → ``tui``."""
    path = PurePosixPath(nodeid.split("::", 1)[0].replace("\\", "/"))
    parts = [p for p in path.parts[:-1] if p not in (".", "")]
    if parts and parts[0] == "tests":
        parts = parts[1:]
    if len(parts) >= 2 and parts[0] in _AREA_ROOTS:
        return parts[1]
    if parts:
        return parts[0]
    return "misc"


def categories_of(nodeid: str, markers: Iterable[str], registered: Iterable[str]) -> set[str]:
    """Every category a test counts in: its registered markers (not ``slow``) and its area."""
    known = set(registered) - NOT_CATEGORIES
    return {m for m in markers if m in known} | {area_of(nodeid)}


@dataclass(frozen=True, slots=True)
class TestOutcome:
    """One test of a run: passed / failed / skipped, and its categories."""

    __test__ = False

    nodeid: str
    outcome: str
    categories: tuple[str, ...]


def summarize(outcomes: Iterable[TestOutcome], always: Sequence[str] = BIBLE_CATEGORIES) -> dict[str, CategoryResult]:
    """Per-category counts; ``total`` counts tests that ran (skipped ones are reported apart)."""
    tally: dict[str, list[int]] = {name: [0, 0, 0] for name in always}  # passed, failed, skipped
    for o in outcomes:
        for cat in o.categories:
            slot = tally.setdefault(cat, [0, 0, 0])
            if o.outcome == "passed":
                slot[0] += 1
            elif o.outcome == "failed":
                slot[1] += 1
            else:
                slot[2] += 1
    out: dict[str, CategoryResult] = {}
    ordered = list(always) + sorted(k for k in tally if k not in always)
    for name in ordered:
        passed, failed, skipped = tally[name]
        total = passed + failed
        if total == 0:
            out[name] = CategoryResult(None, None, "N/A", 0, skipped)
        else:
            out[name] = CategoryResult(passed, total, status_of(passed, total), failed, skipped)
    return out


# ------------------------------------------------------------------------ running pytest
@dataclass(frozen=True, slots=True)
class ReportRun:
    """What `run_report` did: pytest's exit code, the outcomes, the file written (if any)."""

    exit_code: int
    outcomes: tuple[TestOutcome, ...]
    results: dict[str, CategoryResult]
    duration_s: float
    path: Path | None


def _pytest_command(paths: Sequence[str], keyword: str | None, extra: Sequence[str]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "dolphin.test_report", "-p", "no:cacheprovider"]
    if keyword:
        cmd += ["-k", keyword]
    cmd += list(extra)
    cmd += list(paths)
    return cmd


def run_report(*, paths: Sequence[str] = (), keyword: str | None = None, categories: Sequence[str] = (),
               extra_args: Sequence[str] = (), write: bool = True, results_file: str | Path | None = None,
               capture: bool = False, cwd: str | Path | None = None) -> ReportRun:
    """Run pytest on the selection, collect per-test outcomes, and (if ``write``) write the results file.

    Refuses to run inside a run it started (``DOLPHIN_TEST_REPORT_ACTIVE``): a test that
    calls `dolphin test --report` must not recurse into the whole suite.
    """
    if os.environ.get(ACTIVE_ENV):
        raise UsageError(f"a test report is already running ({ACTIVE_ENV} is set): refusing to recurse")
    missing = [name for name in ("pytest", "xdist", "hypothesis") if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"{', '.join(missing)} not installed in this environment ({sys.executable}): "
                         "the suite needs the test extra — pip install -e '.[test]' from the source checkout")
    if not (Path(cwd or PROJECT_ROOT) / "tests").is_dir():
        raise UsageError(f"no tests/ under {cwd or PROJECT_ROOT}: `dolphin test` runs from a source checkout")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dolphin-test-report-") as tmp:
        out_file = Path(tmp) / "outcomes.json"
        env = dict(os.environ)
        env[ACTIVE_ENV] = "1"
        env[_OUT_ENV] = str(out_file)
        env[_CATEGORIES_ENV] = ",".join(categories)
        cmd = _pytest_command(paths, keyword, extra_args)
        proc = subprocess.run(cmd, cwd=str(cwd or PROJECT_ROOT), env=env, check=False,
                              capture_output=capture, text=True)
        if not out_file.exists():
            detail = (proc.stderr or proc.stdout or "").strip().splitlines() if capture else []
            raise TestResultsError(f"pytest exited with {proc.returncode} before reporting any outcome"
                                   + (f": {detail[-1]}" if detail else ""))
        outcomes = tuple(TestOutcome(nodeid=o["nodeid"], outcome=o["outcome"], categories=tuple(o["categories"]))
                         for o in json.loads(out_file.read_text())["outcomes"])
    duration = time.monotonic() - started
    results = summarize(outcomes)
    written = None
    if write:
        selection = {"paths": list(paths), "keyword": keyword, "categories": list(categories)}
        written = write_test_results(results, path=results_file,
                                     meta={"_selection": selection, "_exit_code": proc.returncode,
                                           "_duration_s": round(duration, 2), "_tests": len(outcomes)})
    return ReportRun(exit_code=proc.returncode, outcomes=outcomes, results=results, duration_s=duration,
                     path=written)


# ------------------------------------------------------------------------ the pytest plugin side
# These hooks are live only when pytest loads this module with ``-p dolphin.test_report``
# (what `run_report` does); importing the module elsewhere registers nothing.
_PLUGIN: dict[str, Any] = {"categories": {}, "outcomes": {}}


_PLUGIN_MARKERS = frozenset({"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings", "tryfirst",
                             "trylast", "timeout", "asyncio", "anyio"})


def _registered_markers(config: Any) -> set[str]:
    """The markers the project registers in its own config (not pytest's or plugins' builtins)."""
    raw = None
    try:
        raw = config.inicfg.get("markers")
    except Exception:
        raw = None
    lines = raw.splitlines() if isinstance(raw, str) else list(raw) if raw else config.getini("markers")
    names = {str(line).split(":", 1)[0].split("(", 1)[0].strip() for line in lines}
    return {n for n in names if n} - _PLUGIN_MARKERS


def _item_categories(item: Any, registered: set[str]) -> set[str]:
    return categories_of(item.nodeid, (m.name for m in item.iter_markers()), registered)


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    wanted = {c for c in os.environ.get(_CATEGORIES_ENV, "").split(",") if c}
    if not wanted or not os.environ.get(_OUT_ENV):
        return
    registered = _registered_markers(config)
    keep: list[Any] = []
    drop: list[Any] = []
    for item in items:
        (keep if _item_categories(item, registered) & wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_configure(config: Any) -> None:
    if os.environ.get(_OUT_ENV):
        _PLUGIN["registered"] = _registered_markers(config)


def pytest_runtest_logreport(report: Any) -> None:
    """Outcomes and categories from each test's report (under xdist the controller sees only reports).

    A report carries the test's keywords, which include its markers, so this works the
    same in a plain run and in xdist's controller.
    """
    if not os.environ.get(_OUT_ENV):
        return
    if report.nodeid not in _PLUGIN["categories"]:
        registered: set[str] = _PLUGIN.get("registered", set())
        _PLUGIN["categories"][report.nodeid] = sorted(categories_of(report.nodeid, report.keywords, registered))
    outcomes: dict[str, str] = _PLUGIN["outcomes"]
    previous = outcomes.get(report.nodeid)
    if report.failed:
        outcomes[report.nodeid] = "failed"
    elif report.skipped and previous is None:
        outcomes[report.nodeid] = "skipped"
    elif report.passed and report.when == "call" and previous is None:
        outcomes[report.nodeid] = "passed"


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    out = os.environ.get(_OUT_ENV)
    if not out or hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes
        return
    cats: dict[str, list[str]] = _PLUGIN["categories"]
    outcomes: dict[str, str] = _PLUGIN["outcomes"]
    rows = []
    for nodeid, categories in cats.items():
        outcome = outcomes.get(nodeid)
        if outcome is None:  # collected but never run (e.g. -x stopped early)
            continue
        rows.append({"nodeid": nodeid, "outcome": outcome, "categories": categories})
    atomic_write_text(out, json.dumps({"exitstatus": int(exitstatus), "outcomes": rows}))
