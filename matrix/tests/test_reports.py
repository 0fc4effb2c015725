"""Writing results and reports: result.json, report.json, JUnit, HTML, the table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List

import pytest
from rich.console import Console

from sky_matrix.core.errors import UsageError
from sky_matrix.core.model import Cell, CellResult, Interpreter, RunPaths
from sky_matrix.execute import outcome
from sky_matrix.report import html_report, junit, store, table

PYTEST_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4" time="1.2">
<testcase classname="tests.test_a" name="test_one" time="0.1"/>
<testcase classname="tests.test_a" name="test_two" time="0.1">
<failure message="boom">x</failure></testcase>
<testcase classname="tests.test_a" name="test_three" time="0.1">
<skipped message="later"/></testcase>
<testcase classname="tests.test_a" name="test_four" time="0.1"/>
</testsuite></testsuites>
"""


def _interp() -> Interpreter:
    return Interpreter("/opt/py/bin/python3.11", "3.11.7", "cpython", "cp311", False, "pyenv")


def _results(tmp_path: Path) -> List[CellResult]:
    junit_file = tmp_path / "junit-a.xml"
    junit_file.write_text(PYTEST_JUNIT, encoding="utf-8")
    failing = CellResult(
        cell=Cell("3.11", "host", "parity", "default"),
        verdict="fail",
        reason="1 failed, 0 errors of 4 tests",
        interpreter=_interp(),
        counts=outcome.read_counts(junit_file) or {},
        durations={"tests": 1.5, "total": 3.0},
        junit_path=str(junit_file),
        log_tail="E   assert 1 == 2 <&>",
        stats={
            "suite": {
                "functions": {"hash_file": {"rust": 1, "python": 0, "fallbacks": {"panic": 2}}}
            }
        },
    )
    crashed = CellResult(
        cell=Cell("3.12", "host", "leaks", "default"),
        verdict="fail",
        reason="crashed: segmentation fault (SIGSEGV)",
        signal="SIGSEGV",
        returncode=-11,
        durations={"total": 2.0},
        log_tail="Fatal Python error: Segmentation fault",
    )
    skipped = CellResult(
        cell=Cell("3.8", "host", "parity", "default"), verdict="skipped", reason="not found"
    )
    passed = CellResult(
        cell=Cell("3.12", "docker:sid", "cgroup", "cpus-1.5"),
        verdict="pass",
        counts={"tests": 3, "passed": 3, "failures": 0, "errors": 0, "skipped": 0},
    )
    return [failing, crashed, skipped, passed]


def test_read_counts(tmp_path: Path) -> None:
    path = tmp_path / "j.xml"
    path.write_text(PYTEST_JUNIT, encoding="utf-8")
    assert outcome.read_counts(path) == {
        "tests": 4, "failures": 1, "errors": 0, "skipped": 1, "passed": 2
    }  # fmt: skip
    (tmp_path / "bad.xml").write_text("<testsuites", encoding="utf-8")
    assert outcome.read_counts(tmp_path / "bad.xml") is None
    assert outcome.read_counts(tmp_path / "missing.xml") is None


def test_merged_junit_shows_crashes_and_skips(tmp_path: Path) -> None:
    out = tmp_path / "junit.xml"
    junit.write_merged(_results(tmp_path), out)
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    names = [s.get("name") for s in root.findall("testsuite")]
    assert names == [
        "host-py3.11-parity-default",
        "host-py3.12-leaks-default",
        "host-py3.8-parity-default",
        "docker:sid-py3.12-cgroup-cpus-1.5",
    ]
    assert root.get("tests") == "7" and root.get("failures") == "2" and root.get("skipped") == "2"
    crash = root.findall("testsuite")[1].find("testcase/failure")
    assert crash is not None and crash.get("message") == "crashed: segmentation fault (SIGSEGV)"
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("classname") == "host-py3.11-parity-default.tests.test_a"


