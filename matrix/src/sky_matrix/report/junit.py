"""JUnit XML: reading a cell's counts and writing the merged file of the whole run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable, List

from sky_matrix.core.model import CellResult
from sky_matrix.execute.outcome import COUNT_KEYS
from sky_matrix.report.store import write_text_atomic


def _suites_of(path: Path) -> List[ET.Element]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    return [root] if root.tag == "testsuite" else list(root.findall("testsuite"))


def _synthetic_suite(result: CellResult) -> ET.Element:
    """A one-test suite standing for a cell that left no JUnit file of its own."""
    suite = ET.Element("testsuite", name=result.cell.id, tests="1")
    case = ET.SubElement(suite, "testcase", classname=result.cell.id, name="cell")
    case.set("time", f"{result.durations.get('total', 0.0):.3f}")
    reason = result.reason or result.verdict
    if result.verdict == "skipped":
        suite.set("skipped", "1")
        ET.SubElement(case, "skipped", message=reason)
    elif result.verdict in ("fail", "error", "interrupted"):
        # An interrupted cell has no verdict: an error to CI, never a pass or a skip.
        tag = "failure" if result.verdict == "fail" else "error"
        suite.set("failures" if tag == "failure" else "errors", "1")
        node = ET.SubElement(case, tag, message=reason)
        node.text = result.log_tail or reason
    return suite


def merged(results: Iterable[CellResult]) -> ET.ElementTree:
    """One <testsuites> holding every cell's suites, renamed after the cell."""
    root = ET.Element("testsuites", name="sky-rs-matrix")
    totals = dict.fromkeys(COUNT_KEYS, 0)
    for result in results:
        suites = _suites_of(Path(result.junit_path)) if result.junit_path else []
        recorded = sum(int(s.get(k, "0") or 0) for s in suites for k in ("failures", "errors"))
        # A failure the JUnit file does not show (crash, hang, empty suite) gets its own case.
        if not suites or (result.verdict in ("fail", "error", "interrupted") and recorded == 0):
            suites = [*suites, _synthetic_suite(result)]
        for suite in suites:
            suite.set("name", result.cell.id)
            for case in suite.iter("testcase"):
                case.set("classname", f"{result.cell.id}.{case.get('classname', '')}")
            for key in COUNT_KEYS:
                totals[key] += int(suite.get(key, "0") or 0)
            root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    return ET.ElementTree(root)


def write_merged(results: Iterable[CellResult], path: Path) -> None:
    tree = merged(results)
    ET.indent(tree)
    text = ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=True)
    write_text_atomic(path, text + "\n")
