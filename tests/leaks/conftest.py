"""The leaks suite: every function, on both backends, under five detectors.

| test | detector | runs in |
| --- | --- | --- |
| test_memray_limit_leaks | memray (pytest-memray's limit_leaks), by call stack | this process |
| test_growth | psleak-style heap/USS/RSS growth, PYTHONMALLOC=malloc | a child |
| test_descriptors_and_threads | open descriptors and threads, before/after | this process |
| test_references | sys.getrefcount() of arguments, results, singletons | this process |
| test_debug_refcounts | gettotalrefcount()/getallocatedblocks(), as -R | a child (debug) |

Each test is parametrized by `case` = (function, backend) with ids like
``base36_encode-rust``, so a failure names the function and the backend. The
suite tests the installed wheel: a native module that does not import fails
every Rust test. The thresholds live next to each detector, with their
reasons. At the end the controller writes the per-function report
(leak_report.py) into ``$SKY_RS_MATRIX_CELL_DIR`` when the matrix runs it.
"""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path
from typing import Any, Callable, Dict, Generator, Iterator, Tuple

import leak_cases
import leak_memray
import leak_report
import pytest

CELL_DIR_VARIABLE = "SKY_RS_MATRIX_CELL_DIR"
WARMUP_CALLS = 400  # before any in-process detector measures; see leak_growth.WARMUP_CALLS

Case = Tuple[str, str]
_report = leak_report.LeakReport()


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    # A descriptor leak must show as a count, not end in EMFILE halfway through
    # a test: take the hard limit (children inherit it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    leak_cases.unset_overriding_variables()
    if not config.pluginmanager.hasplugin("memray"):
        # Where pytest-memray cannot be installed its marker is inert; the memray
        # tests skip (or fail) in their fixture, saying why.
        config.addinivalue_line("markers", "limit_leaks(location_limit): pytest-memray's marker")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        cases = [(f, b) for f in leak_cases.FUNCTIONS for b in leak_cases.BACKENDS]
        metafunc.parametrize("case", cases, ids=[f"{f}-{b}" for f, b in cases])


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> leak_cases.Workspace:
    return leak_cases.make_workspace(tmp_path_factory.mktemp("leak-workspace"))


@pytest.fixture(scope="session")
def busy_port() -> Iterator[int]:
    with leak_cases.busy_port() as port:
        yield port


@pytest.fixture
def workload(case: Case, workspace: leak_cases.Workspace, busy_port: int) -> leak_cases.Workload:
    """The case's workload, already run WARMUP_CALLS times (outside any measurement)."""
    function, backend = case
    workload = leak_cases.make_workload(function, backend, workspace, busy_port)
    leak_cases.run_rounds(workload, leak_cases.rounds_for(workload, WARMUP_CALLS))
    return workload


@pytest.fixture
def record_leak_metrics(request: pytest.FixtureRequest) -> Callable[[Dict[str, Any]], None]:
    """Attach measurements to this test's report (they reach the leak report)."""

    def record(metrics: Dict[str, Any]) -> None:
        leak_report.attach(request.node.user_properties, metrics)

    return record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    if call.when != "call" or not item.name.startswith("test_memray_limit_leaks["):
        return
    manager = item.config.pluginmanager.get_plugin("memray_manager")
    # pytest-memray's own record of the test's capture file (figures for the report only).
    result = getattr(manager, "results", {}).get(item.nodeid)
    if result is None:
        return
    largest = leak_memray.largest_leak(result.result_file)
    report = outcome.get_result()
    metrics = {
        "largest_location_bytes": largest,
        "location_limit_bytes": leak_memray.LOCATION_LIMIT_BYTES,
        "calls": leak_memray.CALLS,
    }
    leak_report.attach(report.user_properties, metrics)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _report.add(report)


def _build_info() -> Any:
    try:
        from sky_rs import _native

        return dict(_native._build_info())
    except Exception as exc:  # the report says so; the Rust tests fail on their own
        return {"error": f"{type(exc).__name__}: {exc}"}


def pytest_sessionfinish(session: pytest.Session) -> None:
    cell_dir = os.environ.get(CELL_DIR_VARIABLE)
    if _is_xdist_worker(session.config) or not cell_dir or not _report.entries:
        return
    _report.write(Path(cell_dir), _build_info())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _report.entries:
        return
    terminalreporter.write_sep("=", "sky_rs leak report")
    for line in _report.table():
        terminalreporter.write_line(line)
    cell_dir = os.environ.get(CELL_DIR_VARIABLE)
    if cell_dir:
        terminalreporter.write_line(
            f"written to {Path(cell_dir) / leak_report.REPORT_NAME} "
            f"({json.dumps(_build_info(), sort_keys=True)})"
        )