def test_results_round_trip_and_report_json(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "report")
    for result in _results(tmp_path):
        store.write_result(paths, result)
    loaded = store.load_results(paths)
    assert sorted(r.cell.id for r in loaded) == sorted(r.cell.id for r in _results(tmp_path))
    by_id = {r.cell.id: r for r in loaded}
    assert by_id["host-py3.11-parity-default"].interpreter == _interp()
    report = store.write_report_json(paths, {"id": "run-1"}, loaded)
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["summary"] == {"pass": 1, "fail": 2, "error": 0, "skipped": 1, "interrupted": 0}
    record = next(c for c in data["cells"] if c["id"] == "host-py3.11-parity-default")
    assert record["python_version"] == "3.11.7"
    assert record["fallbacks"] == {"panic": 2}
    assert record["counts"]["passed"] == 2
    assert record["cell"] == {
        "python": "3.11",
        "platform": "host",
        "suite": "parity",
        "profile": "default",
    }


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    path = html_report.write(tmp_path / "report.html", _results(tmp_path), {"id": "run-1"})
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "assert 1 == 2 &lt;&amp;&gt;" in page
    assert 'id="host-py3.12-leaks-default" open' in page
    assert "crashed: segmentation fault (SIGSEGV)" in page
    assert 'class="skipped"' in page and 'class="pass"' in page


def test_terminal_table(tmp_path: Path) -> None:
    console = Console(record=True, width=200, color_system=None)
    table.render(_results(tmp_path), console)
    text = console.export_text()
    lines = [line for line in text.splitlines() if "host / 3.11" in line]
    assert len(lines) == 1 and "fail: 1 failed, 0 errors of 4 tests" in lines[0]
    assert "skipped: not found" in text
    assert "docker:sid / 3.12 cp312 / cpus-1.5" in text and "pass (3)" in text
    # Rows: host first, interpreters in version order.
    order = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    assert (
        order.index("host / 3.8 cp38")
        < order.index("host / 3.11 cp311")
        < order.index("host / 3.12 cp312")
    )


def test_full_disk_keeps_the_earlier_results(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "report")
    first, second = _results(tmp_path)[:2]
    written = store.write_result(paths, first)
    before = written.read_text(encoding="utf-8")
    # The next write of that file goes to the device that is always full (a real ENOSPC).
    (written.parent / "result.json.tmp").symlink_to("/dev/full")
    with pytest.raises(UsageError, match=r"disk is full .*free space there or pass --report-dir"):
        store.write_result(paths, first)
    assert written.read_text(encoding="utf-8") == before
    assert (written.parent / "result.json.tmp").is_symlink()  # /dev/full itself is left alone
    store.write_result(paths, second)  # other cells' results still go through
    assert len(store.load_results(paths)) == 2


def test_suite_extras_are_folded_into_the_written_result(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    cell = Cell("3.11", "host", "cgroup", "default")
    cell_dir = paths.cell_dir(cell)
    cell_dir.mkdir(parents=True)
    (cell_dir / "extra-cgroup-live.json").write_text(json.dumps({"rows": [{"cpus": 1}]}))
    (cell_dir / "extra-broken.json").write_text("{not json")
    store.write_result(paths, CellResult(cell, "pass"))
    written = json.loads((cell_dir / "result.json").read_text())
    assert written["extra"]["cgroup-live"] == {"rows": [{"cpus": 1}]}
    assert "extra-broken.json" in written["extra"]["broken"]["unreadable"]


def test_html_report_shows_suite_tables(tmp_path: Path) -> None:
    result = CellResult(Cell("3.11", "host", "cgroup", "cpus-1.5"), "pass")
    result.extra["cgroup-live"] = {"rows": [{"case": "cpus-1.5", "rust_cpus": 1, "affinity": 2}]}
    page = html_report.render([result], {})
    assert "host-py3.11-cgroup-cpus-1.5: cgroup-live" in page
    assert "<th>rust_cpus</th>" in page and "<td>cpus-1.5</td>" in page


def test_an_interrupted_cell_is_shown_as_such_everywhere(tmp_path: Path) -> None:
    from sky_matrix.execute.scheduler import interrupted_result

    cell = Cell("3.11", "host", "leaks", "default")
    killed = CellResult(
        cell=cell, verdict="fail", reason="crashed: killed (SIGKILL)", signal="SIGKILL",
        durations={"total": 42.4},
    )  # fmt: skip
    result = interrupted_result(killed, 15)
    assert (result.verdict, result.signal) == ("interrupted", None)
    assert result.reason == "interrupted by SIGTERM after 42 s: the run was stopped"
    assert result.extra["cut_off_as"]["verdict"] == "fail"
    assert store.summarize([result])["interrupted"] == 1
    tree = junit.merged([result]).getroot()
    assert tree.get("errors") == "1"  # never a pass or a skip to CI
    assert "interrupted" in html_report.render([result], {})
    console = Console(record=True, width=200)
    table.render([result], console)
    assert "interrupted: interrupted by SIGTERM" in console.export_text()
    paths = RunPaths(tmp_path)
    store.write_result(paths, result)
    (loaded,) = store.load_results(paths)
    assert loaded.verdict == "interrupted"
