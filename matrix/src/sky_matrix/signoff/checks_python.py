"""Python evidence from `nox -s coverage`: the test run's JUnit XML and coverage.py's JSON."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Dict, List

from sky_matrix.signoff.context import Context, EvidenceError, read_json
from sky_matrix.signoff.verdict import FAIL, PASS, Outcome, missing

# The sky_rs sources coverage is about (the native module has no Python lines).
COVERED_MODULES = ("sky_rs/__init__.py", "sky_rs/fallback.py")


def python_tests(ctx: Context) -> Outcome:
    report = ctx.path(ctx.evidence.coverage_dir) / "python-junit.xml"
    shown = ctx.show(report)
    if not report.is_file():
        return missing(shown, "coverage")
    try:
        root = ET.parse(report).getroot()
    except (OSError, ET.ParseError) as exc:
        return Outcome(FAIL, f"{shown} unreadable: {exc}")
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    totals: Dict[str, int] = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed: List[str] = []
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('classname', '')}::{case.get('name', '')}")
    if totals["tests"] == 0:
        return Outcome(FAIL, f"{shown}: the Python test run collected no test")
    summary = (
        f"{totals['tests'] - totals['failures'] - totals['errors'] - totals['skipped']} passed, "
        f"{totals['failures']} failed, {totals['errors']} errors, {totals['skipped']} skipped"
    )
    if totals["failures"] or totals["errors"]:
        shown_failed = ", ".join(failed[:3]) + (
            f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        )
        return Outcome(FAIL, f"{shown}: {summary}: {shown_failed}")
    return Outcome(PASS, f"{shown}: {summary}")


def python_coverage(ctx: Context) -> Outcome:
    report = ctx.path(ctx.evidence.coverage_dir) / "python.json"
    shown = ctx.show(report)
    if not report.is_file():
        return missing(shown, "coverage")
    try:
        data = read_json(report, shown)
        files = data["files"]
    except EvidenceError as exc:
        return Outcome(FAIL, str(exc))
    except (KeyError, TypeError):
        return Outcome(FAIL, f"{shown} is not a coverage.py JSON report")
    covered = statements = 0
    parts: List[str] = []
    for module in COVERED_MODULES:
        entry = next((v for k, v in files.items() if k.replace("\\", "/").endswith(module)), None)
        if entry is None:
            return Outcome(FAIL, f"{shown} has no data for {module}: the run did not measure it")
        summary = entry["summary"]
        covered += int(summary["covered_lines"])
        statements += int(summary["num_statements"])
        parts.append(f"{module} {summary['covered_lines']}/{summary['num_statements']}")
    percent = 100.0 * covered / statements if statements else 0.0
    verdict = PASS if percent >= ctx.coverage_target else FAIL
    return Outcome(
        verdict,
        f"statements {percent:.1f}% ({'; '.join(parts)}) (target {ctx.coverage_target:g}%)",
    )
